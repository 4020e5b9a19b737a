package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

// newAccessKey returns an access key with a random sealed secret.
func newAccessKey(t *testing.T, id string) *nkms.AccessKey {
	t.Helper()
	return &nkms.AccessKey{
		ID: id, Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: randomBytes(t, 48), Created: t0.Add(time.Second),
	}
}

// getAccessKey reads an access key and fails the test on error.
func getAccessKey(t *testing.T, s nkms.Store, id string) *nkms.AccessKey {
	t.Helper()
	a, err := s.GetAccessKey(t.Context(), id)
	if err != nil {
		t.Fatalf("GetAccessKey(%s): %v", id, err)
	}
	return a
}

func checkAccessKey(t *testing.T, what string, got, want *nkms.AccessKey) {
	t.Helper()
	if diff := cmp.Diff(got, want, keyOpts); diff != "" {
		t.Errorf("%s (-got +want):\n%s", what, diff)
	}
}

func testAccessKeyCreate(t *testing.T, s nkms.Store) {
	a := newAccessKey(t, "NKcreate")
	if err := s.CreateAccessKey(t.Context(), a); err != nil {
		t.Fatalf("CreateAccessKey: %v", err)
	}
	checkAccessKey(t, "GetAccessKey after Create", getAccessKey(t, s, a.ID), a)

	again := newAccessKey(t, a.ID)
	again.Keystore = 9
	checkIs(t, "CreateAccessKey with a taken id", s.CreateAccessKey(t.Context(), again), nkms.ErrAccessKeyExists)
	checkAccessKey(t, "GetAccessKey after rejected Create", getAccessKey(t, s, a.ID), a)
}

func testAccessKeyPutReplaces(t *testing.T, s nkms.Store) {
	a := newAccessKey(t, "NKput")
	if err := s.PutAccessKey(t.Context(), a); err != nil {
		t.Fatalf("PutAccessKey (new): %v", err)
	}
	checkAccessKey(t, "GetAccessKey after Put", getAccessKey(t, s, a.ID), a)
	b := newAccessKey(t, a.ID)
	b.Keystore, b.Created = 5, t0.Add(time.Hour)
	if err := s.PutAccessKey(t.Context(), b); err != nil {
		t.Fatalf("PutAccessKey (replace): %v", err)
	}
	checkAccessKey(t, "GetAccessKey after replacing Put", getAccessKey(t, s, a.ID), b)
	all, err := s.ListAccessKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("ListAccessKeys after replacing Put: %d keys, want 1", len(all))
	}
}

func testAccessKeyNotFound(t *testing.T, s nkms.Store) {
	if err := s.CreateAccessKey(t.Context(), newAccessKey(t, "NKpresent")); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetAccessKey(t.Context(), "NKabsent")
	checkIs(t, "GetAccessKey of a missing id", err, nkms.ErrAccessKeyNotFound)
	all, err := s.ListAccessKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("ListAccessKeys: %d keys, want 1", len(all))
	}
}

func testAccessKeyList(t *testing.T, s nkms.Store) {
	if all, err := s.ListAccessKeys(t.Context()); err != nil || len(all) != 0 {
		t.Errorf("ListAccessKeys of an empty store: %d keys, err %v; want none", len(all), err)
	}
	var want []*nkms.AccessKey
	for _, id := range []string{"NKa", "NKB", "AKz", "NKb", "NK_1", "NK-1"} {
		a := newAccessKey(t, id)
		if err := s.CreateAccessKey(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
	}
	order := []int{2, 5, 1, 4, 0, 3} // by ID, byte order: AKz NK-1 NKB NK_1 NKa NKb
	sorted := make([]*nkms.AccessKey, len(order))
	for i, j := range order {
		sorted[i] = want[j]
	}
	all, err := s.ListAccessKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, sorted, keyOpts); diff != "" {
		t.Errorf("ListAccessKeys (-got +want):\n%s", diff)
	}
}

func testAccessKeyCopies(t *testing.T, s nkms.Store) {
	a := newAccessKey(t, "NKcopy")
	want := *a
	want.SealedSecret = append([]byte(nil), a.SealedSecret...)
	if err := s.CreateAccessKey(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	a.SealedSecret[0] ^= 0xff
	a.Keystore = 99
	checkAccessKey(t, "after changing CreateAccessKey's input", getAccessKey(t, s, want.ID), &want)

	got := getAccessKey(t, s, want.ID)
	got.SealedSecret[0] ^= 0xff
	got.Role = "nobody"
	checkAccessKey(t, "after changing GetAccessKey's result", getAccessKey(t, s, want.ID), &want)

	all, err := s.ListAccessKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all[0].SealedSecret[1] ^= 0xff
	checkAccessKey(t, "after changing ListAccessKeys's result", getAccessKey(t, s, want.ID), &want)

	b := newAccessKey(t, "NKput")
	wantB := *b
	wantB.SealedSecret = append([]byte(nil), b.SealedSecret...)
	if err := s.PutAccessKey(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	b.SealedSecret[0] ^= 0xff
	checkAccessKey(t, "after changing PutAccessKey's input", getAccessKey(t, s, b.ID), &wantB)
}

func testAccessKeyDelete(t *testing.T, s nkms.Store) {
	a, b := newAccessKey(t, "NKgone"), newAccessKey(t, "NKkept")
	for _, k := range []*nkms.AccessKey{a, b} {
		if err := s.CreateAccessKey(t.Context(), k); err != nil {
			t.Fatalf("CreateAccessKey: %v", err)
		}
	}
	if err := s.DeleteAccessKey(t.Context(), a.ID); err != nil {
		t.Fatalf("DeleteAccessKey: %v", err)
	}
	_, err := s.GetAccessKey(t.Context(), a.ID)
	checkIs(t, "GetAccessKey after Delete", err, nkms.ErrAccessKeyNotFound)
	checkIs(t, "DeleteAccessKey again", s.DeleteAccessKey(t.Context(), a.ID), nkms.ErrAccessKeyNotFound)
	checkAccessKey(t, "the other access key", getAccessKey(t, s, b.ID), b)
	if err := s.CreateAccessKey(t.Context(), newAccessKey(t, a.ID)); err != nil {
		t.Fatalf("CreateAccessKey with a deleted id: %v", err)
	}
}
