package nkms_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
)

const seedTag = "3a922c672183301414e0844bc9624588f62db98294dab24455107880a1fcd9d2"

func mustTag(t *testing.T, s string) nkms.Tag {
	t.Helper()
	tag, err := nkms.ParseTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func material(t *testing.T, alg crypto.Algorithm) []byte {
	t.Helper()
	m, err := crypto.GenerateMaterial(alg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// testSeed declares an operator, a crypto access key of keystore 2, a key
// with a fixed tag and material, and two keys without.
func testSeed(t *testing.T, aes []byte) nkms.Seed {
	return nkms.Seed{
		AccessKeys: []nkms.SeedAccessKey{
			{AccessKey: "CIACCESSKEY00001", SecretKey: "ci-secret-0123456789", Keystore: 1, Role: nkms.RoleAdmin},
			{AccessKey: "CIAPPKEY2", SecretKey: "app-secret-0123456789", Keystore: 2, Role: nkms.RoleCrypto},
		},
		Keys: []nkms.SeedKey{
			{Keystore: 1, Name: "orders", Type: nkms.AES256, Tag: mustTag(t, seedTag), Material: [][]byte{aes},
				Memo: "payments", AutoRotation: true, RotationPeriod: 90},
			{Keystore: 1, Name: "signing", Type: nkms.ECDSA, Disabled: true},
			{Keystore: 2, Name: "tenant", Type: nkms.RSA2048, RotationPeriod: 30},
		},
	}
}

// allKeys lists every key of keystores 1 and 2, whole.
func allKeys(t *testing.T, s *nkms.Service) []*nkms.Key {
	t.Helper()
	var out []*nkms.Key
	for _, ks := range []int64{1, 2} {
		keys, _, err := s.Store.List(context.Background(), ks, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			full, err := s.Store.Get(context.Background(), k.Tag)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, full)
		}
	}
	return out
}

func TestApplySeedCreatesThenChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	aes := material(t, crypto.AES256)
	sd := testSeed(t, aes)
	rep, err := s.ApplySeed(ctx, sd)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Count(nkms.SeedCreated); got != 5 {
		t.Fatalf("created %d, want 5: %+v", got, rep)
	}
	k, err := s.Store.Get(ctx, seedTag)
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "orders" || k.Memo != "payments" || !k.AutoRotation || k.RotationPeriod != 90 || k.Current() != 1 ||
		k.State != nkms.StateEnable || !k.Registered.Equal(t0) {
		t.Fatalf("seeded key: %+v", k)
	}
	keys := allKeys(t, s)
	if len(keys) != 3 {
		t.Fatalf("%d keys, want 3", len(keys))
	}
	for _, k := range keys {
		switch k.Name {
		case "signing":
			if k.State != nkms.StateDisable || k.Type != nkms.ECDSA {
				t.Errorf("signing: %+v", k)
			}
		case "tenant":
			if k.Keystore != 2 || k.RotationPeriod != 30 || k.AutoRotation {
				t.Errorf("tenant: %+v", k)
			}
		}
	}
	// The declared access keys exist, with their keystore and role (and
	// their secret: the second apply below compares it).
	if a, err := s.Store.GetAccessKey(ctx, "CIAPPKEY2"); err != nil || a.Keystore != 2 || a.Role != nkms.RoleCrypto {
		t.Fatalf("access key CIAPPKEY2: %+v, %v", a, err)
	}

	// A ciphertext of the fixed key decrypts with a fresh service (store
	// and root key) seeded with the same declarations.
	ct, err := s.Encrypt(ctx, alice, mustTag(t, seedTag), [][]byte{[]byte("hello")}, "")
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := newService(t)
	if _, err := fresh.ApplySeed(ctx, sd); err != nil {
		t.Fatal(err)
	}
	pt, err := fresh.Decrypt(ctx, alice, mustTag(t, seedTag), ct.Values, "")
	if err != nil || string(pt.Values[0]) != "hello" {
		t.Fatalf("decrypt on a fresh store: %q, %v", pt.Values, err)
	}

	// Again, later: nothing changes, not even a date.
	clk.Add(time.Hour)
	rep, err = s.ApplySeed(ctx, sd)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Count(nkms.SeedPresent); got != 5 {
		t.Fatalf("present %d, want 5: %+v", got, rep)
	}
	for _, r := range rep.Results {
		if len(r.Kept) > 0 {
			t.Errorf("%s[%d]: settings differ on an unchanged store: %v", r.Section, r.Index, r.Kept)
		}
	}
	if diff := cmp.Diff(keys, allKeys(t, s)); diff != "" {
		t.Fatalf("a second apply changed keys (-before +after):\n%s", diff)
	}
}

// TestApplySeedKeepsSettings: settings the API changes (name, memo,
// rotation, enabled) are left as they are, and the report says which.
func TestApplySeedKeepsSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	sd := testSeed(t, material(t, crypto.AES256))
	if _, err := s.ApplySeed(ctx, sd); err != nil {
		t.Fatal(err)
	}
	tag := mustTag(t, seedTag)
	for _, change := range []func() error{
		func() error { _, err := s.UpdateMemo(ctx, alice, tag, "changed by a test"); return err },
		func() error { _, err := s.UpdateName(ctx, alice, tag, "renamed"); return err },
		func() error { _, err := s.DisableAutoRotation(ctx, alice, tag); return err },
		func() error { _, err := s.DisableKey(ctx, alice, tag); return err },
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
	}
	before := allKeys(t, s)
	rep, err := s.ApplySeed(ctx, sd)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, r := range rep.Results {
		if r.Tag == tag {
			kept = r.Kept
		}
	}
	if want := []string{"name", "memo", "autoRotation.enabled", "enabled"}; !cmp.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	if diff := cmp.Diff(before, allKeys(t, s)); diff != "" {
		t.Fatalf("apply changed settings (-before +after):\n%s", diff)
	}
}

// TestApplySeedConflicts: every conflict is listed, none shows a secret or
// material, and nothing of the seed is applied, not even its declarations
// that do not conflict.
func TestApplySeedConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	aes := material(t, crypto.AES256)
	if _, err := s.ApplySeed(ctx, testSeed(t, aes)); err != nil {
		t.Fatal(err)
	}
	taken := create(t, s, alice, "taken", nkms.AES256, false)
	before := allKeys(t, s)

	other := material(t, crypto.AES256)
	sd := nkms.Seed{
		AccessKeys: []nkms.SeedAccessKey{
			{AccessKey: "CIACCESSKEY00001", SecretKey: "another-secret-0123456789", Keystore: 1, Role: nkms.RoleViewer},
			{AccessKey: "NEWKEY", SecretKey: "new-secret-0123456789", Keystore: 1, Role: nkms.RoleAdmin},
		},
		Keys: []nkms.SeedKey{
			{Keystore: 1, Name: "orders", Type: nkms.AES256, Tag: mustTag(t, seedTag), Material: [][]byte{other}},
			{Keystore: 1, Name: "signing", Type: nkms.RSA2048},
			{Keystore: 1, Name: "taken", Type: nkms.AES256, Tag: mustTag(t, strings.Repeat("ab", 32))},
			{Keystore: 2, Name: "tenant", Type: nkms.AES256},
			{Keystore: 1, Name: "fresh", Type: nkms.AES256},
		},
	}
	_, err := s.ApplySeed(ctx, sd)
	var ce *nkms.SeedConflictError
	if !errors.As(err, &ce) || !errors.Is(err, &nkms.Error{Code: nkms.Conflict}) {
		t.Fatalf("got %v, want a SeedConflictError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`accessKeys[0] (accessKey "CIACCESSKEY00001"): role: existing admin, declared viewer`,
		`accessKeys[0] (accessKey "CIACCESSKEY00001"): secretKey: differs from the existing one (not shown)`,
		`keys[0] (keystore 1, name "orders"): material: differs from the existing one (not shown)`,
		`keys[1] (keystore 1, name "signing"): type: existing ECDSA, declared RSA2048`,
		`keys[2] (keystore 1, name "taken"): name: existing used by the key ` + taken.Tag,
		`keys[3] (keystore 2, name "tenant"): type: existing RSA2048, declared AES256`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error\n%s\ndoes not say %q", msg, want)
		}
	}
	if n := len(ce.Conflicts); n != 6 {
		t.Errorf("%d conflicts, want 6:\n%s", n, msg)
	}
	for _, secret := range []string{"another-secret", "ci-secret", string(other), string(aes)} {
		if strings.Contains(msg, secret) {
			t.Errorf("the error shows %q", secret)
		}
	}
	if diff := cmp.Diff(before, allKeys(t, s)); diff != "" {
		t.Fatalf("a refused seed changed keys (-before +after):\n%s", diff)
	}
	if _, err := s.Store.GetAccessKey(ctx, "NEWKEY"); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
		t.Fatalf("the access key of a refused seed: %v", err)
	}
}

// raceStore is a store on which another writer applies the same seed just
// before the first key (or access key) is created through it: the race of
// two nodes of a cluster started with the same seed at the same moment.
type raceStore struct {
	nkms.Store
	once  sync.Once
	other func()
}

func (r *raceStore) Create(ctx context.Context, k *nkms.Key) (*nkms.Key, error) {
	r.once.Do(r.other)
	return r.Store.Create(ctx, k)
}

func (r *raceStore) CreateAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	r.once.Do(r.other)
	return r.Store.CreateAccessKey(ctx, a)
}

// TestApplySeedRacingAnotherNode: when another node creates the seed's
// declarations between this node's plan and its writes, ApplySeed plans
// again and finds them present (one key each, under the other node's
// random tags and material) instead of failing the start-up.
func TestApplySeedRacingAnotherNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := newService(t)
	b := &nkms.Service{Store: a.Store, Root: a.Root, Now: a.Now, DeletionWindow: a.DeletionWindow}
	sd := testSeed(t, material(t, crypto.AES256))
	var otherReport nkms.SeedReport
	a.Store = &raceStore{Store: a.Store, other: func() {
		var err error
		if otherReport, err = b.ApplySeed(ctx, sd); err != nil {
			t.Errorf("the other node's seed: %v", err)
		}
	}}
	rep, err := a.ApplySeed(ctx, sd)
	if err != nil {
		t.Fatalf("ApplySeed racing another node: %v", err)
	}
	if n := otherReport.Count(nkms.SeedCreated); n != 5 {
		t.Fatalf("the other node created %d declarations, want 5", n)
	}
	if n := rep.Count(nkms.SeedPresent); n != 5 {
		t.Fatalf("after planning again, %d declarations present, want 5: %+v", n, rep.Results)
	}
	if keys := allKeys(t, b); len(keys) != 3 {
		t.Fatalf("%d keys after two nodes applied the seed, want 3", len(keys))
	}
}
