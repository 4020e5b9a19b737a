package nkms_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/testkit"
)

func TestDevClockAdvance(t *testing.T) {
	t.Parallel()
	wall := testkit.NewClock(t0)
	var saved []time.Duration
	c, err := nkms.NewDevClock(wall.Now, time.Hour, func(d time.Duration) error { saved = append(saved, d); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Now = %v, want %v", got, t0.Add(time.Hour))
	}
	off, err := c.Advance(72 * time.Hour)
	if err != nil || off != 73*time.Hour {
		t.Fatalf("Advance(72h) = %v, %v; want 73h", off, err)
	}
	wall.Add(time.Minute) // the wall clock still runs under the offset
	if got, want := c.Now(), t0.Add(73*time.Hour+time.Minute); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	if len(saved) != 1 || saved[0] != 73*time.Hour {
		t.Fatalf("persisted %v, want [73h]", saved)
	}
}

// TestDevClockRefusals: a zero, negative or too large advance is Invalid and
// moves nothing; so is an offset out of range at start.
func TestDevClockRefusals(t *testing.T) {
	t.Parallel()
	c, err := nkms.NewDevClock(nil, nkms.MaxDevClockOffset-time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, -time.Second, time.Hour + 1, 1<<63 - 1} {
		if _, err := c.Advance(d); nkms.ErrorCode(err) != nkms.Invalid {
			t.Errorf("Advance(%v): got %v, want an Invalid error", d, err)
		}
	}
	if got := c.Offset(); got != nkms.MaxDevClockOffset-time.Hour {
		t.Fatalf("offset moved to %v by refused advances", got)
	}
	if _, err := c.Advance(time.Hour); err != nil {
		t.Fatalf("advance to exactly the maximum: %v", err)
	}
	for _, off := range []time.Duration{-1, nkms.MaxDevClockOffset + 1} {
		if _, err := nkms.NewDevClock(nil, off, nil); err == nil {
			t.Errorf("NewDevClock(offset %v) accepted", off)
		}
	}
}

// TestDevClockPersistFails: when the new offset cannot be saved, the clock
// stays where it was and the error is Internal (a restart must never find
// an older clock than the one keys were dated with).
func TestDevClockPersistFails(t *testing.T) {
	t.Parallel()
	disk := errors.New("disk full")
	c, err := nkms.NewDevClock(nil, 0, func(time.Duration) error { return disk })
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Advance(time.Hour)
	if !errors.Is(err, disk) || nkms.ErrorCode(err) != nkms.Internal {
		t.Fatalf("got %v (code %s), want the persist error as Internal", err, nkms.ErrorCode(err))
	}
	if c.Offset() != 0 {
		t.Fatalf("offset %v after a failed persist, want 0", c.Offset())
	}
}

// TestDevClockConcurrentAdvances: advances from many goroutines add up, and
// the last offset persisted is the clock's.
func TestDevClockConcurrentAdvances(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var last time.Duration
	c, err := nkms.NewDevClock(nil, 0, func(d time.Duration) error { mu.Lock(); last = d; mu.Unlock(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.Advance(time.Minute); err != nil {
				t.Error(err)
			}
			_ = c.Now()
		})
	}
	wg.Wait()
	if c.Offset() != 50*time.Minute || last != 50*time.Minute {
		t.Fatalf("offset %v, last persisted %v; want 50m both", c.Offset(), last)
	}
}

// newDevService is newService on a DevClock over the fixed clock.
func newDevService(t *testing.T) (*nkms.Service, *nkms.DevClock) {
	t.Helper()
	s, clk := newService(t)
	dev, err := nkms.NewDevClock(clk.Now, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Now, s.DevClock = dev.Now, dev
	return s, dev
}

// TestAdvanceClockRunsDueWork: advancing past the deletion window destroys
// the key before AdvanceClock returns, and past a rotation period rotates.
func TestAdvanceClockRunsDueWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newDevService(t)
	doomed := create(t, s, alice, "doomed", nkms.AES256, false)
	if _, err := s.RequestDeletion(ctx, alice, doomed.KeyTag()); err != nil {
		t.Fatal(err)
	}
	rotating, err := s.CreateKey(ctx, alice, nkms.CreateKeyInput{Name: "rotating", Type: nkms.AES256, AutoRotation: true, RotationPeriod: 30})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.AdvanceClock(ctx, alice, 71*time.Hour)
	if err != nil || res.Pass.Destroyed != 0 || res.Offset != 71*time.Hour || !res.Now.Equal(t0.Add(71*time.Hour)) {
		t.Fatalf("advance 71h: %+v, %v", res, err)
	}
	res, err = s.AdvanceClock(ctx, alice, time.Hour)
	if err != nil || res.Pass.Destroyed != 1 || res.Pass.Rotated != 0 {
		t.Fatalf("advance to 72h: %+v, %v; want one key destroyed", res, err)
	}
	if _, err := s.GetKey(ctx, alice, doomed.KeyTag()); !errors.Is(err, nkms.ErrKeyNotFound) {
		t.Fatalf("doomed key after the window: %v", err)
	}
	res, err = s.AdvanceClock(ctx, alice, 30*24*time.Hour)
	if err != nil || res.Pass.Rotated != 1 {
		t.Fatalf("advance 30 days: %+v, %v; want one key rotated", res, err)
	}
	k, err := s.GetKey(ctx, alice, rotating.KeyTag())
	if err != nil || k.Current() != 2 {
		t.Fatalf("rotating key: %+v, %v; want version 2", k, err)
	}
	got, err := s.Clock(ctx, bob)
	if err != nil || got.Offset != 72*time.Hour+30*24*time.Hour {
		t.Fatalf("Clock: %+v, %v", got, err)
	}
}

// TestAdvanceClockRefusals: only an operator (an admin of keystore 1) may
// move the clock; a service without a DevClock refuses it.
func TestAdvanceClockRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, dev := newDevService(t)
	for _, c := range []nkms.Caller{
		bob, // an admin, of keystore 2
		{AccessKey: "m", Keystore: 1, Role: nkms.RoleManager},
		{AccessKey: "v", Keystore: 1, Role: nkms.RoleViewer},
	} {
		if _, err := s.AdvanceClock(ctx, c, time.Hour); nkms.ErrorCode(err) != nkms.PermissionDenied {
			t.Errorf("%+v: got %v, want PermissionDenied", c, err)
		}
	}
	if dev.Offset() != 0 {
		t.Fatalf("refused callers moved the clock to %v", dev.Offset())
	}
	plain, _ := newService(t)
	if _, err := plain.AdvanceClock(ctx, alice, time.Hour); nkms.ErrorCode(err) != nkms.Invalid {
		t.Fatalf("without a DevClock: got %v, want Invalid", err)
	}
	if _, err := plain.Clock(ctx, alice); nkms.ErrorCode(err) != nkms.Invalid {
		t.Fatalf("Clock without a DevClock: got %v, want Invalid", err)
	}
}
