package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

func testCreateGetRoundTrip(t *testing.T, s nkms.Store) {
	in := newKey(t, 1, "roundTrip")
	in.Memo = "한글 memo"
	in.State = nkms.StateRevoke
	in.DestroyDate = t0.Add(72 * time.Hour)
	in.AutoRotation = true
	in.RotationPeriod = 30
	in.RotationBase = t0.Add(-1)
	in.RotationPeriodKept = true
	want := in.Clone()

	created := create(t, s, in)
	want.ID = created.ID
	checkKey(t, "Create result", created, want)
	checkKey(t, "Get after Create", get(t, s, in.Tag), want)
}

func testIDsAssigned(t *testing.T, s nkms.Store) {
	seen := map[int64]string{}
	var last int64
	for i, k := range createN(t, s, 1, "id", 10) {
		if k.ID <= 0 {
			t.Errorf("key %d: ID = %d, want positive", i, k.ID)
		}
		if other, ok := seen[k.ID]; ok {
			t.Errorf("key %d: ID %d already given to %s", i, k.ID, other)
		}
		seen[k.ID] = k.Name
		if k.ID <= last {
			t.Errorf("key %d: ID = %d, not after the previous key's %d (List orders by ID)", i, k.ID, last)
		}
		last = k.ID
	}
	// An ID given by the caller is not kept.
	in := newKey(t, 2, "preset")
	in.ID = last
	if got := create(t, s, in); got.ID == last || got.ID <= 0 {
		t.Errorf("Create with preset ID %d: got ID %d, want a fresh one", last, got.ID)
	}
}

func testNotFound(t *testing.T, s nkms.Store) {
	create(t, s, newKey(t, 1, "present"))
	tag := randomTag(t)
	ctx := t.Context()
	_, err := s.Get(ctx, tag)
	checkIs(t, "Get", err, nkms.ErrKeyNotFound)
	called := false
	_, err = s.Update(ctx, tag, func(*nkms.Key) error { called = true; return nil })
	checkIs(t, "Update", err, nkms.ErrKeyNotFound)
	err = s.Delete(ctx, tag, func(*nkms.Key) error { called = true; return nil })
	checkIs(t, "Delete", err, nkms.ErrKeyNotFound)
	if called {
		t.Error("fn was called for a missing key")
	}
}

func testDuplicateTag(t *testing.T, s nkms.Store) {
	first := create(t, s, newKey(t, 1, "first"))
	dup := newKey(t, 1, "second")
	dup.Tag = first.Tag
	_, err := s.Create(t.Context(), dup)
	checkIs(t, "Create with an existing tag", err, nkms.ErrKeyExists)
	checkKey(t, "Get after rejected Create", get(t, s, first.Tag), first)
	if _, total, err := s.List(t.Context(), 1, 1, 10); err != nil || total != 1 {
		t.Errorf("List after rejected Create: total %d, err %v; want 1, nil", total, err)
	}
}

func testNameConflictOnCreate(t *testing.T, s nkms.Store) {
	create(t, s, newKey(t, 1, "Orders"))
	for _, name := range []string{"Orders", "orders", "ORDERS"} {
		_, err := s.Create(t.Context(), newKey(t, 1, name))
		checkIs(t, "Create "+name+" in the same keystore", err, nkms.ErrNameConflict)
	}
	create(t, s, newKey(t, 2, "orders")) // another keystore
	if _, total, err := s.List(t.Context(), 1, 1, 10); err != nil || total != 1 {
		t.Errorf("List keystore 1: total %d, err %v; want 1, nil", total, err)
	}
}

func testNameConflictOnRename(t *testing.T, s nkms.Store) {
	a := create(t, s, newKey(t, 1, "alpha"))
	b := create(t, s, newKey(t, 1, "beta"))
	create(t, s, newKey(t, 2, "gamma"))
	ctx := t.Context()

	_, err := s.Update(ctx, b.Tag, func(k *nkms.Key) error { k.Name = "ALPHA"; return nil })
	checkIs(t, "rename beta to ALPHA", err, nkms.ErrNameConflict)
	checkKey(t, "beta after rejected rename", get(t, s, b.Tag), b)

	got, err := s.Update(ctx, a.Tag, func(k *nkms.Key) error { k.Name = "Alpha"; return nil })
	if err != nil {
		t.Fatalf("rename alpha to its own name in other case: %v", err)
	}
	if got.Name != "Alpha" {
		t.Errorf("renamed key name = %q, want %q", got.Name, "Alpha")
	}
	if _, err := s.Update(ctx, b.Tag, func(k *nkms.Key) error { k.Name = "gamma"; return nil }); err != nil {
		t.Errorf("rename beta to a name used in another keystore: %v", err)
	}
	// The old name of a renamed key is free again.
	if _, err := s.Create(ctx, newKey(t, 1, "beta")); err != nil {
		t.Errorf("Create with the old name of a renamed key: %v", err)
	}
	_, err = s.Create(ctx, newKey(t, 1, "GAMMA"))
	checkIs(t, "Create with the new name of a renamed key", err, nkms.ErrNameConflict)
}

func testDeleteFreesName(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "reused"))
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Create(t.Context(), newKey(t, 1, "REUSED")); err != nil {
		t.Errorf("Create with the name of a deleted key: %v", err)
	}
}

func testUpdateFnError(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "fnError"))
	errFn := errors.New("fn says no")
	got, err := s.Update(t.Context(), k.Tag, func(k *nkms.Key) error {
		k.Memo = "changed"
		k.Name = "renamed"
		k.Versions[0].Sealed[0] ^= 0xff
		k.Versions = append(k.Versions, nkms.Version{Number: 3})
		return errFn
	})
	checkIs(t, "Update with failing fn", err, errFn)
	if got != nil {
		t.Errorf("Update with failing fn returned key %v, want nil", got)
	}
	checkKey(t, "key after failed Update", get(t, s, k.Tag), k)
	// The name is still taken by the key and "renamed" is still free.
	if _, err := s.Create(t.Context(), newKey(t, 1, "renamed")); err != nil {
		t.Errorf("Create with the name a failed Update tried: %v", err)
	}
}

func testUpdateKeepsIdentity(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "identity"))
	other := randomTag(t)
	for _, tc := range []struct {
		name string
		fn   func(*nkms.Key) error
	}{
		{"tag", func(k *nkms.Key) error { k.Tag = other; return nil }},
		{"id", func(k *nkms.Key) error { k.ID++; return nil }},
	} {
		if _, err := s.Update(t.Context(), k.Tag, tc.fn); err == nil {
			t.Errorf("Update changing the %s succeeded", tc.name)
		}
	}
	checkKey(t, "key after rejected Updates", get(t, s, k.Tag), k)
	_, err := s.Get(t.Context(), other)
	checkIs(t, "Get of the tag an Update tried", err, nkms.ErrKeyNotFound)
}

func testDeleteFnError(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "keepMe"))
	errFn := errors.New("not yet")
	var seen *nkms.Key
	err := s.Delete(t.Context(), k.Tag, func(cur *nkms.Key) error { seen = cur.Clone(); return errFn })
	checkIs(t, "Delete with failing fn", err, errFn)
	checkKey(t, "key given to Delete's fn", seen, k)
	checkKey(t, "key after refused Delete", get(t, s, k.Tag), k)
	_, err = s.Create(t.Context(), newKey(t, 1, "keepme"))
	checkIs(t, "Create with the name of a key whose Delete was refused", err, nkms.ErrNameConflict)
}

func testDelete(t *testing.T, s nkms.Store) {
	keys := createN(t, s, 1, "del", 3)
	if err := s.Delete(t.Context(), keys[1].Tag, func(*nkms.Key) error { return nil }); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(t.Context(), keys[1].Tag)
	checkIs(t, "Get after Delete", err, nkms.ErrKeyNotFound)
	err = s.Delete(t.Context(), keys[1].Tag, nil)
	checkIs(t, "second Delete", err, nkms.ErrKeyNotFound)
	page, total, err := s.List(t.Context(), 1, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if total != 2 || len(page) != 2 || page[0].Tag != keys[2].Tag || page[1].Tag != keys[0].Tag {
		t.Errorf("List after Delete: total %d, %d keys; want the 2 others", total, len(page))
	}
}

func testClosed(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "closed"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := t.Context()
	_, err := s.Get(ctx, k.Tag)
	checkFails(t, "Get", err)
	_, err = s.Create(ctx, newKey(t, 1, "after"))
	checkFails(t, "Create", err)
	_, _, err = s.List(ctx, 1, 1, 10)
	checkFails(t, "List", err)
	_, err = s.Update(ctx, k.Tag, setMemo("x"))
	checkFails(t, "Update", err)
	checkFails(t, "Delete", s.Delete(ctx, k.Tag, nil))
	_, err = s.Due(ctx, t0, 10)
	checkFails(t, "Due", err)
	checkFails(t, "PutAccessKey", s.PutAccessKey(ctx, newAccessKey(t, "AKclosed")))
	_, err = s.ListAccessKeys(ctx)
	checkFails(t, "ListAccessKeys", err)
	checkFails(t, "AppendActivities", s.AppendActivities(ctx, []nkms.Activity{activity(k, t0, "Encrypt")}, 0))
	_, _, err = s.Activities(ctx, allOf(k))
	checkFails(t, "Activities", err)
	_, err = s.LastActivity(ctx, k.Tag)
	checkFails(t, "LastActivity", err)
	_, err = s.PruneActivities(ctx, t0)
	checkFails(t, "PruneActivities", err)
}

// checkIs fails the test unless errors.Is(err, want).
func checkIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

// checkFails fails the test if err is nil.
func checkFails(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s after Close: got no error", what)
	}
}
