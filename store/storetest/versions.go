package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

// testIDsPerKeystore: each keystore numbers its keys 1, 2, 3, … whatever
// the others do, and a deleted key's ID is not given again.
func testIDsPerKeystore(t *testing.T, s nkms.Store) {
	ids := map[int64][]int64{}
	var ks1 []*nkms.Key
	for i := range 4 {
		for _, keystore := range []int64{1, 2} {
			k := create(t, s, newKey(t, keystore, fmt.Sprintf("k%d", i)))
			ids[keystore] = append(ids[keystore], k.ID)
			if keystore == 1 {
				ks1 = append(ks1, k)
			}
		}
	}
	ids[3] = append(ids[3], create(t, s, newKey(t, 3, "alone")).ID)
	want := map[int64][]int64{1: {1, 2, 3, 4}, 2: {1, 2, 3, 4}, 3: {1}}
	if diff := cmp.Diff(ids, want); diff != "" {
		t.Errorf("IDs by keystore (-got +want):\n%s", diff)
	}
	// Deleting the newest and a middle key frees no ID.
	for _, k := range []*nkms.Key{ks1[3], ks1[1]} {
		if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
			t.Fatal(err)
		}
	}
	next := create(t, s, newKey(t, 1, "after"))
	if next.ID != 5 {
		t.Errorf("ID after deleting keystore 1's keys 4 and 2 = %d, want 5", next.ID)
	}
	page, total, err := s.List(t.Context(), 1, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, k := range page {
		got = append(got, k.ID)
	}
	if total != 3 || !slices.Equal(got, []int64{5, 3, 1}) {
		t.Errorf("List of keystore 1: IDs %v of %d, want [5 3 1] of 3", got, total)
	}
	if k := get(t, s, next.Tag); k.ID != 5 {
		t.Errorf("Get: ID %d, want 5", k.ID)
	}
}

// testConcurrentCreateIDs: concurrent Creates in two keystores get the IDs
// 1..n of their keystore, each once.
func testConcurrentCreateIDs(t *testing.T, s nkms.Store) {
	const n = 12
	var mu sync.Mutex
	ids := map[int64][]int64{}
	var wg sync.WaitGroup
	for i := range n {
		for _, keystore := range []int64{1, 2} {
			k := newKey(t, keystore, fmt.Sprintf("race%d", i))
			wg.Go(func() {
				c, err := s.Create(t.Context(), k)
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				mu.Lock()
				ids[keystore] = append(ids[keystore], c.ID)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	var want []int64
	for i := range n {
		want = append(want, int64(i+1))
	}
	for _, keystore := range []int64{1, 2} {
		slices.Sort(ids[keystore])
		if !slices.Equal(ids[keystore], want) {
			t.Errorf("keystore %d: IDs %v, want %v", keystore, ids[keystore], want)
		}
	}
}

// addVersion returns an Update fn that appends a version, as a rotation does.
func addVersion(sealed []byte, at time.Time) func(*nkms.Key) error {
	return func(k *nkms.Key) error {
		n := len(k.Versions) + 1
		k.Versions = append(k.Versions, nkms.Version{Number: n, State: nkms.StateEnable, StatusDate: at, Created: at, Sealed: sealed})
		return nil
	}
}

// rotateTo adds versions to the stored key k, one Update each, until it has
// n, and returns the key as it should be stored.
func rotateTo(t *testing.T, s nkms.Store, k *nkms.Key, n int) *nkms.Key {
	t.Helper()
	want := k.Clone()
	for i := len(k.Versions); i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Hour)
		sealed := randomBytes(t, 40+i%50)
		got, err := s.Update(t.Context(), k.Tag, addVersion(sealed, at))
		if err != nil {
			t.Fatalf("Update adding version %d: %v", i+1, err)
		}
		if err := addVersion(sealed, at)(want); err != nil {
			t.Fatal(err)
		}
		if got.Current() != i+1 {
			t.Fatalf("Update adding version %d: current %d", i+1, got.Current())
		}
	}
	return want
}

// manyVersions is more versions than fit in a page of bbolt or a txn of
// store/etcd.
const manyVersions = 150

// testManyVersions: a key rotated many times reads back whole, and an
// Update that changes no version keeps them all.
func testManyVersions(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "many"))
	want := rotateTo(t, s, k, manyVersions)
	checkKey(t, "Get after rotations", get(t, s, k.Tag), want)
	updated, err := s.Update(t.Context(), k.Tag, setMemo("versions kept"))
	if err != nil {
		t.Fatal(err)
	}
	want.Memo = "versions kept"
	checkKey(t, "Update result", updated, want)
	checkKey(t, "Get after a memo Update", get(t, s, k.Tag), want)
	page, total, err := s.List(t.Context(), 1, 1, 10)
	if err != nil || total != 1 || len(page) != 1 {
		t.Fatalf("List: %d keys of %d, %v", len(page), total, err)
	}
	checkKey(t, "List", page[0], want)
}

// testVersionState: disabling and enabling an old version of a key of many
// versions changes that version only.
func testVersionState(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "states"))
	want := rotateTo(t, s, k, 40)
	at := t0.Add(1000 * time.Hour)
	for _, st := range []nkms.State{nkms.StateDisable, nkms.StateEnable} {
		got, err := s.Update(t.Context(), k.Tag, func(k *nkms.Key) error {
			v, err := k.Version(17)
			if err != nil {
				return err
			}
			v.State, v.StatusDate = st, at
			return nil
		})
		if err != nil {
			t.Fatalf("Update setting version 17 %s: %v", st, err)
		}
		want.Versions[16].State, want.Versions[16].StatusDate = st, at
		checkKey(t, "Update result, version 17 "+string(st), got, want)
		checkKey(t, "Get, version 17 "+string(st), get(t, s, k.Tag), want)
		page, _, err := s.ListVersions(t.Context(), k.Tag, 2, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(page, want.Versions[10:20], keyOpts); diff != "" {
			t.Errorf("ListVersions page 2 of 10, version 17 %s (-got +want):\n%s", st, diff)
		}
		at = at.Add(time.Hour)
	}
}

// testVersionNumbering: versions must be numbered 1..n; Create and Update
// refuse others and change nothing.
func testVersionNumbering(t *testing.T, s nkms.Store) {
	bad := newKey(t, 1, "gap")
	bad.Versions[1].Number = 3
	if _, err := s.Create(t.Context(), bad); err == nil {
		t.Error("Create with versions 1 and 3 succeeded")
	}
	if _, err := s.Get(t.Context(), bad.Tag); !errors.Is(err, nkms.ErrKeyNotFound) {
		t.Errorf("Get after the refused Create: %v, want %v", err, nkms.ErrKeyNotFound)
	}
	k := create(t, s, newKey(t, 1, "numbered"))
	for name, fn := range map[string]func(*nkms.Key) error{
		"renumber":  func(k *nkms.Key) error { k.Versions[0].Number = 7; return nil },
		"duplicate": func(k *nkms.Key) error { k.Versions = append(k.Versions, k.Versions[1]); return nil },
		"zero":      func(k *nkms.Key) error { k.Versions = append(k.Versions, nkms.Version{}); return nil },
	} {
		if _, err := s.Update(t.Context(), k.Tag, fn); err == nil {
			t.Errorf("Update that breaks the numbering (%s) succeeded", name)
		}
	}
	checkKey(t, "key after refused Updates", get(t, s, k.Tag), k)
}

// testVersionsPage pages through a key's versions.
func testVersionsPage(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "paged"))
	want := rotateTo(t, s, k, 7).Versions
	ctx := t.Context()
	for _, tc := range []struct {
		pageNo, pageSize int
		want             []nkms.Version
	}{
		{1, 3, want[0:3]},
		{2, 3, want[3:6]},
		{3, 3, want[6:7]},
		{4, 3, nil},
		{1000, 3, nil},
		{1, 7, want},
		{1, 200, want},
		{2, 7, nil},
		{7, 1, want[6:7]},
	} {
		got, total, err := s.ListVersions(ctx, k.Tag, tc.pageNo, tc.pageSize)
		if err != nil {
			t.Fatalf("ListVersions(page %d, size %d): %v", tc.pageNo, tc.pageSize, err)
		}
		if total != len(want) {
			t.Errorf("ListVersions(page %d, size %d): total %d, want %d", tc.pageNo, tc.pageSize, total, len(want))
		}
		if diff := cmp.Diff(got, tc.want, keyOpts); diff != "" {
			t.Errorf("ListVersions(page %d, size %d) (-got +want):\n%s", tc.pageNo, tc.pageSize, diff)
		}
	}
	// The page is the caller's.
	page, _, err := s.ListVersions(ctx, k.Tag, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	page[0].Sealed[0] ^= 0xff
	page[1].State = nkms.StateDisable
	if again, _, err := s.ListVersions(ctx, k.Tag, 1, 2); err != nil || !cmp.Equal(again, want[0:2], keyOpts) {
		t.Errorf("ListVersions after changing an earlier page: %v", err)
	}
	for _, bad := range [][2]int{{0, 10}, {1, 0}, {-1, 10}} {
		if _, _, err := s.ListVersions(ctx, k.Tag, bad[0], bad[1]); nkms.ErrorCode(err) != nkms.Invalid {
			t.Errorf("ListVersions(page %d, size %d): error %v, want code %s", bad[0], bad[1], err, nkms.Invalid)
		}
	}
	_, _, err = s.ListVersions(ctx, randomTag(t), 1, 10)
	checkIs(t, "ListVersions of an unknown key", err, nkms.ErrKeyNotFound)
}

// testVersionsGoWithKey: a deleted key's versions are gone with it; a key
// created again under its tag has only its own.
func testVersionsGoWithKey(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "doomed"))
	rotateTo(t, s, k, 20)
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.ListVersions(t.Context(), k.Tag, 1, 10)
	checkIs(t, "ListVersions after Delete", err, nkms.ErrKeyNotFound)
	again := newKey(t, 1, "reborn")
	again.Tag = k.Tag
	again.Versions = again.Versions[:1]
	created := create(t, s, again)
	checkKey(t, "Get of a key created under a deleted key's tag", get(t, s, k.Tag), created)
	page, total, err := s.ListVersions(t.Context(), k.Tag, 1, 100)
	if err != nil || total != 1 || !cmp.Equal(page, created.Versions, keyOpts) {
		t.Errorf("ListVersions of the new key: %d versions of %d, %v; want its one version", len(page), total, err)
	}
}

// testConcurrentRotations: Updates that each add a version, run at once,
// all land, numbered 1..n.
func testConcurrentRotations(t *testing.T, s nkms.Store) {
	const n = 30
	k := newKey(t, 1, "rotated")
	k.Versions = k.Versions[:1]
	k = create(t, s, k)
	var wg sync.WaitGroup
	for i := range n {
		sealed := []byte(fmt.Sprintf("sealed by rotation %d", i))
		wg.Go(func() {
			if _, err := s.Update(t.Context(), k.Tag, addVersion(sealed, t0)); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	got := get(t, s, k.Tag)
	seen := map[string]bool{}
	for i, v := range got.Versions {
		if v.Number != i+1 {
			t.Errorf("version at %d has number %d", i, v.Number)
		}
		seen[string(v.Sealed)] = true
	}
	if len(got.Versions) != n+1 || len(seen) != n+1 {
		t.Errorf("after %d concurrent rotations: %d versions, %d distinct; want %d", n, len(got.Versions), len(seen), n+1)
	}
}
