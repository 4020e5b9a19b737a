package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/storetest"
)

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		// Compactions swap the file while the suite's operations run.
		{"eagerScrub", Options{ScrubDelay: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) nkms.Store {
				s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), tc.opts)
				t.Cleanup(func() { checkActivityIndex(t, s) }) // before Close
				return s
			})
		})
	}
}

// openTest opens a store and closes it at the end of the test.
func openTest(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// testKey returns a key with one version holding sealed.
func testKey(t testing.TB, keystore int64, name string, sealed []byte) *nkms.Key {
	t.Helper()
	now := time.Now()
	return &nkms.Key{
		Tag: randomTag(t), Keystore: keystore, Name: name, Type: nkms.AES256, Protection: nkms.ProtectionBasic,
		State: nkms.StateEnable, StatusDate: now, Registered: now, RotationPeriod: nkms.DefaultRotationPeriod,
		Versions: []nkms.Version{{Number: 1, State: nkms.StateEnable, StatusDate: now, Created: now, Sealed: sealed}},
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var keys []*nkms.Key
	for i, name := range []string{"one", "two", "three"} {
		k := testKey(t, 1, name, randomBytes(t, 32))
		if i == 1 {
			k.State, k.DestroyDate = nkms.StateRevoke, time.Now().Add(time.Hour)
		}
		k, err := s.Create(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := s.Delete(ctx, keys[2].Tag, nil); err != nil {
		t.Fatal(err)
	}
	a := &nkms.AccessKey{ID: "NKreopen", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("sealed"), Created: time.Now()}
	if err := s.CreateAccessKey(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	page, total, err := s.List(ctx, 1, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(page, []*nkms.Key{keys[1], keys[0]}, cmpopts.EquateEmpty()); diff != "" || total != 2 {
		t.Errorf("List after reopen: total %d (want 2), page (-got +want):\n%s", total, diff)
	}
	if due, err := s.Due(ctx, time.Now().Add(2*time.Hour), 10); err != nil || len(due) != 1 || due[0] != keys[1].Tag {
		t.Errorf("Due after reopen = %v, %v; want [%s]", due, err, keys[1].Tag)
	}
	got, err := s.GetAccessKey(ctx, a.ID)
	if diff := cmp.Diff(got, a); err != nil || diff != "" {
		t.Errorf("GetAccessKey after reopen: err %v, (-got +want):\n%s", err, diff)
	}
	k, err := s.Create(ctx, testKey(t, 1, "four", nil))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID <= keys[2].ID {
		t.Errorf("ID after reopen = %d, want above the last one given, %d", k.ID, keys[2].ID)
	}
}

func TestOpenInUse(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	openTest(t, path, Options{})
	_, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: got error %v, want ErrInUse", err)
	}
	if want := "in use by another nkms process"; !strings.Contains(err.Error(), want) {
		t.Errorf("second Open: error %q does not say %q", err, want)
	}
}

func TestFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s := openTest(t, path, Options{})
	check := func(when string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("data file mode %s = %v, want 0600", when, got)
		}
	}
	check("after Open")
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("after Compact")
}

func TestOpenUnknownLayout(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(metaSchema, be64(schema+1))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a data file with a newer layout succeeded")
	}
}

func TestIsFileAt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if same, err := isFileAt(f, path); err != nil || !same {
		t.Errorf("isFileAt of the file at path = %v, %v; want true", same, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "b"), path); err != nil {
		t.Fatal(err)
	}
	if same, err := isFileAt(f, path); err != nil || same {
		t.Errorf("isFileAt of a replaced file = %v, %v; want false", same, err)
	}
}
