package cache_test

import (
	"context"
	"sync"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/mem"
	"github.com/nkms/nkms/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nkms.Store { return cache.New(mem.New(), 0) })
}

func TestConformanceTinyCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nkms.Store { return cache.New(mem.New(), 2) })
}

// slowGet lets a test hold a Get between its read of the inner store and its
// fill of the cache, where a write can overtake it.
type slowGet struct {
	nkms.Store
	read, proceed chan struct{}
}

func (s *slowGet) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	k, err := s.Store.Get(ctx, tag)
	if s.read != nil {
		s.read <- struct{}{}
		<-s.proceed
	}
	return k, err
}

// TestWriteOvertakesRead: a Get that read the old state before a concurrent
// Update committed must not put that old state in the cache.
func TestWriteOvertakesRead(t *testing.T) {
	ctx := context.Background()
	inner := &slowGet{Store: mem.New()}
	s := cache.New(inner, 0)
	k, err := s.Create(ctx, &nkms.Key{Tag: "t1", Keystore: 1, Name: "name", State: nkms.StateEnable,
		Versions: []nkms.Version{{Number: 1, State: nkms.StateEnable}}})
	if err != nil {
		t.Fatal(err)
	}
	inner.read, inner.proceed = make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.Get(ctx, k.Tag); err != nil {
			t.Error(err)
		}
	})
	<-inner.read // the Get has read ENABLE and not filled yet
	if _, err := s.Update(ctx, k.Tag, func(k *nkms.Key) error { k.State = nkms.StateDisable; return nil }); err != nil {
		t.Fatal(err)
	}
	close(inner.proceed)
	wg.Wait()
	inner.read = nil
	got, err := s.Get(ctx, k.Tag)
	if err != nil || got.State != nkms.StateDisable {
		t.Fatalf("after the update: %+v %v, want DISABLE (a stale read filled the cache)", got, err)
	}
}

// TestWritesSeenAtOnce: every write is visible to the very next read.
func TestWritesSeenAtOnce(t *testing.T) {
	ctx := context.Background()
	s := cache.New(mem.New(), 0)
	k, _ := s.Create(ctx, &nkms.Key{Tag: "t2", Keystore: 1, Name: "name", State: nkms.StateEnable,
		Versions: []nkms.Version{{Number: 1, State: nkms.StateEnable}, {Number: 2, State: nkms.StateEnable}}})
	s.Get(ctx, k.Tag) // cached
	s.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Versions[0].State = nkms.StateDisable; return nil })
	if got, _ := s.Get(ctx, k.Tag); got.Versions[0].State != nkms.StateDisable {
		t.Fatal("version disable not seen by the next read")
	}
	s.Delete(ctx, k.Tag, nil)
	if _, err := s.Get(ctx, k.Tag); err == nil {
		t.Fatal("deleted key still served from the cache")
	}
	a := &nkms.AccessKey{ID: "AK", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("s")}
	s.CreateAccessKey(ctx, a)
	s.GetAccessKey(ctx, "AK") // cached
	s.DeleteAccessKey(ctx, "AK")
	if _, err := s.GetAccessKey(ctx, "AK"); err == nil {
		t.Fatal("revoked access key still served from the cache")
	}
}
