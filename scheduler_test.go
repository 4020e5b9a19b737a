package nkms_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nkms/nkms"
)

// TestSchedulerLoop runs the real loop in a synctest bubble: the first pass
// runs at start-up, later passes every Interval.
func TestSchedulerLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s, _ := newService(t)
		s.Now = time.Now // the bubble's fake clock
		s.DeletionWindow = time.Hour

		overdue := create(t, s, alice, "overdue", nkms.AES256, false)
		if _, err := s.RequestDeletion(ctx, alice, overdue.KeyTag()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour) // the window passes before the scheduler starts
		later := create(t, s, alice, "later", nkms.AES256, false)
		if _, err := s.RequestDeletion(ctx, alice, later.KeyTag()); err != nil {
			t.Fatal(err)
		}

		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { (&nkms.Scheduler{Service: s, Interval: 10 * time.Minute}).Run(runCtx) })
		synctest.Wait()
		if _, err := s.GetKey(ctx, alice, overdue.KeyTag()); !errors.Is(err, nkms.ErrKeyNotFound) {
			t.Fatalf("start-up pass kept the overdue key: %v", err)
		}
		if _, err := s.GetKey(ctx, alice, later.KeyTag()); err != nil {
			t.Fatalf("key destroyed before its window: %v", err)
		}
		time.Sleep(50 * time.Minute)
		synctest.Wait()
		if _, err := s.GetKey(ctx, alice, later.KeyTag()); err != nil {
			t.Fatalf("key destroyed 50 minutes into a 1 hour window: %v", err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if _, err := s.GetKey(ctx, alice, later.KeyTag()); !errors.Is(err, nkms.ErrKeyNotFound) {
			t.Fatalf("key kept past its window: %v", err)
		}
		cancel()
		wg.Wait()
	})
}

// TestPurgeLosesToCancel: a cancel that lands between the scheduler reading a
// key and purging it keeps the key: the purge re-checks inside its transaction.
func TestPurgeLosesToCancel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	k := create(t, s, alice, "saved", nkms.AES256, false)
	if _, err := s.RequestDeletion(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	clk.Add(nkms.DefaultDeletionWindow)
	s.Store = cancelOnDelete{Store: s.Store, cancel: func() {
		if _, err := s.CancelDeletion(ctx, alice, k.KeyTag()); err != nil {
			t.Error(err)
		}
	}}
	res, err := s.RunDue(ctx)
	if err != nil || res.Destroyed != 0 || res.Failed != 0 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if got, err := s.GetKey(ctx, alice, k.KeyTag()); err != nil || got.State != nkms.StateDisable {
		t.Fatalf("cancelled key: %+v %v", got, err)
	}
}

// cancelOnDelete runs cancel just before the purge's transaction, as a
// concurrent request would after the scheduler read the key as REVOKE.
type cancelOnDelete struct {
	nkms.Store
	cancel func()
}

func (c cancelOnDelete) Delete(ctx context.Context, tag string, fn func(*nkms.Key) error) error {
	c.cancel()
	return c.Store.Delete(ctx, tag, fn)
}
