package nkms

import (
	"context"
	"time"
)

// ClockResult is what the dev clock says (Service.Clock), and after an
// advance what the scheduler pass that followed it did.
type ClockResult struct {
	Now    time.Time     // the service clock, at the wire's millisecond precision
	Offset time.Duration // how far ahead of the wall clock it is
	Pass   PassResult    // AdvanceClock only: the scheduler pass run at the new time
}

// errNoDevClock answers the clock operations of a service without a DevClock.
var errNoDevClock = Errorf(Invalid, "this server's clock cannot be moved: it runs without a dev clock (nkms server --dev-clock)")

// The operations of the dev clock.
const (
	ActAdvanceClock Action = "AdvanceClock"
	ActReadClock    Action = "ReadClock"
)

// AdvanceClock moves the dev clock forward by d, for an operator, and then
// runs one scheduler pass (RunDue) at the new time, so that every key the
// move made due is destroyed or auto-rotated before it returns. d must be
// positive and keep the clock within MaxDevClockOffset of the wall clock
// (Invalid otherwise). The clock stays moved even when the pass fails (the
// error is returned; the background scheduler tries again on its next pass).
//
// The counts of the pass are this call's: a background pass that runs at
// the same moment may do some of the work (it is done either way).
func (s *Service) AdvanceClock(ctx context.Context, c Caller, d time.Duration) (ClockResult, error) {
	if !c.operates(ActAdvanceClock) {
		return ClockResult{}, errPermission("move the server's clock: only an admin of keystore 1 may")
	}
	if s.DevClock == nil {
		return ClockResult{}, errNoDevClock
	}
	offset, err := s.DevClock.Advance(d)
	if err != nil {
		return ClockResult{}, err
	}
	s.log().Warn("dev clock advanced", "advance", d.String(), "offset", offset.String(), "by", c.AccessKey)
	pass, err := s.RunDue(ctx)
	return ClockResult{Now: s.now(), Offset: offset, Pass: pass}, err
}

// Clock tells what the dev clock says, to any caller that may read (every
// role; the same time is in every date the API answers), but not to a key
// token.
func (s *Service) Clock(_ context.Context, c Caller) (ClockResult, error) {
	if !c.Allows(ActReadClock) {
		return ClockResult{}, errPermission("read the server's clock")
	}
	if s.DevClock == nil {
		return ClockResult{}, errNoDevClock
	}
	now, offset := s.DevClock.read()
	return ClockResult{Now: now.Truncate(time.Millisecond), Offset: offset}, nil
}
