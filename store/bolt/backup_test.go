package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
)

// snapshotTo writes a snapshot of s to a new file and returns its path.
func snapshotTo(t *testing.T, s *Store, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var size, written int64
	err = s.Snapshot(t.Context(), func(sn nkms.Snapshot) error {
		size = sn.Size()
		written, err = sn.WriteTo(f)
		return err
	})
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if written != size {
		t.Fatalf("Snapshot wrote %d bytes, announced %d", written, size)
	}
	return size
}

// TestSnapshotWhileWriting takes a snapshot while other goroutines create
// keys: the copy is a complete data file holding every key created before
// it, unchanged, and whole keys only.
func TestSnapshotWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "nkms.db"), Options{})
	ctx := t.Context()
	if _, err := s.RootCheck(ctx, []byte("sealed-check")); err != nil {
		t.Fatal(err)
	}
	var before []*nkms.Key
	for i := range 20 {
		k, err := s.Create(ctx, testKey(t, 1, fmt.Sprintf("before-%d", i), randomBytes(t, 32)))
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, k)
	}
	a := &nkms.AccessKey{ID: "NKbackup", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("sealed"), Created: time.Now()}
	if err := s.CreateAccessKey(ctx, a); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Create(ctx, testKey(t, 2, fmt.Sprintf("during-%d-%d", w, i), randomBytes(t, 32))); err != nil {
					t.Errorf("Create during snapshot: %v", err)
					return
				}
			}
		})
	}
	backup := filepath.Join(dir, "backup.db")
	size := snapshotTo(t, s, backup)
	close(stop)
	wg.Wait()

	info, err := CheckFile(backup, time.Second)
	if err != nil {
		t.Fatalf("CheckFile of the snapshot: %v", err)
	}
	if info.Size != size || info.Schema != schema || info.AccessKeys != 1 || !bytes.Equal(info.RootCheck, []byte("sealed-check")) {
		t.Errorf("CheckFile = %+v; want size %d, schema %d, 1 access key, the root check", info, size, schema)
	}
	if info.Keys < len(before) {
		t.Errorf("snapshot has %d keys, want at least the %d created before it", info.Keys, len(before))
	}

	restored := openTest(t, backup, Options{})
	for _, k := range before {
		got, err := restored.Get(ctx, k.Tag)
		if diff := cmp.Diff(got, k); err != nil || diff != "" {
			t.Errorf("key %s in the snapshot: err %v (-got +want):\n%s", k.Name, err, diff)
		}
	}
	_, total1, err := restored.List(ctx, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, total2, err := restored.List(ctx, 2, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if total1+total2 != info.Keys || total1 != len(before) {
		t.Errorf("snapshot counts: keystore 1 %d, keystore 2 %d, keys bucket %d; want %d in keystore 1 and a consistent sum",
			total1, total2, info.Keys, len(before))
	}
}

// TestSnapshotScrubsFirst: a key deleted before the snapshot leaves no
// trace of its sealed material in it, though its pages were only freed.
func TestSnapshotScrubsFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "nkms.db")
	s := openTest(t, path, Options{ScrubDelay: time.Hour})
	ctx := t.Context()
	k, marker := createMarked(t, s, "gone")
	if _, err := s.Create(ctx, testKey(t, 1, "kept", randomBytes(t, 32))); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, marker, true, "after Delete (bbolt keeps freed pages)")
	backup := filepath.Join(dir, "backup.db")
	snapshotTo(t, s, backup)
	if inFile(t, backup, marker) {
		t.Error("the snapshot holds the sealed material of a deleted key")
	}
	if info, err := CheckFile(backup, time.Second); err != nil || info.Keys != 1 {
		t.Errorf("CheckFile = %+v, %v; want 1 key", info, err)
	}
}

func TestSnapshotCancelled(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.Snapshot(ctx, func(nkms.Snapshot) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Snapshot with a cancelled context: err %v, fn called %v; want context.Canceled, not called", err, called)
	}
}

func TestCheckFileRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "nkms.db"), Options{})
	for i := range 50 {
		if _, err := s.Create(t.Context(), testKey(t, 1, fmt.Sprintf("k%d", i), randomBytes(t, 512))); err != nil {
			t.Fatal(err)
		}
	}
	good := filepath.Join(dir, "good.db")
	size := snapshotTo(t, s, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherDB := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(otherDB, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("unrelated")); return err })
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte("not a database "), 4096)

	for _, tc := range []struct{ name, path string }{
		{"truncated", write("truncated.db", data[:size/2])},
		{"truncated to the meta pages", write("meta.db", data[:2*4096])},
		{"garbage", write("garbage.db", garbage)},
		{"empty", write("empty.db", nil)},
		{"another bbolt database", otherDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if info, err := CheckFile(tc.path, time.Second); !errors.Is(err, ErrNotDataFile) {
				t.Errorf("CheckFile = %+v, %v; want ErrNotDataFile", info, err)
			}
		})
	}
	t.Run("in use", func(t *testing.T) {
		if _, err := CheckFile(filepath.Join(dir, "nkms.db"), 50*time.Millisecond); !errors.Is(err, ErrInUse) {
			t.Errorf("CheckFile of an open data file: %v; want ErrInUse", err)
		}
	})
}

// TestReadFile: every key and access key of a snapshot is read back as
// stored.
func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "nkms.db"), Options{})
	want := map[string][]byte{}
	for i := range 5 {
		k := testKey(t, int64(1+i%2), fmt.Sprintf("k%d", i), randomBytes(t, 64))
		if _, err := s.Create(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		want[k.Tag] = k.Versions[0].Sealed
	}
	if err := s.PutAccessKey(t.Context(), &nkms.AccessKey{ID: "AK", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("sealed")}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "copy.db")
	snapshotTo(t, s, path)
	got := map[string][]byte{}
	var aks []string
	err := ReadFile(path, time.Second, func(k *nkms.Key) error {
		got[k.Tag] = k.Versions[0].Sealed
		return nil
	}, func(a *nkms.AccessKey) error {
		aks = append(aks, a.ID+":"+string(a.SealedSecret))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" || len(aks) != 1 || aks[0] != "AK:sealed" {
		t.Errorf("ReadFile: keys (-want +got):\n%s\naccess keys %v", diff, aks)
	}
}
