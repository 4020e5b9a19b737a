package nkms

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MaxDevClockOffset is how far ahead of the wall clock a DevClock may go in
// all: 100 years (876000h). Far enough for any test of deletion windows,
// rotation periods (at most 730 days) or token lifetimes (at most 17520
// hours), near enough that no date it makes overflows anything.
const MaxDevClockOffset = 876000 * time.Hour

// DevClock is the clock of `nkms server --dev-clock`: the wall clock plus
// an offset that only grows. Tests move it forward (Advance) to see what a
// server does after 72 hours or 90 days without waiting for them. It is
// safe for concurrent use; Now takes no lock.
//
// It is not for production: anyone who may advance it (an operator, see
// Service.AdvanceClock) can make every pending deletion happen at once.
type DevClock struct {
	wall    func() time.Time
	persist func(offset time.Duration) error

	mu     sync.Mutex   // serialises Advance (and its persist)
	offset atomic.Int64 // nanoseconds ahead of wall
}

// NewDevClock returns a clock offset ahead of wall (nil: time.Now). persist,
// when not nil, is called with the new offset by every Advance before the
// clock moves, so that a restarted server can start where this one was (a
// key's dates set with the moved clock must not lie in a future that the
// restarted clock has to catch up with); when it fails, the clock does not
// move. offset must lie in [0, MaxDevClockOffset].
func NewDevClock(wall func() time.Time, offset time.Duration, persist func(offset time.Duration) error) (*DevClock, error) {
	if offset < 0 || offset > MaxDevClockOffset {
		return nil, fmt.Errorf("dev clock offset %s is out of range [0, %s]", offset, MaxDevClockOffset)
	}
	if wall == nil {
		wall = time.Now
	}
	c := &DevClock{wall: wall, persist: persist}
	c.offset.Store(int64(offset))
	return c, nil
}

// Now is the wall clock plus the offset. Give it to Service.Now.
func (c *DevClock) Now() time.Time { return c.wall().Add(c.Offset()) }

// read is Now and the Offset it added, read together.
func (c *DevClock) read() (time.Time, time.Duration) {
	off := c.Offset()
	return c.wall().Add(off), off
}

// Wall is the wall clock that c runs ahead of.
func (c *DevClock) Wall() time.Time { return c.wall() }

// Offset is how far ahead of the wall clock c is.
func (c *DevClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Advance moves the clock forward by d and returns the new offset. d must
// be positive, and the offset may not pass MaxDevClockOffset: otherwise the
// error is Invalid and nothing moves. A failed persist leaves the clock
// where it was and returns that error (Internal).
func (c *DevClock) Advance(d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return c.Offset(), Errorf(Invalid, "advance must be a positive duration, such as 72h or 90m")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.Offset()
	if d > MaxDevClockOffset-cur {
		return cur, Errorf(Invalid, "advance %s is too large: the dev clock goes at most %s ahead of the wall clock in all, and it is %s ahead already",
			d, MaxDevClockOffset, cur)
	}
	next := cur + d
	if c.persist != nil {
		if err := c.persist(next); err != nil {
			return cur, errors.Join(errDevClockPersist, err)
		}
	}
	c.offset.Store(int64(next))
	return next, nil
}

// errDevClockPersist names a failure to write the moved clock down.
var errDevClockPersist = errors.New("dev clock: cannot save the new offset; the clock did not move")
