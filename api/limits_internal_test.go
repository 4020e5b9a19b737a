package api

import (
	"strconv"
	"testing"
	"time"
)

// TestLimiterStaysBounded: a flood of ids that each spend their bucket (new
// client addresses failing, say) never keeps more than max buckets, and a
// bucket in debt is kept while the map has room.
func TestLimiterStaysBounded(t *testing.T) {
	l := newBurstLimiter(10, 100)
	l.max = 1000
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range 20 * l.max {
		for range 101 { // each id one failure over its burst
			l.charge(strconv.Itoa(i), now)
		}
		if len(l.m) > l.max {
			t.Fatalf("%d buckets after %d ids, want at most %d", len(l.m), i+1, l.max)
		}
		if i%l.max == l.max-1 {
			now = now.Add(time.Millisecond)
		}
	}
	l = newBurstLimiter(10, 100)
	for range 101 {
		l.charge("spent", now)
	}
	if _, ok := l.peek("spent", now); ok {
		t.Fatal("a spent bucket lets a request through")
	}
	// -1 token, refilling 10 a second: -0.5 at 50 ms, 1 (a request's worth) at 200 ms.
	if wait, ok := l.peek("spent", now.Add(50*time.Millisecond)); ok || wait < 149*time.Millisecond || wait > 151*time.Millisecond {
		t.Fatalf("a bucket in debt 50 ms later: wait %v, ok %v; want refused, 150 ms to wait", wait, ok)
	}
	if _, ok := l.peek("spent", now.Add(200*time.Millisecond)); !ok {
		t.Fatal("a bucket one token in debt is still empty 200 ms later at 10/s")
	}
}
