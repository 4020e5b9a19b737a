package nkms_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nkms/nkms"
)

// TestHeavyPoolQueueDeadline: a full pool refuses a waiter with ErrBusy
// (code Unavailable) when its queue deadline passes, hands a freed place to
// a waiter still within its deadline, and lets a ctx that ends first win.
func TestHeavyPoolQueueDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		p := nkms.NewHeavyPool(1, 100*time.Millisecond)
		if p.Size() != 1 {
			t.Fatalf("Size = %d, want 1", p.Size())
		}
		hold, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := p.Acquire(ctx); !errors.Is(err, nkms.ErrBusy) || nkms.ErrorCode(err) != nkms.Unavailable {
			t.Fatalf("full pool: err = %v, want ErrBusy (Unavailable)", err)
		}
		if waited := time.Since(start); waited != 100*time.Millisecond { // the bubble's clock: exact
			t.Errorf("refused after %v, want the queue deadline 100ms", waited)
		}

		// A place freed within the deadline goes to the waiter.
		got := make(chan error, 1)
		go func() {
			release, err := p.Acquire(ctx)
			if err == nil {
				release()
			}
			got <- err
		}()
		synctest.Wait() // the waiter is parked on the pool
		hold()
		if err := <-got; err != nil {
			t.Fatalf("waiter given a freed place: %v", err)
		}

		// The request's context ends before the deadline: its error, not ErrBusy.
		hold, _ = p.Acquire(ctx)
		defer hold()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := p.Acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx ended first: err = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestHeavyPoolUnbounded: a nil pool and a pool of size 0 never wait.
func TestHeavyPoolUnbounded(t *testing.T) {
	for _, p := range []*nkms.HeavyPool{nil, nkms.NewHeavyPool(0, time.Nanosecond)} {
		var releases []func()
		for range 100 {
			release, err := p.Acquire(context.Background())
			if err != nil {
				t.Fatalf("unbounded pool %v: %v", p, err)
			}
			releases = append(releases, release)
		}
		for _, r := range releases {
			r()
		}
	}
}
