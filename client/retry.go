package client

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

// Retry defaults: at most 4 attempts, waits drawn with full jitter from
// [0, min(retryCap, retryBase·2^n)), and a server's Retry-After honoured up
// to maxRetryAfter.
const (
	defaultAttempts = 4
	retryBase       = 100 * time.Millisecond
	retryCap        = 2 * time.Second
	maxRetryAfter   = 30 * time.Second
)

// retryPolicy is how a Client retries; see the package documentation.
type retryPolicy struct {
	attempts  int           // 1 = no retry
	base, cap time.Duration // full-jitter backoff
	// sleep waits d or until ctx ends (then it returns ctx.Err()); a test
	// hook records the waits instead.
	sleep func(ctx context.Context, d time.Duration) error
}

func defaultRetryPolicy() retryPolicy {
	return retryPolicy{attempts: defaultAttempts, base: retryBase, cap: retryCap, sleep: sleepCtx}
}

// WithRetries sets how many times in all the client sends a call that may be
// retried (default 4); 1 turns retries off. It must be at least 1.
func WithRetries(maxAttempts int) Option { return func(c *Client) { c.retry.attempts = maxAttempts } }

// withBackoff sets the backoff base and cap (tests).
func withBackoff(base, cap time.Duration) Option {
	return func(c *Client) { c.retry.base, c.retry.cap = base, cap }
}

// withSleep replaces the wait between attempts (tests).
func withSleep(sleep func(context.Context, time.Duration) error) Option {
	return func(c *Client) { c.retry.sleep = sleep }
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the full-jitter wait before retry n (n = 1 for the first retry).
func (p retryPolicy) backoff(n int) time.Duration {
	ceil := p.cap
	if shift := n - 1; shift < 31 && p.base<<shift > 0 && p.base<<shift < p.cap {
		ceil = p.base << shift
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// idempotentOps are the POST routes that change no key: sending one twice
// gives the same effect as sending it once (the crypto routes of API 2.0
// under /kms/v1/keys/{keyTag}/ and of API 1.0 under /keys/v1|v2/{keyTag}/).
var (
	idempotentOps = map[string]bool{
		"encrypt": true, "decrypt": true, "re-encrypt": true, "sign": true, "verify": true,
		"get-pub-key": true, "create-custom-key": true,
	}
	idempotentOpsV1 = map[string]bool{
		"encrypt": true, "decrypt": true, "reencrypt": true, "sign": true, "verify": true,
		"createCustomKey": true,
	}
)

// idempotent reports whether a request changes nothing on the server, so
// that it may be sent again after a 429, a 5xx or a failed connection: every
// GET, and the crypto POSTs. path is relative to the base URL and may carry
// a query.
func idempotent(method, path string) bool {
	if method == http.MethodGet || method == http.MethodHead {
		return true
	}
	if method != http.MethodPost {
		return false
	}
	p, _, _ := strings.Cut(path, "?")
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case len(seg) == 5 && seg[0] == "kms" && seg[1] == "v1" && seg[2] == "keys" && seg[3] != "":
		return idempotentOps[seg[4]]
	case len(seg) == 4 && seg[0] == "keys" && (seg[1] == "v1" || seg[1] == "v2") && seg[2] != "":
		return idempotentOpsV1[seg[3]]
	}
	return false
}

// retryableStatus reports whether an HTTP answer is worth another attempt of
// an idempotent request.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableTransport reports whether err, from sending a request that got no
// answer, is worth another attempt. Any request may be sent again when the
// connection could not be made (the server never saw it); an idempotent
// request also when the connection was refused, reset or closed under it.
// Timeouts and the end of the context are not retried.
func retryableTransport(ctx context.Context, err error, idem bool) bool {
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

// retryAfter reads a Retry-After header given in seconds, or as an HTTP
// date measured against now.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
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

// retryDelay is the wait before attempt n+1 (n ≥ 1 attempts made) after an
// answer with status and Retry-After header ra, or after a transport error
// (status 0). ok is false when the server asks for a wait longer than
// maxRetryAfter.
func (p retryPolicy) retryDelay(n, status int, ra string, now time.Time) (d time.Duration, ok bool) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, found := retryAfter(ra, now); found {
			return d, d <= maxRetryAfter
		}
	}
	return p.backoff(n), true
}

// stopWaiting is the error of a call whose retry wait ended with ctx: it
// wraps both the last failure (an *Error for errors.As) and ctx's error.
type stopWaiting struct{ last, ctx error }

func (e *stopWaiting) Error() string {
	return e.last.Error() + " (retry stopped: " + e.ctx.Error() + ")"
}
func (e *stopWaiting) Unwrap() []error { return []error{e.last, e.ctx} }
