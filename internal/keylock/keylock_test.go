package keylock_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nkms/nkms/internal/keylock"
)

func TestLockExcludesAndForgets(t *testing.T) {
	t.Parallel()
	var l keylock.Locks
	ctx := context.Background()
	var mu sync.Mutex
	inside, most := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			unlock, err := l.Lock(ctx, "k")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if most != 1 {
		t.Fatalf("got %d holders at once, want 1", most)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("got %d locks kept after use, want 0", n)
	}
}

func TestLockGivesUpWithContext(t *testing.T) {
	t.Parallel()
	var l keylock.Locks
	unlock, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := l.Lock(context.Background(), "other"); err != nil {
		t.Fatalf("another name: %v", err)
	}
	unlock()
}
