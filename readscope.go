package nkms

import (
	"context"
	"sync/atomic"
)

// A ReadScope groups the store reads of one operation (one API request), so
// that a store that answers reads from memory once it has caught up with its
// cluster (a node on etcd: store/cache over store/etcd) asks the cluster
// once per scope instead of once per read. Every read of a scope still sees
// every change completed before the scope began: the first read of the scope
// catches up with the cluster, and a store's memory only moves forward.
// Outside a scope, every read catches up on its own.
type ReadScope struct{ caughtUp atomic.Bool }

type readScopeKey struct{}

// WithReadScope returns ctx with a new read scope; the API server gives each
// request one.
func WithReadScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, readScopeKey{}, &ReadScope{})
}

// ReadScopeOf returns the read scope of ctx, nil if it has none.
func ReadScopeOf(ctx context.Context) *ReadScope {
	s, _ := ctx.Value(readScopeKey{}).(*ReadScope)
	return s
}

// CaughtUp reports whether a read of the scope has caught up already; false
// for a nil scope.
func (s *ReadScope) CaughtUp() bool { return s != nil && s.caughtUp.Load() }

// SetCaughtUp records that a read of the scope caught up; no-op on nil.
func (s *ReadScope) SetCaughtUp() {
	if s != nil {
		s.caughtUp.Store(true)
	}
}
