package cache_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/mem"
)

// TestFollowing: a following cache catches up before each read (once per
// read scope), serves from memory until told a key changed elsewhere, and
// refuses to fill with what a read saw before a change it was told of.
func TestFollowing(t *testing.T) {
	ctx := context.Background()
	shared := mem.New() // what another node writes to as well
	inner := &slowGet{Store: shared}
	catchUps := 0
	var catchUpErr error
	s := cache.Following(inner, 0, func(context.Context) error { catchUps++; return catchUpErr })
	k, err := shared.Create(ctx, &nkms.Key{Tag: "t1", Keystore: 1, Name: "name", State: nkms.StateEnable,
		Versions: []nkms.Version{{Number: 1, State: nkms.StateEnable}}})
	if err != nil {
		t.Fatal(err)
	}
	state := func(ctx context.Context) nkms.State {
		t.Helper()
		got, err := s.Get(ctx, k.Tag)
		if err != nil {
			t.Fatal(err)
		}
		return got.State
	}
	setState := func(st nkms.State) {
		t.Helper()
		if _, err := shared.Update(ctx, k.Tag, func(k *nkms.Key) error { k.State = st; return nil }); err != nil {
			t.Fatal(err)
		}
	}

	state(ctx) // fills
	setState(nkms.StateDisable)
	if got := state(ctx); got != nkms.StateEnable {
		t.Fatalf("a change not reported yet: cache answers %s, want its copy (ENABLE)", got)
	}
	s.ForgetKey(k.Tag)
	if got := state(ctx); got != nkms.StateDisable {
		t.Fatalf("after ForgetKey: %s, want DISABLE", got)
	}
	if catchUps != 3 {
		t.Errorf("3 reads outside a scope caught up %d times", catchUps)
	}

	scope := nkms.WithReadScope(ctx)
	state(scope)
	if _, err := s.GetAccessKey(scope, "nobody"); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
		t.Fatal(err)
	}
	if catchUps != 4 {
		t.Errorf("2 reads of one scope caught up %d times, want once", catchUps-3)
	}

	// A read that saw ENABLE before a change it is told of must not fill.
	setState(nkms.StateEnable)
	s.ForgetKey(k.Tag)
	inner.read, inner.proceed = make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { state(ctx) })
	<-inner.read
	setState(nkms.StateDisable)
	s.ForgetKey(k.Tag)
	close(inner.proceed)
	wg.Wait()
	inner.read = nil
	if got := state(ctx); got != nkms.StateDisable {
		t.Fatalf("a fill that raced with a reported change left %s in the cache", got)
	}

	// ForgetAll drops everything.
	setState(nkms.StateEnable)
	s.ForgetAll()
	if got := state(ctx); got != nkms.StateEnable {
		t.Fatalf("after ForgetAll: %s", got)
	}

	// A failed catch-up fails the read.
	catchUpErr = nkms.Errorf(nkms.Unavailable, "no quorum")
	if _, err := s.Get(ctx, k.Tag); nkms.ErrorCode(err) != nkms.Unavailable {
		t.Fatalf("read after a failed catch-up: %v", err)
	}
}
