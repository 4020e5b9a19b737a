package bolt

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/codec"
)

// The fixture testdata/layout2 is a data file of layout 2 written by the
// store of commit 9b8bc44 (before versions had records of their own and
// keys were numbered per keystore), through nkms.Service with a fixed clock:
// keys alpha (ID 1, keystore 1, AES, 4 versions, version 2 disabled), bravo
// (2, keystore 2, RSA, 2 versions), gone (3, keystore 1, deleted), delta (4,
// keystore 1, ECDSA, disabled), echo (5, keystore 2, auto rotation on),
// foxtrot (6, keystore 7, a token generator), golf (7, keystore 1, pending
// deletion); an access key; one usage-log entry of alpha. root.key is the
// root key its material is sealed under; keys.json is every key as that
// store's List returned it.

// fixtureKeys returns the keys of keys.json in dir, with the IDs they have
// after the migration: 1..n in each keystore, in the order of the old IDs.
func fixtureKeys(t *testing.T, dir string) (old, migrated []*nkms.Key) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(old, func(a, b *nkms.Key) int { return cmp.Or(cmp.Compare(a.Keystore, b.Keystore), cmp.Compare(a.ID, b.ID)) })
	n := map[int64]int64{}
	for _, k := range old {
		c := k.Clone()
		n[c.Keystore]++
		c.ID = n[c.Keystore]
		migrated = append(migrated, c)
	}
	return old, migrated
}

// copyFixture copies the data file of testdata/dir to a temporary directory.
func copyFixture(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, "nkms.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nkms.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fixtureRoot(t *testing.T, dir string) *crypto.RootKey {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var keyCmp = gocmp.Options{cmpopts.EquateEmpty()}

// TestReadFileLayout2: the backup check reads a data file of layout 2 (a
// backup made by an older nkms) whole, and every version's material opens.
func TestReadFileLayout2(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "layout2")
	path := copyFixture(t, "layout2")
	old, _ := fixtureKeys(t, dir)
	info, err := CheckFile(path, time.Second)
	if err != nil || info.Schema != schemaSharedIDs || info.Keys != len(old) || info.AccessKeys != 1 {
		t.Fatalf("CheckFile: %+v, %v; want layout %d, %d keys, 1 access key", info, err, schemaSharedIDs, len(old))
	}
	root := fixtureRoot(t, dir)
	var read []*nkms.Key
	accessKeys := 0
	err = ReadFile(path, time.Second, func(k *nkms.Key) error {
		read = append(read, k)
		return nkms.CheckSealed(root, k)
	}, func(a *nkms.AccessKey) error {
		accessKeys++
		return nkms.CheckSealedAccessKey(root, a)
	})
	if err != nil || accessKeys != 1 {
		t.Fatalf("ReadFile: %v, %d access keys", err, accessKeys)
	}
	slices.SortFunc(read, func(a, b *nkms.Key) int { return cmp.Or(cmp.Compare(a.Keystore, b.Keystore), cmp.Compare(a.ID, b.ID)) })
	if diff := gocmp.Diff(read, old, keyCmp); diff != "" {
		t.Errorf("ReadFile of layout 2 (-got +want):\n%s", diff)
	}
}

// TestOpenMigratesLayout2 opens the fixture: each key keeps everything but
// its ID, which becomes its number in its keystore in the old order; its
// versions move to records of their own; new keys go on from the highest ID
// of their keystore; the usage log, the access key and the due index stay;
// a second Open changes nothing.
func TestOpenMigratesLayout2(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "layout2")
	path := copyFixture(t, "layout2")
	_, want := fixtureKeys(t, dir)
	root := fixtureRoot(t, dir)

	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	check := func(when string) {
		t.Helper()
		for _, w := range want {
			got, err := s.Get(ctx, w.Tag)
			if err != nil {
				t.Fatalf("%s: Get %s: %v", when, w.Name, err)
			}
			if diff := gocmp.Diff(got, w, keyCmp); diff != "" {
				t.Errorf("%s: key %s (-got +want):\n%s", when, w.Name, diff)
			}
			if err := nkms.CheckSealed(root, got); err != nil {
				t.Errorf("%s: %v", when, err)
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
				t.Errorf("%s: List of keystore %d: %v of %d, want %v", when, keystore, got, total, names)
			}
		}
		checkLayout3(t, s, len(want))
	}
	check("after the migration")
	alpha := want[0]
	if alpha.Name != "alpha" || alpha.Current() != 4 || alpha.Versions[1].State != nkms.StateDisable {
		t.Fatalf("fixture: first key %s with %d versions; want alpha with 4, version 2 disabled", alpha.Name, alpha.Current())
	}
	if page, total, err := s.ListVersions(ctx, alpha.Tag, 2, 3); err != nil || total != 4 || !gocmp.Equal(page, alpha.Versions[3:], keyCmp) {
		t.Errorf("ListVersions of alpha, page 2 of 3: %d versions of %d, %v", len(page), total, err)
	}
	if _, total, err := s.Activities(ctx, nkms.ActivityQuery{Tag: alpha.Tag, PageNo: 1, PageSize: 10, To: time.Now()}); err != nil || total != 1 {
		t.Errorf("usage log of alpha: %d entries, %v; want 1", total, err)
	}
	if a, err := s.ListAccessKeys(ctx); err != nil || len(a) != 1 {
		t.Errorf("access keys: %d, %v; want 1", len(a), err)
	}
	if due, err := s.Due(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 10); err != nil || len(due) != 2 {
		t.Errorf("due keys: %v, %v; want golf (pending deletion) and echo (auto rotation)", due, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	check("after a second Open")
	for keystore, id := range map[int64]int64{1: 4, 2: 3, 7: 2, 9: 1} {
		k, err := s.Create(ctx, testKey(t, keystore, "newcomer", randomBytes(t, 32)))
		if err != nil {
			t.Fatal(err)
		}
		if k.ID != id {
			t.Errorf("new key in keystore %d: ID %d, want %d", keystore, k.ID, id)
		}
	}
}

// TestFailedMigrationChangesNothing: a key record that does not decode
// stops the migration, and the data file stays as it was (one transaction).
func TestFailedMigrationChangesNothing(t *testing.T) {
	t.Parallel()
	path := copyFixture(t, "layout2")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketKeys).Cursor()
		c.First() // a record in the middle
		tag, _ := c.Next()
		return tx.Bucket(bucketKeys).Put(tag, []byte(`{"format":1,"versions":"garbage"}`))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{hooks: &hooks{noBackground: true}}); err == nil {
		s.Close()
		t.Fatal("Open migrated a file with a broken key record")
	}
	info, err := CheckFile(path, time.Second)
	if err != nil || info.Schema != schemaSharedIDs {
		t.Errorf("after the failed migration: %+v, %v; want layout %d", info, err, schemaSharedIDs)
	}
	err = ReadFile(path, time.Second, func(k *nkms.Key) error { return nil }, func(*nkms.AccessKey) error { return nil })
	if err == nil {
		t.Error("ReadFile read the broken record")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, before) {
		t.Error("the failed migration changed the data file")
	}
}

// checkLayout3 checks a file's layout: version 3, every key record of
// format 2 with a versions bucket of as many records, and n keys in the
// keystore index.
func checkLayout3(t *testing.T, s *Store, n int) {
	t.Helper()
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if v := b.meta.Get(metaSchema); len(v) != 8 || beUint64(v) != schema {
			t.Errorf("layout version %x, want %d", v, schema)
		}
		if got := b.byKeystore.Stats().KeyN; got != n {
			t.Errorf("keystore index: %d rows, want %d", got, n)
		}
		return b.keys.ForEach(func(tag, rec []byte) error {
			_, count, err := codec.UnmarshalKey(rec)
			if err != nil {
				t.Errorf("key %s: %v", tag, err)
				return nil
			}
			vb := b.versions.Bucket(tag)
			if vb == nil || vb.Stats().KeyN != count {
				t.Errorf("key %s: the record says %d versions; the versions bucket does not hold them", tag, count)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
