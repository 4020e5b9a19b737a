// Package retry is the retry policy shared by the Go clients of nkms
// (package client for API 2.0, package kmsv3 for API 3.0): which answers and
// transport failures are worth another attempt, how long to wait before it
// (full-jitter backoff, or a server's Retry-After), and the loop that sends
// one call up to a number of attempts.
package retry

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults: at most 4 attempts, waits drawn with full jitter from
// [0, min(Cap, Base·2^n)), and a server's Retry-After honoured up to
// MaxRetryAfter.
const (
	DefaultAttempts = 4
	DefaultBase     = 100 * time.Millisecond
	DefaultCap      = 2 * time.Second
	MaxRetryAfter   = 30 * time.Second
)

// Policy is how a client retries.
type Policy struct {
	Attempts  int           // 1 = no retry
	Base, Cap time.Duration // full-jitter backoff
	// Sleep waits d or until ctx ends (then it returns ctx.Err()); a test
	// hook records the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Default is the policy of a client without retry options.
func Default() Policy {
	return Policy{Attempts: DefaultAttempts, Base: DefaultBase, Cap: DefaultCap, Sleep: SleepCtx}
}

// SleepCtx waits d, or until ctx ends and then returns ctx.Err().
func SleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is the full-jitter wait before retry n (n = 1 for the first retry).
func (p Policy) Backoff(n int) time.Duration {
	ceil := p.Cap
	if shift := n - 1; shift < 31 && p.Base<<shift > 0 && p.Base<<shift < p.Cap {
		ceil = p.Base << shift
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// RetryableStatus reports whether an HTTP answer is worth another attempt of
// an idempotent request: 429, 500, 502, 503, 504.
func RetryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryableTransport reports whether err, from sending a request that got no
// answer, is worth another attempt. Any request may be sent again when the
// connection could not be made (the server never saw it); an idempotent
// request also when the connection was refused, reset or closed under it.
// Timeouts and the end of the context are not retried.
func RetryableTransport(ctx context.Context, err error, idem bool) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true // no connection, so nothing was sent
	}
	if !idem {
		return false // it may have reached the server: sending it again could apply it twice
	}
	return op != nil || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// After reads a Retry-After header given in seconds, or as an HTTP date
// measured against now.
func After(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, 1<<20)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Delay is the wait before attempt n+1 (n ≥ 1 attempts made) after an
// answer with status and Retry-After header ra, or after a transport error
// (status 0). ok is false when the server asks for a wait longer than
// MaxRetryAfter.
func (p Policy) Delay(n, status int, ra string, now time.Time) (d time.Duration, ok bool) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, found := After(ra, now); found {
			return d, d <= MaxRetryAfter
		}
	}
	return p.Backoff(n), true
}

// StopWaiting is the error of a call whose retry wait ended with its
// context: it wraps both the last failure (an answer's error, for
// errors.As) and the context's error.
type StopWaiting struct{ Last, Ctx error }

func (e *StopWaiting) Error() string {
	return e.Last.Error() + " (retry stopped: " + e.Ctx.Error() + ")"
}

// Unwrap returns the last failure and the context's error.
func (e *StopWaiting) Unwrap() []error { return []error{e.Last, e.Ctx} }

// Answer is what one attempt got: a status, body and Retry-After header, or
// the error that left it without an answer.
type Answer struct {
	Status     int
	Body       []byte
	RetryAfter string
	Err        error
}

// Run sends one call up to attempts times and returns the last answer's
// status and body, or the error that ended the call. attempt makes and
// sends one new request. Only an idempotent call (idem) is sent again after
// an answer with a RetryableStatus (after the wait of its Retry-After, or a
// backoff) or after its connection broke; any call is sent again when its
// connection could not be made. statusErr turns a retryable answer into the
// error that a call whose wait is cut short by ctx wraps in *StopWaiting.
// The call stops at once, with its last answer, when the next wait would be
// longer than MaxRetryAfter or outlast ctx's deadline.
func (p Policy) Run(ctx context.Context, attempts int, idem bool, attempt func() Answer,
	statusErr func(status int, body []byte) error) (int, []byte, error) {
	for n := 1; ; n++ {
		a := attempt()
		var failure error // the error of this attempt, should the call stop now
		switch {
		case n >= attempts:
			return a.Status, a.Body, a.Err
		case a.Err != nil:
			if !RetryableTransport(ctx, a.Err, idem) {
				return 0, nil, a.Err
			}
			failure = a.Err
		case idem && RetryableStatus(a.Status):
			failure = statusErr(a.Status, a.Body)
		default:
			return a.Status, a.Body, nil
		}
		d, ok := p.Delay(n, a.Status, a.RetryAfter, time.Now())
		if !ok { // the server asks for a longer wait than we are prepared to make
			return a.Status, a.Body, a.Err
		}
		if deadline, has := ctx.Deadline(); has && time.Until(deadline) < d {
			return a.Status, a.Body, a.Err // the context would end before the next attempt
		}
		if werr := p.Sleep(ctx, d); werr != nil {
			return 0, nil, &StopWaiting{Last: failure, Ctx: werr}
		}
	}
}
