package cache_test

import (
	"context"
	"errors"
	"strings"
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

// TestUnknownAccessKeyRemembered: an access key id the store does not have is
// read once, then answered from the cache (as fast as a known one: a signed
// request tells nothing of which ids exist by its timing); creating it is
// seen by the next read.
func TestUnknownAccessKeyRemembered(t *testing.T) {
	ctx := context.Background()
	s := cache.New(mem.New(), 0)
	for range 3 {
		if _, err := s.GetAccessKey(ctx, "NOPE"); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
			t.Fatalf("unknown access key: %v, want ErrAccessKeyNotFound", err)
		}
	}
	if st := s.Stats(); st.AccessKeyMisses != 1 || st.AccessKeyHits != 2 {
		t.Fatalf("three reads of an unknown id: %+v, want 1 miss and 2 hits", st)
	}
	for _, write := range []func(*nkms.AccessKey) error{
		func(a *nkms.AccessKey) error { return s.CreateAccessKey(ctx, a) },
		func(a *nkms.AccessKey) error { return s.PutAccessKey(ctx, a) },
	} {
		s.DeleteAccessKey(ctx, "NOPE")
		s.GetAccessKey(ctx, "NOPE") // remembered as absent
		if err := write(&nkms.AccessKey{ID: "NOPE", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("s")}); err != nil {
			t.Fatal(err)
		}
		if a, err := s.GetAccessKey(ctx, "NOPE"); err != nil || a.ID != "NOPE" {
			t.Fatalf("created after a read that found nothing: %+v %v", a, err)
		}
	}
	long := strings.Repeat("X", 65) // no access key has such an id: not worth remembering
	before := s.Stats().AccessKeyMisses
	s.GetAccessKey(ctx, long)
	s.GetAccessKey(ctx, long)
	if n := s.Stats().AccessKeyMisses - before; n != 2 {
		t.Fatalf("an overlong id: %d misses of 2 reads, want 2 (not remembered)", n)
	}
}

// slowGetAccessKey holds a GetAccessKey between its read of the inner store
// and its fill of the cache.
type slowGetAccessKey struct {
	nkms.Store
	read, proceed chan struct{}
}

func (s *slowGetAccessKey) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	a, err := s.Store.GetAccessKey(ctx, id)
	if s.read != nil {
		s.read <- struct{}{}
		<-s.proceed
	}
	return a, err
}

// TestCreateOvertakesAbsentRead: a read that found no access key before a
// concurrent create committed must not remember the id as absent.
func TestCreateOvertakesAbsentRead(t *testing.T) {
	ctx := context.Background()
	inner := &slowGetAccessKey{Store: mem.New(), read: make(chan struct{}), proceed: make(chan struct{})}
	s := cache.New(inner, 0)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := s.GetAccessKey(ctx, "NEW"); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
			t.Errorf("read before the create: %v, want ErrAccessKeyNotFound", err)
		}
	})
	<-inner.read // the read found nothing and has not filled yet
	if err := s.CreateAccessKey(ctx, &nkms.AccessKey{ID: "NEW", Keystore: 1, Role: nkms.RoleAdmin, SealedSecret: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	close(inner.proceed)
	wg.Wait()
	inner.read = nil
	if a, err := s.GetAccessKey(ctx, "NEW"); err != nil || a.ID != "NEW" {
		t.Fatalf("after the create: %+v %v (a stale read remembered the id as absent)", a, err)
	}
}
