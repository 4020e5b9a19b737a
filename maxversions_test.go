package nkms_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

// fullKeyCaller owns the keys of the tests of nkms.MaxVersions.
var fullKeyCaller = nkms.Caller{AccessKey: "full", Keystore: 1, Role: nkms.RoleAdmin}

// keyOfVersions returns a Service on a mem store, its clock, and a key of
// it with n versions (the added ones reuse version 1's sealed material,
// which a rotation never opens).
func keyOfVersions(t *testing.T, n int, autoRotation bool) (*nkms.Service, *testkit.Clock, *nkms.Key) {
	t.Helper()
	clk := testkit.NewClock(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	s := &nkms.Service{Store: mem.New(), Root: testkit.RootKey(t), Now: clk.Now, DeletionWindow: nkms.DefaultDeletionWindow}
	ctx := context.Background()
	k, err := s.CreateKey(ctx, fullKeyCaller, nkms.CreateKeyInput{Name: "full", Type: nkms.AES256, AutoRotation: autoRotation, RotationPeriod: 30})
	if err != nil {
		t.Fatal(err)
	}
	k, err = s.Store.Update(ctx, k.Tag, func(k *nkms.Key) error {
		v := k.Versions[0]
		for len(k.Versions) < n {
			v.Number = len(k.Versions) + 1
			k.Versions = append(k.Versions, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, k
}

// TestRotateUpToMaxVersions: a key rotates to MaxVersions versions and no
// further; the refusal is INVALID_REQUEST with a message that says why.
func TestRotateUpToMaxVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, k := keyOfVersions(t, nkms.MaxVersions-1, false)
	got, err := s.Rotate(ctx, fullKeyCaller, k.KeyTag())
	if err != nil {
		t.Fatalf("rotation to version %d: %v", nkms.MaxVersions, err)
	}
	if got.Current() != nkms.MaxVersions {
		t.Fatalf("current version %d, want %d", got.Current(), nkms.MaxVersions)
	}
	_, err = s.Rotate(ctx, fullKeyCaller, k.KeyTag())
	if !errors.Is(err, nkms.ErrTooManyVersions) || nkms.ErrorCode(err) != nkms.Invalid {
		t.Fatalf("rotation past %d versions: got %v (code %s), want %v", nkms.MaxVersions, err, nkms.ErrorCode(err), nkms.ErrTooManyVersions)
	}
	if got, err := s.GetKey(ctx, fullKeyCaller, k.KeyTag()); err != nil || got.Current() != nkms.MaxVersions {
		t.Fatalf("key after the refused rotation: %v; want %d versions", err, nkms.MaxVersions)
	}
}

// TestKeyRotateAtMaxVersions is the state transition: Rotate and AutoRotate
// refuse a key at the bound and change nothing; SkipAutoRotation moves the
// next rotation a period on, only for such a key and only when due.
func TestKeyRotateAtMaxVersions(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	full := func() *nkms.Key {
		k := &nkms.Key{State: nkms.StateEnable, AutoRotation: true, RotationPeriod: 30, RotationBase: now.AddDate(0, 0, -31)}
		for n := 1; n <= nkms.MaxVersions; n++ {
			k.Versions = append(k.Versions, nkms.Version{Number: n, State: nkms.StateEnable})
		}
		return k
	}
	k := full()
	if _, err := k.Rotate(now, []byte("s")); !errors.Is(err, nkms.ErrTooManyVersions) {
		t.Errorf("Rotate: %v, want %v", err, nkms.ErrTooManyVersions)
	}
	if _, err := k.AutoRotate(now, []byte("s")); !errors.Is(err, nkms.ErrTooManyVersions) {
		t.Errorf("AutoRotate: %v, want %v", err, nkms.ErrTooManyVersions)
	}
	if len(k.Versions) != nkms.MaxVersions || !k.RotationBase.Equal(now.AddDate(0, 0, -31)) {
		t.Errorf("refused rotations changed the key: %d versions, rotation base %v", len(k.Versions), k.RotationBase)
	}
	if err := k.SkipAutoRotation(now); err != nil {
		t.Fatalf("SkipAutoRotation: %v", err)
	}
	if next, ok := k.NextRotation(); !ok || !next.Equal(now.AddDate(0, 0, 30)) || len(k.Versions) != nkms.MaxVersions {
		t.Errorf("after SkipAutoRotation: next %v %v, %d versions; want %v", next, ok, len(k.Versions), now.AddDate(0, 0, 30))
	}
	if err := k.SkipAutoRotation(now); !errors.Is(err, nkms.ErrInvalidStatus) {
		t.Errorf("SkipAutoRotation when not due: %v, want %v", err, nkms.ErrInvalidStatus)
	}
	notFull := full()
	notFull.Versions = notFull.Versions[:nkms.MaxVersions-1]
	if err := notFull.SkipAutoRotation(now); !errors.Is(err, nkms.ErrInvalidStatus) {
		t.Errorf("SkipAutoRotation of a key that may rotate: %v, want %v", err, nkms.ErrInvalidStatus)
	}
	revoked := full()
	revoked.State = nkms.StateRevoke
	if err := revoked.SkipAutoRotation(now); !errors.Is(err, nkms.ErrInvalidStatus) {
		t.Errorf("SkipAutoRotation of a REVOKE key: %v, want %v", err, nkms.ErrInvalidStatus)
	}
}

// TestAutoRotationAtMaxVersions: the scheduler does not rotate a due key
// that has MaxVersions versions; it records the failure once, moves the
// key's next rotation a period on, and later passes leave it alone until
// then (a key that stayed due would be tried, logged and recorded on every
// pass, forever).
func TestAutoRotationAtMaxVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk, k := keyOfVersions(t, nkms.MaxVersions, true)
	clk.Add(31 * 24 * time.Hour)
	res, err := s.RunDue(ctx)
	if err != nil || res.Rotated != 0 || res.Failed != 1 {
		t.Fatalf("pass with a full key due: %+v, %v; want 0 rotated, 1 failed", res, err)
	}
	got, err := s.GetKey(ctx, fullKeyCaller, k.KeyTag())
	if err != nil {
		t.Fatal(err)
	}
	want := clk.Now().Add(30 * 24 * time.Hour)
	if next, ok := got.NextRotation(); got.Current() != nkms.MaxVersions || !ok || !next.Equal(want) {
		t.Fatalf("after the pass: %d versions, next rotation %v (%v); want %d, %v", got.Current(), next, ok, nkms.MaxVersions, want)
	}
	for range 3 {
		clk.Add(time.Hour)
		if res, err := s.RunDue(ctx); err != nil || res != (nkms.PassResult{}) {
			t.Fatalf("a later pass: %+v, %v; want nothing done", res, err)
		}
	}
	_, entries, total, err := s.Activities(ctx, fullKeyCaller, k.KeyTag(), nkms.ActivityQuery{From: clk.Now().Add(-time.Hour * 24), PageNo: 1, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || entries[0].Action != "AutoRotateKey" || entries[0].Result != nkms.ResultFail {
		t.Errorf("usage log: %d entries %+v; want the one failed AutoRotateKey", total, entries)
	}
	// A period later it is tried (and skipped) again.
	clk.Add(30 * 24 * time.Hour)
	if res, err := s.RunDue(ctx); err != nil || res.Failed != 1 {
		t.Fatalf("pass a period later: %+v, %v; want 1 failed", res, err)
	}
}
