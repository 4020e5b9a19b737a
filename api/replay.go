package api

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// replayCache remembers the signatures it has accepted until their
// timestamps leave the signature window, so that a captured request cannot
// be sent again, with the same or another body (the signature does not cover
// the body). Entries are grouped by the minute in which they expire, and a
// whole minute is dropped at once.
//
// Memory: about 60 bytes per signed request of the last 5-10 minutes, e.g.
// ~500 MB for a sustained 15,000 signed requests a second.
type replayCache struct {
	mu       sync.Mutex
	byMinute map[int64]map[[16]byte]struct{} // expiry minute (Unix) → seen signatures
}

// firstUse records the signature of an authenticated request with the given
// timestamp (Unix milliseconds, already checked) and reports whether it had
// not been seen before.
func (c *replayCache) firstUse(accessKey, signature, timestamp string, now time.Time) bool {
	tsMillis, _ := strconv.ParseInt(timestamp, 10, 64) // checked by sigv2.CheckTimestamp
	h := sha256.New()
	h.Write([]byte(accessKey))
	h.Write([]byte{0})
	h.Write([]byte(signature))
	var id [16]byte
	copy(id[:], h.Sum(nil))
	// A signature stays acceptable while |now - ts| < MaxSkew.
	expiry := time.UnixMilli(tsMillis).Add(sigv2.MaxSkew)
	minute := expiry.Unix()/60 + 1

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byMinute == nil {
		c.byMinute = map[int64]map[[16]byte]struct{}{}
	}
	nowMinute := now.Unix() / 60
	for m, seen := range c.byMinute {
		if m <= nowMinute {
			delete(c.byMinute, m) // every signature in it is stale now
			continue
		}
		if _, ok := seen[id]; ok {
			return false
		}
	}
	seen := c.byMinute[minute]
	if seen == nil {
		seen = map[[16]byte]struct{}{}
		c.byMinute[minute] = seen
	}
	seen[id] = struct{}{}
	return true
}
