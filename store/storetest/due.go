package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

const day = 24 * time.Hour

// revoked returns a REVOKE key destroyed at destroy.
func revoked(t *testing.T, name string, destroy time.Time) *nkms.Key {
	k := newKey(t, 1, name)
	k.State, k.DestroyDate = nkms.StateRevoke, destroy
	return k
}

// rotating returns a key with auto rotation due period days after base.
func rotating(t *testing.T, name string, base time.Time, period int) *nkms.Key {
	k := newKey(t, 1, name)
	k.AutoRotation, k.RotationBase, k.RotationPeriod = true, base, period
	return k
}

// checkDue compares Due(now, limit) with the tags of want, in order.
func checkDue(t *testing.T, s nkms.Store, now time.Time, limit int, want ...*nkms.Key) {
	t.Helper()
	got, err := s.Due(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("Due(%v, %d): %v", now, limit, err)
	}
	wantTags := []string{}
	for _, k := range want {
		wantTags = append(wantTags, k.Tag)
	}
	if diff := cmp.Diff(got, wantTags, keyOpts); diff != "" {
		t.Errorf("Due(t0%+v, %d) (-got +want):\n%s", now.Sub(t0), limit, diff)
	}
}

func testDue(t *testing.T, s nkms.Store) {
	r1 := create(t, s, revoked(t, "revoke1h", t0.Add(time.Hour)))
	r2 := create(t, s, revoked(t, "revoke2h", t0.Add(2*time.Hour)))
	rot := create(t, s, rotating(t, "rotate1d", t0, 1))       // due t0+1d
	rotLate := create(t, s, rotating(t, "rotate30d", t0, 30)) // due t0+30d
	// REVOKE wins over auto rotation: due at its destroy date.
	both := revoked(t, "revokeRot", t0.Add(3*time.Hour))
	both.AutoRotation, both.RotationBase, both.RotationPeriod = true, t0.Add(-100*day), 1
	rb := create(t, s, both)
	create(t, s, newKey(t, 1, "idle"))                  // neither
	off := rotating(t, "rotateOff", t0.Add(-10*day), 1) // rotation off: never due
	off.AutoRotation = false
	create(t, s, off)

	checkDue(t, s, t0, 10)
	checkDue(t, s, t0.Add(time.Hour-1), 10)
	checkDue(t, s, t0.Add(time.Hour), 10, r1) // due exactly now
	checkDue(t, s, t0.Add(3*time.Hour), 10, r1, r2, rb)
	checkDue(t, s, t0.Add(day), 10, r1, r2, rb, rot)
	checkDue(t, s, t0.Add(365*day), 10, r1, r2, rb, rot, rotLate)
	checkDue(t, s, t0.Add(365*day), 2, r1, r2)
	checkDue(t, s, t0.Add(365*day), 1, r1)
	checkDue(t, s, t0.Add(365*day), 0)
}

func testDueFollowsUpdatesAndDeletes(t *testing.T, s nkms.Store) {
	r := create(t, s, revoked(t, "revoked", t0.Add(time.Hour)))
	rot := create(t, s, rotating(t, "rotating", t0, 1))
	idle := create(t, s, newKey(t, 1, "idle"))
	gone := create(t, s, revoked(t, "gone", t0))
	late := t0.Add(10 * day)
	checkDue(t, s, late, 10, gone, r, rot)

	update := func(tag string, fn func(*nkms.Key)) {
		t.Helper()
		if _, err := s.Update(t.Context(), tag, func(k *nkms.Key) error { fn(k); return nil }); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	// Cancel the deletion: the key leaves the due list.
	update(r.Tag, func(k *nkms.Key) { k.State, k.DestroyDate = nkms.StateEnable, time.Time{} })
	checkDue(t, s, late, 10, gone, rot)
	// Rotation happened: the key moves to its next date.
	update(rot.Tag, func(k *nkms.Key) { k.RotationBase = t0.Add(20 * day) })
	checkDue(t, s, late, 10, gone)
	checkDue(t, s, t0.Add(21*day), 10, gone, rot)
	// A key becomes due.
	update(idle.Tag, func(k *nkms.Key) { k.State, k.DestroyDate = nkms.StateRevoke, t0.Add(-time.Hour) })
	checkDue(t, s, late, 10, idle, gone)
	// A failed Update does not move the entry.
	_, _ = s.Update(t.Context(), idle.Tag, func(k *nkms.Key) error {
		k.State = nkms.StateEnable
		return nkms.ErrInvalidStatus
	})
	checkDue(t, s, late, 10, idle, gone)
	// A deleted key leaves; a refused Delete keeps it.
	_ = s.Delete(t.Context(), idle.Tag, func(*nkms.Key) error { return nkms.ErrInvalidStatus })
	if err := s.Delete(t.Context(), gone.Tag, nil); err != nil {
		t.Fatal(err)
	}
	checkDue(t, s, late, 10, idle)
}
