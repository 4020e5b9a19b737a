package retry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h  string
		d  time.Duration
		ok bool
	}{
		{"", 0, false}, {"3", 3 * time.Second, true}, {" 0 ", 0, true}, {"-1", 0, false}, {"x", 0, false},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		if d, ok := After(tc.h, now); d != tc.d || ok != tc.ok {
			t.Errorf("After(%q) = %v, %v; want %v, %v", tc.h, d, ok, tc.d, tc.ok)
		}
	}
	p := Default()
	if d, ok := p.Delay(1, 429, "31", now); ok || d != 31*time.Second {
		t.Errorf("Delay(429, 31) = %v, %v; want 31s, false", d, ok)
	}
	if d, ok := p.Delay(1, 500, "5", now); !ok || d >= DefaultBase {
		t.Errorf("Delay(500, 5) = %v, %v; want a backoff: Retry-After counts only on 429 and 503", d, ok)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for s, want := range map[int]bool{429: true, 500: true, 502: true, 503: true, 504: true, 400: false, 501: false, 200: false} {
		if RetryableStatus(s) != want {
			t.Errorf("RetryableStatus(%d) != %v", s, want)
		}
	}
	dial := &net.OpError{Op: "dial", Err: errors.New("x")}
	read := &net.OpError{Op: "read", Err: errors.New("x")}
	ctx := context.Background()
	if !RetryableTransport(ctx, dial, false) || RetryableTransport(ctx, read, false) || !RetryableTransport(ctx, read, true) ||
		RetryableTransport(ctx, context.DeadlineExceeded, true) {
		t.Error("RetryableTransport")
	}
}

// TestRun checks the loop: an idempotent call is sent again after a 503,
// a non-idempotent one is not, and the attempts are bounded.
func TestRun(t *testing.T) {
	t.Parallel()
	p := Default()
	p.Sleep = func(context.Context, time.Duration) error { return nil }
	for _, idem := range []bool{true, false} {
		n := 0
		status, _, err := p.Run(context.Background(), 3, idem, func() Answer {
			n++
			return Answer{Status: 503}
		}, func(int, []byte) error { return errors.New("503") })
		want := 1
		if idem {
			want = 3
		}
		if err != nil || status != 503 || n != want {
			t.Errorf("idem %v: %d attempts, status %d, err %v; want %d, 503, nil", idem, n, status, err, want)
		}
	}
}
