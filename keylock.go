package nkms

import "sync"

// keyLocks serialises one kind of operation per key within this process,
// without keeping a lock for every key that was ever used.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int // goroutines holding or waiting for mu
}

// lock locks tag's lock and returns its unlock function.
func (l *keyLocks) lock(tag string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[tag]
	if k == nil {
		k = &keyLock{}
		l.locks[tag] = k
	}
	k.users++
	l.mu.Unlock()
	k.mu.Lock()
	return func() {
		k.mu.Unlock()
		l.mu.Lock()
		if k.users--; k.users == 0 {
			delete(l.locks, tag)
		}
		l.mu.Unlock()
	}
}
