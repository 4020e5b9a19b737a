package etcd

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/codec"
)

// The fixture testdata/layout1 is a prefix of layout 1 written by the store
// of commit 9b8bc44 (before versions had records of their own and keys were
// numbered per keystore), through nkms.Service with a fixed clock: keys
// alpha (ID 1, keystore 1, AES, 4 versions, version 2 disabled), bravo (2,
// keystore 2, RSA, 2 versions), gone (3, keystore 1, deleted), delta (4,
// keystore 1, ECDSA, disabled), echo (5, keystore 2, auto rotation on),
// foxtrot (6, keystore 7, a token generator), golf (7, keystore 1, pending
// deletion); an access key; one usage-log entry of alpha. etcd.json holds
// every key and value under the prefix (the prefix cut off), root.key the
// root key the material is sealed under, keys.json every key as that
// store's List returned it.
const fixtureDir = "testdata/layout1"

// loadFixture writes the fixture under a new prefix and returns it.
func loadFixture(t *testing.T, cli *clientv3.Client) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "etcd.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kvs []struct{ Key, Value string }
	if err := json.Unmarshal(b, &kvs); err != nil {
		t.Fatal(err)
	}
	prefix := newPrefix(t, cli)
	var ops []clientv3.Op
	for _, kv := range kvs {
		ops = append(ops, clientv3.OpPut(prefix+kv.Key, kv.Value))
	}
	if _, err := cli.Txn(t.Context()).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	return prefix
}

// fixtureKeys returns the keys of keys.json with the IDs they have after
// the migration: 1..n in each keystore, in the order of the old IDs.
func fixtureKeys(t *testing.T) []*nkms.Key {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []*nkms.Key
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(keys, func(a, b *nkms.Key) int { return cmp.Or(cmp.Compare(a.Keystore, b.Keystore), cmp.Compare(a.ID, b.ID)) })
	n := map[int64]int64{}
	for _, k := range keys {
		n[k.Keystore]++
		k.ID = n[k.Keystore]
	}
	return keys
}

// checkMigrated checks the keys and the raw layout of a migrated prefix.
func checkMigrated(t *testing.T, s *Store) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(fixtureDir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	want := fixtureKeys(t)
	for _, w := range want {
		got, err := s.Get(ctx, w.Tag)
		if err != nil {
			t.Fatalf("Get %s: %v", w.Name, err)
		}
		if diff := gocmp.Diff(got, w, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("key %s (-got +want):\n%s", w.Name, diff)
		}
		if err := nkms.CheckSealed(root, got); err != nil {
			t.Error(err)
		}
	}
	for keystore, names := range map[int64][]string{1: {"golf", "delta", "alpha"}, 2: {"echo", "bravo"}, 7: {"foxtrot"}} {
		page, total, err := s.List(ctx, keystore, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range page {
			got = append(got, k.Name)
		}
		if total != len(names) || !slices.Equal(got, names) {
			t.Errorf("List of keystore %d: %v of %d, want %v", keystore, got, total, names)
		}
	}
	if _, total, err := s.Activities(ctx, nkms.ActivityQuery{Tag: want[0].Tag, PageNo: 1, PageSize: 10, To: time.Now()}); err != nil || total != 1 {
		t.Errorf("usage log of %s: %d entries, %v; want 1", want[0].Name, total, err)
	}
	if due, err := s.Due(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 10); err != nil || len(due) != 2 {
		t.Errorf("due keys: %v, %v; want golf (pending deletion) and echo (auto rotation)", due, err)
	}

	// The raw layout: version 2, no prefix-wide lastID, each keystore's
	// lastID, every record of format 2 with its version records.
	resp, err := s.kv.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string]string{}
	for _, kv := range resp.Kvs {
		raw[string(kv.Key[len(s.prefix):])] = string(kv.Value)
	}
	if raw["schema"] != schemaVersion {
		t.Errorf("layout version %q, want %q", raw["schema"], schemaVersion)
	}
	if v, ok := raw["meta/lastID"]; ok {
		t.Errorf("meta/lastID is still there (%q)", v)
	}
	for keystore, n := range map[int64]int{1: 3, 2: 2, 7: 1} {
		if got := raw["meta/lastID/"+hex64(uint64(keystore))]; got != strconv.Itoa(n) {
			t.Errorf("last ID of keystore %d: %q, want %d", keystore, got, n)
		}
	}
	for _, w := range want {
		if f, err := codec.KeyRecordFormat([]byte(raw["keys/"+w.Tag])); f != codec.KeyFormat || err != nil {
			t.Errorf("record of %s: format %d, %v", w.Name, f, err)
		}
		for n := 1; n <= w.Current()+1; n++ {
			if _, ok := raw[s.versionKey(w.Tag, n)[len(s.prefix):]]; ok != (n <= w.Current()) {
				t.Errorf("key %s: version record %d there: %v", w.Name, n, ok)
			}
		}
	}
}

// TestOpenMigratesLayout1: nodes that start at once on a prefix of layout
// 1 all open it; it is migrated once, keys keep everything but their IDs,
// and new keys go on from the highest ID of their keystore.
func TestOpenMigratesLayout1(t *testing.T) {
	c, cli := sharedEtcd(t)
	prefix := loadFixture(t, cli)
	const nodes = 4
	stores := make([]*Store, nodes)
	var wg sync.WaitGroup
	for i := range stores {
		client := c.Client(t)
		wg.Go(func() {
			s, err := Open(t.Context(), Options{Client: client, Prefix: prefix})
			if err != nil {
				t.Errorf("node %d: Open: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	checkMigrated(t, stores[0])
	for keystore, id := range map[int64]int64{1: 4, 2: 3, 7: 2, 9: 1} {
		k, err := stores[int(keystore)%nodes].Create(t.Context(), testKey(keystore, "newcomer"))
		if err != nil {
			t.Fatal(err)
		}
		if k.ID != id {
			t.Errorf("new key in keystore %d: ID %d, want %d", keystore, k.ID, id)
		}
	}
	open(t, cli, prefix) // opens a migrated prefix as it is
}

// TestMigrationResumes: a migration that stopped after some keys (its node
// died) is finished by the next Open.
func TestMigrationResumes(t *testing.T) {
	_, cli := sharedEtcd(t)
	prefix := loadFixture(t, cli)
	s, err := newStore(Options{Client: cli, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	keystores, err := s.oldKeystoreRows(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.migrateKeystore(t.Context(), keystores[0][:2]); err != nil || n != 2 {
		t.Fatalf("migrating 2 keys: %d, %v", n, err)
	}
	checkMigrated(t, open(t, cli, prefix))
}

// TestMigrationSmallTxns migrates with txns of at most 4 operations, so
// that version records are written in batches before their key's txn.
func TestMigrationSmallTxns(t *testing.T) {
	_, cli := sharedEtcd(t)
	prefix := loadFixture(t, cli)
	s, err := newStore(Options{Client: cli, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s.maxOps = 4
	if err := s.migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, open(t, cli, prefix))
}

// TestUpdateWritesChangedVersions: an Update writes the key record and only
// the versions it added or changed (a rotation: one), as etcd's mod
// revisions show; Delete removes every version record.
func TestUpdateWritesChangedVersions(t *testing.T) {
	_, cli := sharedEtcd(t)
	s := open(t, cli, newPrefix(t, cli))
	ctx := t.Context()
	k, err := s.Create(ctx, testKey(1, "revisions"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 19 {
		if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error {
			v := k.Versions[0]
			v.Number, v.Sealed = len(k.Versions)+1, []byte(fmt.Sprint("sealed ", i))
			k.Versions = append(k.Versions, v)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	revisions := func() []int64 {
		t.Helper()
		resp, err := cli.Get(ctx, s.versionsPrefix(k.Tag), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var revs []int64
		for _, kv := range resp.Kvs {
			revs = append(revs, kv.ModRevision)
		}
		return revs
	}
	before := revisions()
	if len(before) != 20 {
		t.Fatalf("%d version records, want 20", len(before))
	}
	changed := func(what string, want ...int) {
		t.Helper()
		now := revisions()
		var got []int
		for i, rev := range now {
			if i >= len(before) || rev != before[i] {
				got = append(got, i+1)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s wrote versions %v, want %v", what, got, want)
		}
		before = now
	}
	if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Memo = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	changed("a memo change")
	if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Versions[4].State = nkms.StateDisable; return nil }); err != nil {
		t.Fatal(err)
	}
	changed("disabling version 5", 5)
	if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error {
		v := k.Versions[0]
		v.Number = 21
		k.Versions = append(k.Versions, v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	changed("a rotation", 21)
	if err := s.Delete(ctx, k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(revisions()); n != 0 {
		t.Errorf("%d version records after Delete, want 0", n)
	}
}

// TestOpenMigratesLayout2 opens a prefix of layout 2 (no meta/changes): Open
// moves it to layout 3 with one txn, keys stay as they were, a follower on
// it sees the next change; a prefix of a layout newer than this one is
// refused.
func TestOpenMigratesLayout2(t *testing.T) {
	t.Parallel()
	_, cli := sharedEtcd(t)
	ctx := t.Context()
	prefix := newPrefix(t, cli)
	old := open(t, cli, prefix)
	k, err := old.Create(ctx, testKey(1, "before"))
	if err != nil {
		t.Fatal(err)
	}
	// Make it layout 2, as an nkms of the last release left it.
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut(prefix+"schema", schemaV2), clientv3.OpDelete(prefix+"meta/changes")).Commit(); err != nil {
		t.Fatal(err)
	}
	s := open(t, cli, prefix)
	resp, err := cli.Get(ctx, prefix+"schema")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != schemaVersion {
		t.Fatalf("layout after Open: %v, %v; want %s", resp, err, schemaVersion)
	}
	if resp, err := cli.Get(ctx, prefix+"meta/changes"); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("meta/changes after Open: %v, %v", resp, err)
	}
	if got, err := s.Get(ctx, k.Tag); err != nil || got.Name != "before" {
		t.Fatalf("a key of layout 2 after the migration: %v, %v", got, err)
	}
	n := newNode(t, cli, prefix, Options{})
	if _, err := n.Get(ctx, k.Tag); err != nil { // cached
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Name = "after"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Get(ctx, k.Tag); err != nil || got.Name != "after" {
		t.Fatalf("a follower after a change on the migrated prefix: %v, %v", got, err)
	}

	if _, err := cli.Put(ctx, prefix+"schema", "4"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Client: cli, Prefix: prefix}); err == nil || !strings.Contains(err.Error(), "newer nkms") {
		t.Fatalf("Open of a layout newer than %s: %v", schemaVersion, err)
	}
}
