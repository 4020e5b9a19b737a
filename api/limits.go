package api

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiters bounds the token buckets kept per limit (see sweep).
const maxLimiters = 100_000

// limiter is a token bucket per id (keyTag, access key, client address):
// perSecond tokens a second, up to burst.
type limiter struct {
	perSecond rate.Limit
	burst     int
	max       int // buckets kept at most (maxLimiters; smaller in tests)
	refused   atomic.Uint64

	mu sync.RWMutex // read-locked by peek, which every request may make
	m  map[string]*rate.Limiter
}

// newLimiter returns a limiter of perSecond requests a second per id, with
// bursts of up to one second's worth, or nil (no limit) when perSecond <= 0.
func newLimiter(perSecond float64) *limiter {
	return newBurstLimiter(perSecond, max(1, int(perSecond)))
}

// newBurstLimiter returns a limiter of perSecond tokens a second per id and
// bursts of burst (at least 1), or nil (no limit) when perSecond <= 0.
func newBurstLimiter(perSecond float64, burst int) *limiter {
	if perSecond <= 0 || math.IsNaN(perSecond) {
		return nil
	}
	return &limiter{perSecond: rate.Limit(perSecond), burst: max(1, burst), max: maxLimiters, m: map[string]*rate.Limiter{}}
}

// allow takes a token of id's bucket at now; false (counted) when it is empty.
func (l *limiter) allow(id string, now time.Time) bool {
	if l == nil {
		return true
	}
	if l.bucket(id, now).AllowN(now, 1) {
		return true
	}
	l.refused.Add(1)
	return false
}

// peek reports whether id's bucket holds a token at now, without taking it
// and without making a bucket for an id that has none (it would be full).
// When it is empty (counted as a refusal), wait is how long until it holds
// one again.
func (l *limiter) peek(id string, now time.Time) (wait time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	l.mu.RLock()
	b := l.m[id]
	l.mu.RUnlock()
	if b == nil {
		return 0, true
	}
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return 0, true
	}
	l.refused.Add(1)
	secs := min((1-tokens)/float64(l.perSecond), maxWait.Seconds())
	return time.Duration(secs * float64(time.Second)), false
}

// maxWait bounds the wait peek reports (a bucket deep in debt, a tiny rate).
const maxWait = 24 * time.Hour

// charge takes a token of id's bucket at now, even one it does not hold: the
// bucket goes into debt, which it pays back at the limit's rate. peek, then
// work, then charge for the work that should count may let a few concurrent
// requests past an almost empty bucket; the debt makes them pay all the same.
func (l *limiter) charge(id string, now time.Time) {
	if l == nil {
		return
	}
	l.bucket(id, now).ReserveN(now, 1) // never refused: n <= burst and no deadline
}

// bucket returns id's bucket, made full if there is none.
func (l *limiter) bucket(id string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[id]
	if b == nil {
		if len(l.m) >= l.max {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.perSecond, l.burst)
		l.m[id] = b
	}
	return b
}

// sweep drops the buckets that are full again: forgetting them changes
// nothing. If that frees less than a quarter of the map, it forgets every
// bucket: a flood of ids (each a new address, say) refills everyone's
// bucket, but the map stays bounded and a sweep, which costs the whole map,
// runs at most once every max/4 new ids.
func (l *limiter) sweep(now time.Time) {
	for id, b := range l.m {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.m, id)
		}
	}
	if len(l.m) > l.max-l.max/4 {
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
