// Package cache is an nkms.Store decorator that keeps recently read keys and
// access keys (and the ids of access keys that do not exist) in memory, so
// that the crypto path does not decode a record from disk on every request.
//
// Copies: a key from Get shares the elements of its Versions with the cached
// entry, which nobody changes (the nkms.Store contract makes them read-only
// for the caller), so that a read of a key of many versions costs a copy of
// the key's fields and not of its versions: with 1,000 versions, a copy of
// them all was 96 KB of Version values, plus their sealed bytes (1.2 MB for
// RSA), on every crypto request.
//
// Freshness: every write of this process goes through the decorator, which
// drops the entry after the inner store committed it, so the next read sees
// the write (disable, delete or version disable take effect on the very next
// request). A read that raced with a write never fills the cache with what it
// read: each entry has a generation that writes bump, and a fill only lands
// if the generation did not change since the read began.
//
// Writes by other processes (the other nodes of a cluster on etcd) reach a
// cache made by Following through ForgetKey, ForgetAccessKey and ForgetAll,
// which drop entries and bump generations the same way; its catch-up
// function, called before a read is answered from memory, returns once every
// change committed before the call has been forgotten (store/etcd's
// Follower: one quorum read shared by the reads that wait, and the watch of
// the changes it feeds).
package cache

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nkms/nkms"
)

// DefaultMaxEntries bounds each of the two caches (keys, access keys).
const DefaultMaxEntries = 100_000

// Store caches Get and GetAccessKey of an inner store.
type Store struct {
	nkms.Store // everything not overridden passes through
	max        int
	// catchUp, if set, returns once every change committed to the inner
	// store by anyone before it was called has been forgotten here.
	catchUp func(ctx context.Context) error

	mu         sync.Mutex
	keys       map[string]*nkms.Key
	keyGen     map[string]uint64 // bumped by every write of a tag
	access     map[string]*nkms.AccessKey
	absent     map[string]struct{} // access key ids the inner store does not have
	accessGen  map[string]uint64
	generation uint64 // source of generations
	epoch      uint64 // bumped when the generation maps are reset

	keyHits, keyMisses, accessHits, accessMisses atomic.Uint64
}

// Stats counts the reads served from the cache (hits) and from the inner
// store (misses) since New.
type Stats struct {
	KeyHits, KeyMisses             uint64 // Get
	AccessKeyHits, AccessKeyMisses uint64 // GetAccessKey
}

// Stats returns the hit and miss counts so far.
func (s *Store) Stats() Stats {
	return Stats{KeyHits: s.keyHits.Load(), KeyMisses: s.keyMisses.Load(),
		AccessKeyHits: s.accessHits.Load(), AccessKeyMisses: s.accessMisses.Load()}
}

var _ nkms.Store = (*Store)(nil)

// New wraps inner; max bounds each cache (<= 0: DefaultMaxEntries).
func New(inner nkms.Store, max int) *Store {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	return &Store{Store: inner, max: max,
		keys: map[string]*nkms.Key{}, keyGen: map[string]uint64{},
		access: map[string]*nkms.AccessKey{}, absent: map[string]struct{}{}, accessGen: map[string]uint64{}}
}

// Following returns a cache over inner, an inner store that other processes
// write to as well: before a read is answered, catchUp must return nil, once
// every change that anyone committed to inner before the call has been
// reported to ForgetKey, ForgetAccessKey or ForgetAll. It is called once per
// nkms.ReadScope (a request); reads outside a scope call it every time. Its
// error is the read's.
func Following(inner nkms.Store, max int, catchUp func(ctx context.Context) error) *Store {
	s := New(inner, max)
	s.catchUp = catchUp
	return s
}

// caughtUp runs catchUp, unless ctx's read scope did already.
func (s *Store) caughtUp(ctx context.Context) error {
	if s.catchUp == nil {
		return nil
	}
	scope := nkms.ReadScopeOf(ctx)
	if scope.CaughtUp() {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	scope.SetCaughtUp()
	return nil
}

// Get returns a copy of the cached key that shares its versions, or reads
// the key from the inner store.
func (s *Store) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if k, ok := s.keys[tag]; ok {
		s.mu.Unlock()
		s.keyHits.Add(1)
		return view(k), nil
	}
	gen, epoch := s.keyGen[tag], s.epoch
	s.mu.Unlock()
	s.keyMisses.Add(1)
	k, err := s.Store.Get(ctx, tag)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.keyGen[tag] == gen && s.epoch == epoch {
		if len(s.keys) >= s.max {
			evict(s.keys)
		}
		s.keys[tag] = k // the inner store's copy is ours; it is never changed
	}
	s.mu.Unlock()
	return view(k), nil
}

// view returns a copy of the cached key k that shares the elements of its
// Versions (at capacity, so that an append copies them) and nothing else.
func view(k *nkms.Key) *nkms.Key {
	c := *k
	c.Versions = k.Versions[:len(k.Versions):len(k.Versions)]
	c.AllowedIPs = slices.Clone(k.AllowedIPs)
	c.TokenGen.SealedSecret = bytes.Clone(k.TokenGen.SealedSecret)
	return &c
}

// Create stores a new key.
func (s *Store) Create(ctx context.Context, k *nkms.Key) (*nkms.Key, error) {
	defer s.dropKey(k.Tag)
	return s.Store.Create(ctx, k)
}

// Update changes a key in the inner store and drops the cached copy.
func (s *Store) Update(ctx context.Context, tag string, fn func(*nkms.Key) error) (*nkms.Key, error) {
	defer s.dropKey(tag)
	return s.Store.Update(ctx, tag, fn)
}

// Delete removes a key in the inner store and drops the cached copy.
func (s *Store) Delete(ctx context.Context, tag string, fn func(*nkms.Key) error) error {
	defer s.dropKey(tag)
	return s.Store.Delete(ctx, tag, fn)
}

// ForgetKey drops the cached key with tag: another process changed it.
func (s *Store) ForgetKey(tag string) { s.dropKey(tag) }

// ForgetAccessKey drops the cached access key id (or its absence): another
// process changed it.
func (s *Store) ForgetAccessKey(id string) { s.dropAccessKey(id) }

// ForgetAll drops everything, and keeps reads that began before from
// filling the cache: changes by other processes may have been missed.
func (s *Store) ForgetAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
}

// dropKey forgets tag and bumps its generation; it runs after the inner write
// returned, whatever its outcome.
func (s *Store) dropKey(tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, tag)
	s.generation++
	s.keyGen[tag] = s.generation
	if len(s.keyGen) > 2*s.max {
		s.reset()
	}
}

// maxAbsentID bounds the ids remembered as absent: longer ones are not
// access keys (nkms allows 4-64 characters) and are always read.
const maxAbsentID = 64

// GetAccessKey returns a copy of the cached access key, or reads it. An id
// the inner store does not have is remembered too (apart, so that unknown ids
// never push known ones out): an unknown access key is then answered as fast
// as a known one, and a request signed with one tells nothing by its timing.
func (s *Store) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	if err := s.caughtUp(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if a, ok := s.access[id]; ok {
		s.mu.Unlock()
		s.accessHits.Add(1)
		return cloneAccessKey(a), nil
	}
	if _, ok := s.absent[id]; ok {
		s.mu.Unlock()
		s.accessHits.Add(1)
		return nil, nkms.ErrAccessKeyNotFound
	}
	gen, epoch := s.accessGen[id], s.epoch
	s.mu.Unlock()
	s.accessMisses.Add(1)
	a, err := s.Store.GetAccessKey(ctx, id)
	if errors.Is(err, nkms.ErrAccessKeyNotFound) && len(id) <= maxAbsentID {
		s.mu.Lock()
		if s.accessGen[id] == gen && s.epoch == epoch {
			if len(s.absent) >= s.max {
				clear(s.absent)
			}
			s.absent[id] = struct{}{}
		}
		s.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.accessGen[id] == gen && s.epoch == epoch {
		if len(s.access) >= s.max {
			evict(s.access)
		}
		s.access[id] = cloneAccessKey(a)
	}
	s.mu.Unlock()
	return a, nil
}

// PutAccessKey creates or replaces an access key and drops the cached copy.
func (s *Store) PutAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	defer s.dropAccessKey(a.ID)
	return s.Store.PutAccessKey(ctx, a)
}

// CreateAccessKey stores a new access key.
func (s *Store) CreateAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	defer s.dropAccessKey(a.ID)
	return s.Store.CreateAccessKey(ctx, a)
}

// DeleteAccessKey revokes an access key and drops the cached copy.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	defer s.dropAccessKey(id)
	return s.Store.DeleteAccessKey(ctx, id)
}

func (s *Store) dropAccessKey(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.access, id)
	delete(s.absent, id)
	s.generation++
	s.accessGen[id] = s.generation
	if len(s.accessGen) > 2*s.max {
		s.reset()
	}
}

// reset forgets everything, generations included, so that their maps stay
// bounded; the new epoch keeps reads that began before from filling.
func (s *Store) reset() {
	clear(s.keys)
	clear(s.keyGen)
	clear(s.access)
	clear(s.absent)
	clear(s.accessGen)
	s.epoch++
}

// evict drops one arbitrary entry of a full cache.
func evict[V any](m map[string]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

func cloneAccessKey(a *nkms.AccessKey) *nkms.AccessKey {
	c := *a
	c.SealedSecret = append([]byte(nil), a.SealedSecret...)
	return &c
}

// Unwrap returns the inner store (nkms.StoreWrapper), so that its optional
// interfaces, such as nkms.Snapshotter, can be found.
func (s *Store) Unwrap() nkms.Store { return s.Store }
