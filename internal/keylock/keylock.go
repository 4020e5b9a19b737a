// Package keylock provides mutexes by name (a key's tag, a store record),
// made on demand and dropped when no one holds or waits for them, whose
// Lock gives up when the caller's context ends.
package keylock

import (
	"context"
	"sync"
)

// Locks are mutexes by name. The zero value is ready to use.
type Locks struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	held chan struct{} // capacity 1: full while the lock is held
	refs int           // holders and waiters
}

// Lock waits for the lock of name or for ctx to end; on success it returns
// the function that unlocks it.
func (l *Locks) Lock(ctx context.Context, name string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	e := l.m[name]
	if e == nil {
		e = &entry{held: make(chan struct{}, 1)}
		l.m[name] = e
	}
	e.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, name)
		}
		l.mu.Unlock()
	}
	select {
	case e.held <- struct{}{}:
		return func() { <-e.held; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Len is how many names have a lock now (held or waited for).
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
