package api

import (
	"context"
	"time"

	"github.com/nkms/nkms"
)

// The dev clock routes exist only when the Service has a DevClock (nkms
// server --dev-clock); without one they answer 404 like any unknown route.
// Their times are the Service's clock; the request's signature is checked
// against the wall clock (Config.Now), which the dev clock does not move.
func (s *Server) devClockRoutes() []route {
	return []route{
		{"GET", "/nkms/v1/dev/clock", authAccount, smallBody, s.clock, plain},
		{"POST", "/nkms/v1/dev/clock", authAccount, smallBody, s.advanceClock, plain},
	}
}

// clockResponse is the data of GET /nkms/v1/dev/clock: the server's clock,
// as RFC 3339 in UTC with milliseconds and as Unix milliseconds (the form
// of every date the API answers), and how far ahead of the wall clock it is
// (a Go duration).
type clockResponse struct {
	Now       string `json:"now"`
	NowMillis int64  `json:"nowMillis"`
	Offset    string `json:"offset"`
}

// advanceResponse is the data of POST /nkms/v1/dev/clock: the clock after
// the advance, and what the scheduler pass that followed it did.
type advanceResponse struct {
	clockResponse
	Destroyed int `json:"destroyed"`
	Rotated   int `json:"rotated"`
	Failed    int `json:"failed"`
	Pruned    int `json:"pruned"` // usage-log entries past their retention
}

// rfc3339Millis is RFC 3339 in UTC with milliseconds.
const rfc3339Millis = "2006-01-02T15:04:05.000Z"

func clockData(r nkms.ClockResult) clockResponse {
	return clockResponse{Now: r.Now.UTC().Format(rfc3339Millis), NowMillis: ms(r.Now), Offset: r.Offset.String()}
}

// clock is GET /nkms/v1/dev/clock.
func (s *Server) clock(ctx context.Context, c nkms.Caller, _ *request) (result, error) {
	r, err := s.svc.Clock(ctx, c)
	if err != nil {
		return result{}, err
	}
	return result{data: clockData(r)}, nil
}

// advanceClock is POST /nkms/v1/dev/clock {"advance": "72h"}: for an
// operator, it moves the clock forward and runs one scheduler pass before
// it answers.
func (s *Server) advanceClock(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	buf, err := readBody(rq)
	if err != nil {
		return result{}, err
	}
	d, err := parseAdvance(buf.Bytes())
	putBodyBuffer(buf)
	if err != nil {
		return result{}, err
	}
	r, err := s.svc.AdvanceClock(ctx, c, d)
	if err != nil {
		return result{}, err
	}
	return result{data: advanceResponse{clockResponse: clockData(r),
		Destroyed: r.Pass.Destroyed, Rotated: r.Pass.Rotated, Failed: r.Pass.Failed, Pruned: r.Pass.Pruned}}, nil
}

// parseAdvance reads the body {"advance": "<Go duration>"}: a positive
// duration of at most nkms.MaxDevClockOffset. Its messages never echo the
// input.
func parseAdvance(body []byte) (time.Duration, error) {
	var req struct {
		Advance *string `json:"advance"`
	}
	if err := decodeBytes(body, &req); err != nil {
		return 0, err
	}
	if req.Advance == nil {
		return 0, nkms.Errorf(nkms.Invalid, `advance is required: a Go duration such as "72h" or "90m"`)
	}
	d, err := time.ParseDuration(*req.Advance)
	if err != nil {
		return 0, nkms.Errorf(nkms.Invalid, `advance must be a Go duration such as "72h", "90m" or "1h30m" (days in hours: "720h" is 30 days)`)
	}
	if d <= 0 {
		return 0, nkms.Errorf(nkms.Invalid, "advance must be positive: the dev clock only moves forward")
	}
	if d > nkms.MaxDevClockOffset {
		return 0, nkms.Errorf(nkms.Invalid, "advance must be at most %s (100 years)", nkms.MaxDevClockOffset)
	}
	return d, nil
}
