package storetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

func testPaging(t *testing.T, s nkms.Store) {
	mine := createN(t, s, 1, "mine", 7)
	others := createN(t, s, 2, "other", 3)
	newestFirst := reversed(mine)
	for _, tc := range []struct {
		keystore         int64
		pageNo, pageSize int
		want             []*nkms.Key
		total            int
	}{
		{1, 1, 3, newestFirst[0:3], 7},
		{1, 2, 3, newestFirst[3:6], 7},
		{1, 3, 3, newestFirst[6:7], 7},
		{1, 4, 3, nil, 7},
		{1, 100, 3, nil, 7},
		{1, 1, 7, newestFirst, 7},
		{1, 1, 200, newestFirst, 7},
		{1, 2, 7, nil, 7},
		{2, 1, 10, reversed(others), 3},
		{2, 2, 2, others[0:1], 3},
		{3, 1, 10, nil, 0},
	} {
		t.Run(fmt.Sprintf("keystore%d/page%d/size%d", tc.keystore, tc.pageNo, tc.pageSize), func(t *testing.T) {
			got, total, err := s.List(t.Context(), tc.keystore, tc.pageNo, tc.pageSize)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if total != tc.total {
				t.Errorf("total = %d, want %d", total, tc.total)
			}
			if diff := cmp.Diff(got, tc.want, keyOpts); diff != "" {
				t.Errorf("page (-got +want):\n%s", diff)
			}
		})
	}
	t.Run("pageSize1", func(t *testing.T) {
		var tags, want []string
		for p := 1; p <= len(mine)+1; p++ {
			got, total, err := s.List(t.Context(), 1, p, 1)
			if err != nil {
				t.Fatalf("List page %d: %v", p, err)
			}
			if total != len(mine) {
				t.Errorf("page %d: total = %d, want %d", p, total, len(mine))
			}
			if wantLen := min(1, len(mine)+1-p); len(got) != wantLen {
				t.Errorf("page %d: %d keys, want %d", p, len(got), wantLen)
			}
			for _, k := range got {
				tags = append(tags, k.Tag)
			}
		}
		for _, k := range newestFirst {
			want = append(want, k.Tag)
		}
		if diff := cmp.Diff(tags, want); diff != "" {
			t.Errorf("tags over all pages of size 1 (-got +want):\n%s", diff)
		}
	})
}

func testCopiesOnCreateAndGet(t *testing.T, s nkms.Store) {
	in := newKey(t, 1, "copies")
	created := create(t, s, in)
	want := created.Clone()

	in.Memo = "input changed"
	in.Versions[0].Sealed[0] ^= 0xff
	in.Versions = append(in.Versions, nkms.Version{Number: 3})
	checkKey(t, "after changing Create's input", get(t, s, want.Tag), want)

	created.Name = "createdChanged"
	created.Versions[1].Sealed[0] ^= 0xff
	created.Versions[0].State = nkms.StateEnable
	checkKey(t, "after changing Create's result", get(t, s, want.Tag), want)

	// A Get result's versions are read-only (they may be shared); everything
	// else is the caller's, and appending a version copies.
	got := get(t, s, want.Tag)
	got.Memo = "got changed"
	got.AllowedIPs[0] = "192.0.2.1"
	got.TokenGen.SealedSecret[0] ^= 0xff
	got.Versions = append(got.Versions, nkms.Version{Number: 3, Sealed: []byte("appended")})
	got.Versions = got.Versions[:1]
	checkKey(t, "after changing Get's result", get(t, s, want.Tag), want)
	a, b := get(t, s, want.Tag), get(t, s, want.Tag)
	a.Versions = append(a.Versions, nkms.Version{Number: 3, Sealed: []byte("a")})
	b.Versions = append(b.Versions, nkms.Version{Number: 3, Sealed: []byte("b")})
	if got := string(a.Versions[2].Sealed); got != "a" {
		t.Errorf("a version appended to one Get result reads %q after an append to another, want %q", got, "a")
	}
	checkKey(t, "after appending to Get results", get(t, s, want.Tag), want)

	// The changed result's name must not be reserved, nor the old one freed.
	if _, err := s.Create(t.Context(), newKey(t, 1, "createdChanged")); err != nil {
		t.Errorf("Create with the name set on a returned copy: %v", err)
	}
}

func testCopiesOnUpdate(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "updCopies"))
	var kept *nkms.Key
	updated, err := s.Update(t.Context(), k.Tag, func(k *nkms.Key) error {
		kept = k
		k.Memo = "updated"
		k.Versions[1].State = nkms.StateDisable
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := k.Clone()
	want.Memo = "updated"
	want.Versions[1].State = nkms.StateDisable
	checkKey(t, "Update result", updated, want)
	checkKey(t, "Get after Update", get(t, s, k.Tag), want)

	kept.Memo = "kept by fn"
	kept.Versions[0].Sealed[0] ^= 0xff
	checkKey(t, "after changing the key fn kept", get(t, s, k.Tag), want)
	updated.Memo = "result changed"
	updated.Versions[1].Sealed[0] ^= 0xff
	checkKey(t, "after changing Update's result", get(t, s, k.Tag), want)

	var deleteSaw *nkms.Key
	errKeep := fmt.Errorf("keep")
	_ = s.Delete(t.Context(), k.Tag, func(k *nkms.Key) error {
		deleteSaw = k
		k.Memo = "changed in Delete fn"
		return errKeep
	})
	deleteSaw.Versions[0].Sealed[0] ^= 0xff
	checkKey(t, "after changing the key Delete's fn saw", get(t, s, k.Tag), want)
}

func testCopiesOnList(t *testing.T, s nkms.Store) {
	keys := createN(t, s, 1, "listCopy", 2)
	page, _, err := s.List(t.Context(), 1, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range page {
		k.Memo = "changed"
		k.Versions[0].Sealed[0] ^= 0xff
	}
	for _, k := range keys {
		checkKey(t, "after changing List's result", get(t, s, k.Tag), k)
	}
}

// reversed returns the keys in reverse order (newest first for keys created in order).
func reversed(keys []*nkms.Key) []*nkms.Key {
	r := make([]*nkms.Key, len(keys))
	for i, k := range keys {
		r[len(keys)-1-i] = k
	}
	return r
}
