package client

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/nkms/nkms/client/internal/retry"
)

// retryPolicy is how a Client retries (see the package documentation); the
// policy itself lives in internal/retry, shared with the API 3.0 client.
type retryPolicy struct {
	attempts  int           // 1 = no retry
	base, cap time.Duration // full-jitter backoff
	// sleep waits d or until ctx ends (then it returns ctx.Err()); a test
	// hook records the waits instead.
	sleep func(ctx context.Context, d time.Duration) error
}

func defaultRetryPolicy() retryPolicy {
	d := retry.Default()
	return retryPolicy{attempts: d.Attempts, base: d.Base, cap: d.Cap, sleep: d.Sleep}
}

// shared is p as the policy of internal/retry.
func (p retryPolicy) shared() retry.Policy {
	return retry.Policy{Attempts: p.attempts, Base: p.base, Cap: p.cap, Sleep: p.sleep}
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

func sleepCtx(ctx context.Context, d time.Duration) error { return retry.SleepCtx(ctx, d) }

// backoff is the full-jitter wait before retry n (n = 1 for the first retry).
func (p retryPolicy) backoff(n int) time.Duration { return p.shared().Backoff(n) }

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
