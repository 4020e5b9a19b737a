package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
)

// addVersions returns an Update fn that appends n versions of 60 bytes of
// sealed material.
func addVersions(t testing.TB, n int) func(*nkms.Key) error {
	sealed := randomBytes(t, 60)
	return func(k *nkms.Key) error {
		now := time.Now()
		for range n {
			k.Versions = append(k.Versions, nkms.Version{Number: len(k.Versions) + 1, State: nkms.StateEnable,
				StatusDate: now, Created: now, Sealed: sealed})
		}
		return nil
	}
}

// pageBytes returns the bytes of pages that the store's committed
// transactions have written so far.
func pageBytes(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetPageAlloc()
}

// TestRotationWritesLittle: a rotation (an Update that adds a version)
// writes as many bytes of pages to the data file for a key of 900 versions
// as for a key of 10: the key record does not hold the versions, and only
// the new version's record is written. (When the record held them all, a
// rotation at 900 versions rewrote about 120 KB.)
func TestRotationWritesLittle(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{hooks: &hooks{noBackground: true}})
	written := map[int]int64{}
	for _, n := range []int{10, 900} {
		k, err := s.Create(t.Context(), testKey(t, 1, fmt.Sprintf("key%d", n), randomBytes(t, 60)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(t.Context(), k.Tag, addVersions(t, n-1)); err != nil {
			t.Fatal(err)
		}
		before := pageBytes(s)
		got, err := s.Update(t.Context(), k.Tag, addVersions(t, 1))
		if err != nil {
			t.Fatal(err)
		}
		written[n] = pageBytes(s) - before
		if got.Current() != n+1 {
			t.Fatalf("current version %d, want %d", got.Current(), n+1)
		}
	}
	t.Logf("bytes of pages written by a rotation: %d at 10 versions, %d at 900", written[10], written[900])
	const slack = 2 * 4096 // a split of a branch page now and then
	if written[900] > written[10]+slack {
		t.Errorf("a rotation wrote %d bytes of pages at 900 versions and %d at 10; want about the same", written[900], written[10])
	}
}

// TestDeleteDropsVersions: Delete removes the key's versions bucket in its
// transaction.
func TestDeleteDropsVersions(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{hooks: &hooks{noBackground: true}})
	k, err := s.Create(t.Context(), testKey(t, 1, "doomed", randomBytes(t, 60)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(t.Context(), k.Tag, addVersions(t, 5)); err != nil {
		t.Fatal(err)
	}
	versionBuckets := func() (n int) {
		t.Helper()
		err := s.view(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketVersions).ForEach(func(_, _ []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := versionBuckets(); n != 1 {
		t.Fatalf("%d version buckets before Delete, want 1", n)
	}
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	if n := versionBuckets(); n != 0 {
		t.Errorf("%d version buckets after Delete, want 0", n)
	}
}
