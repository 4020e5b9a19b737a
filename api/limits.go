package api

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the token buckets kept per limit: past it, the idle
// (full) ones are dropped, and if none is idle, all of them.
const maxLimiters = 100_000

// limiter is a token bucket per id (keyTag or access key): perSecond
// requests a second, with bursts of up to one second's worth.
type limiter struct {
	perSecond rate.Limit
	burst     int
	refused   atomic.Uint64

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// newLimiter returns a limiter of perSecond requests a second per id, or nil
// (no limit) when perSecond <= 0.
func newLimiter(perSecond float64) *limiter {
	if perSecond <= 0 {
		return nil
	}
	return &limiter{perSecond: rate.Limit(perSecond), burst: max(1, int(perSecond)), m: map[string]*rate.Limiter{}}
}

// allow takes a token of id's bucket at now; false (counted) when it is empty.
func (l *limiter) allow(id string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	b := l.m[id]
	if b == nil {
		if len(l.m) >= maxLimiters {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.perSecond, l.burst)
		l.m[id] = b
	}
	l.mu.Unlock()
	if b.AllowN(now, 1) {
		return true
	}
	l.refused.Add(1)
	return false
}

// sweep drops the buckets that are full again: forgetting them changes nothing.
func (l *limiter) sweep(now time.Time) {
	for id, b := range l.m {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.m, id)
		}
	}
	if len(l.m) >= maxLimiters {
		clear(l.m)
	}
}

// Refused is the number of requests a limiter turned away.
func (l *limiter) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}
