// Package mem is an in-memory nkms.Store for tests: maps under one mutex.
// Nothing is persisted; Due scans every key.
package mem

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nkms/nkms"
)

// ErrClosed is returned by every operation after Close.
var ErrClosed = errors.New("mem store: closed")

// nameIndex identifies a key name in a keystore.
type nameIndex struct {
	keystore int64
	name     string // nkms.NameKey form
}

// Store is an in-memory nkms.Store. The zero value is not usable; call New.
type Store struct {
	mu         sync.Mutex
	closed     bool
	lastID     map[int64]int64      // by keystore: the last key ID given out
	keys       map[string]*nkms.Key // by tag
	names      map[nameIndex]string // → tag
	accessKeys map[string]*nkms.AccessKey

	activities  map[string][]activity // by tag; oldest first (activity.go)
	activitySeq uint64                // the last activity.seq given out
}

var _ nkms.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		lastID:     map[int64]int64{},
		keys:       map[string]*nkms.Key{},
		names:      map[nameIndex]string{},
		accessKeys: map[string]*nkms.AccessKey{},
		activities: map[string][]activity{},
	}
}

// lock takes the mutex and fails when the store is closed or ctx is done.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Create stores a copy of k with the next ID of its keystore and returns
// another copy.
func (s *Store) Create(ctx context.Context, k *nkms.Key) (*nkms.Key, error) {
	if k.Tag == "" {
		return nil, nkms.Errorf(nkms.Invalid, "key tag is empty")
	}
	if err := checkNumbers(k); err != nil {
		return nil, err
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if _, ok := s.keys[k.Tag]; ok {
		return nil, nkms.ErrKeyExists
	}
	n := nameIndex{k.Keystore, nkms.NameKey(k.Name)}
	if _, ok := s.names[n]; ok {
		return nil, nkms.ErrNameConflict
	}
	s.lastID[k.Keystore]++
	c := k.Clone()
	c.ID = s.lastID[k.Keystore]
	s.keys[c.Tag] = c
	s.names[n] = c.Tag
	return c.Clone(), nil
}

// Get returns a copy of the key with the given tag.
func (s *Store) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	k, ok := s.keys[tag]
	if !ok {
		return nil, nkms.ErrKeyNotFound
	}
	return k.Clone(), nil
}

// List returns one page of a keystore's keys, newest first, and their number.
func (s *Store) List(ctx context.Context, keystore int64, pageNo, pageSize int) ([]*nkms.Key, int, error) {
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	var all []*nkms.Key
	for _, k := range s.keys {
		if k.Keystore == keystore {
			all = append(all, k)
		}
	}
	slices.SortFunc(all, func(a, b *nkms.Key) int { return cmp.Compare(b.ID, a.ID) })
	page := []*nkms.Key{}
	if len(all) > 0 && pageNo-1 <= (len(all)-1)/pageSize { // the page starts before the end
		skip := (pageNo - 1) * pageSize
		for _, k := range all[skip:min(len(all), skip+pageSize)] {
			page = append(page, k.Clone())
		}
	}
	return page, len(all), nil
}

// ListVersions returns one page of a key's versions, ascending, and their number.
func (s *Store) ListVersions(ctx context.Context, tag string, pageNo, pageSize int) ([]nkms.Version, int, error) {
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	k, ok := s.keys[tag]
	if !ok {
		return nil, 0, nkms.ErrKeyNotFound
	}
	page := []nkms.Version{}
	n := len(k.Versions)
	if pageNo-1 <= (n-1)/pageSize && n > 0 {
		skip := (pageNo - 1) * pageSize
		for _, v := range k.Versions[skip:min(n, skip+pageSize)] {
			v.Sealed = append([]byte(nil), v.Sealed...)
			page = append(page, v)
		}
	}
	return page, n, nil
}

// checkNumbers refuses versions not numbered 1..n.
func checkNumbers(k *nkms.Key) error {
	for i, v := range k.Versions {
		if v.Number != i+1 {
			return nkms.Errorf(nkms.Internal, "key %s: version %d at position %d: versions must be numbered 1..n", k.Tag, v.Number, i+1)
		}
	}
	return nil
}

// Update runs fn on a copy of the key and stores the result if fn returns nil.
func (s *Store) Update(ctx context.Context, tag string, fn func(*nkms.Key) error) (*nkms.Key, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	old, ok := s.keys[tag]
	if !ok {
		return nil, nkms.ErrKeyNotFound
	}
	k := old.Clone()
	if err := fn(k); err != nil {
		return nil, err
	}
	if k.Tag != old.Tag || k.ID != old.ID {
		return nil, nkms.Errorf(nkms.Internal, "update must not change the key tag or id")
	}
	if err := checkNumbers(k); err != nil {
		return nil, err
	}
	on := nameIndex{old.Keystore, nkms.NameKey(old.Name)}
	nn := nameIndex{k.Keystore, nkms.NameKey(k.Name)}
	if nn != on {
		if _, taken := s.names[nn]; taken {
			return nil, nkms.ErrNameConflict
		}
		delete(s.names, on)
		s.names[nn] = tag
	}
	s.keys[tag] = k.Clone()
	return k, nil
}

// Delete removes the key and its usage log if fn (nil means no check)
// returns nil for it.
func (s *Store) Delete(ctx context.Context, tag string, fn func(*nkms.Key) error) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k, ok := s.keys[tag]
	if !ok {
		return nkms.ErrKeyNotFound
	}
	if fn != nil {
		if err := fn(k.Clone()); err != nil {
			return err
		}
	}
	delete(s.keys, tag)
	delete(s.names, nameIndex{k.Keystore, nkms.NameKey(k.Name)})
	delete(s.activities, tag)
	return nil
}

// Due returns the tags of at most limit keys due at or before now, earliest
// first (ties by tag). It scans every key.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	type due struct {
		at  time.Time
		tag string
	}
	var ds []due
	for _, k := range s.keys {
		if at, ok := k.DueAt(); ok && !at.After(now) {
			ds = append(ds, due{at, k.Tag})
		}
	}
	slices.SortFunc(ds, func(a, b due) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.tag, b.tag))
	})
	tags := []string{}
	for _, d := range ds[:min(len(ds), max(limit, 0))] {
		tags = append(tags, d.tag)
	}
	return tags, nil
}

// PutAccessKey creates or replaces the access key with a.ID.
func (s *Store) PutAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	return s.putAccessKey(ctx, a, true)
}

// CreateAccessKey stores a new access key; nkms.ErrAccessKeyExists if a.ID is taken.
func (s *Store) CreateAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	return s.putAccessKey(ctx, a, false)
}

func (s *Store) putAccessKey(ctx context.Context, a *nkms.AccessKey, replace bool) error {
	if a.ID == "" {
		return nkms.Errorf(nkms.Invalid, "access key id is empty")
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.accessKeys[a.ID]; ok && !replace {
		return nkms.ErrAccessKeyExists
	}
	s.accessKeys[a.ID] = cloneAccessKey(a)
	return nil
}

// GetAccessKey returns a copy of the access key with the given id.
func (s *Store) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	a, ok := s.accessKeys[id]
	if !ok {
		return nil, nkms.ErrAccessKeyNotFound
	}
	return cloneAccessKey(a), nil
}

// DeleteAccessKey removes an access key.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.accessKeys[id]; !ok {
		return nkms.ErrAccessKeyNotFound
	}
	delete(s.accessKeys, id)
	return nil
}

// ListAccessKeys returns copies of every access key, ordered by ID.
func (s *Store) ListAccessKeys(ctx context.Context) ([]*nkms.AccessKey, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	all := make([]*nkms.AccessKey, 0, len(s.accessKeys))
	for _, a := range s.accessKeys {
		all = append(all, cloneAccessKey(a))
	}
	slices.SortFunc(all, func(a, b *nkms.AccessKey) int { return strings.Compare(a.ID, b.ID) })
	return all, nil
}

// Close drops the data; later operations return ErrClosed. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.keys, s.names, s.accessKeys, s.activities, s.lastID = nil, nil, nil, nil, nil
	return nil
}

func cloneAccessKey(a *nkms.AccessKey) *nkms.AccessKey {
	c := *a
	c.SealedSecret = append([]byte(nil), a.SealedSecret...)
	return &c
}
