package kmsv3

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// TestRetries checks which operations are sent again after a 429 or 5xx:
// every GET and the crypto POSTs (account and token), and nothing that
// changes a key. It runs every operation of the table.
func TestRetries(t *testing.T) {
	t.Parallel()
	retried := map[string]bool{}
	for _, id := range []string{"listKeys", "getKey", "getKeyRotation", "listKeyVersions", "getKeyVersion",
		"getKeyAcl", "getKeyTokenGenerator", "listKeyActivities"} {
		retried[id] = true
	}
	for _, id := range []string{"encrypt", "decrypt", "reEncrypt", "batchEncrypt", "batchDecrypt",
		"batchReEncrypt", "sign", "verify", "issueCustomKey", "getPublicKey"} {
		retried[id], retried[id+"WithToken"] = true, true
	}
	for _, o := range ops() {
		for _, status := range []int{429, 500, 502, 503, 504} {
			t.Run(o.id+"/"+http.StatusText(status), func(t *testing.T) {
				t.Parallel()
				ok := o.status
				if ok == 0 {
					ok = 200
				}
				f := newFake(t, answer{status: status, body: `{"error":{"errorCode":"TooManyRequests","message":"slow down"}}`},
					answer{status: ok, body: o.answer})
				var w waits
				c := f.account(t, w.option(), withBackoff(50*time.Millisecond, time.Second))
				if o.token {
					c = f.token(t, w.option(), withBackoff(50*time.Millisecond, time.Second))
				}
				_, err := o.call(t.Context(), c)
				n := len(f.requests())
				if retried[o.id] {
					if err != nil || n != 2 {
						t.Fatalf("err %v after %d requests, want success after 2", err, n)
					}
					if ws := w.get(); len(ws) != 1 || ws[0] < 0 || ws[0] >= 50*time.Millisecond {
						t.Errorf("waits %v, want one backoff in [0, 50ms)", ws)
					}
					return
				}
				var e *Error
				if n != 1 || !errors.As(err, &e) || e.Status != status {
					t.Fatalf("err %v after %d requests, want the HTTP %d *Error after 1", err, n, status)
				}
			})
		}
	}
}

// TestRetryAfterAndAttempts checks the Retry-After wait, the limit on
// attempts, and that each attempt is signed afresh.
func TestRetryAfterAndAttempts(t *testing.T) {
	t.Parallel()
	busy := answer{status: 429, body: `{"error":{"errorCode":"TooManyRequests","message":"m"}}`, header: map[string]string{"Retry-After": "3"}}
	f := newFake(t, busy)
	var w waits
	fixed := time.Now()
	c := f.account(t, w.option(), WithClock(func() time.Time { return fixed }))
	_, err := c.Encrypt(t.Context(), testTag, []byte("x"), nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != 429 || e.ErrorCode != CodeTooManyRequests {
		t.Fatalf("Encrypt = %v, want the last 429", err)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	if ws := w.get(); len(ws) != 3 || ws[0] != 3*time.Second || ws[2] != 3*time.Second {
		t.Errorf("waits %v, want 3 × 3s", ws)
	}
	stamps := map[string]bool{}
	for _, r := range reqs {
		stamps[r.header.Get(sigv2.HeaderTimestamp)] = true
	}
	if len(stamps) != 4 {
		t.Errorf("timestamps %v, want 4 different ones", stamps)
	}

	one := newFake(t, busy)
	if _, err := one.account(t, WithRetries(1)).GetKey(t.Context(), testTag); err == nil || len(one.requests()) != 1 {
		t.Errorf("WithRetries(1): err %v after %d requests, want an error after 1", err, len(one.requests()))
	}
	long := newFake(t, answer{status: 503, body: "", header: map[string]string{"Retry-After": "120"}})
	if _, err := long.account(t).GetKey(t.Context(), testTag); err == nil || len(long.requests()) != 1 {
		t.Errorf("Retry-After 120: err %v after %d requests, want an error after 1", err, len(long.requests()))
	}
}

// TestContextStopsRetryWait checks that a call whose context ends while it
// waits returns both the context's error and the last answer's.
func TestContextStopsRetryWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := newFake(t, answer{status: 503, body: `{"error":{"errorCode":"InternalServerError","message":"busy"}}`})
	sleep := withSleep(func(ctx context.Context, d time.Duration) error {
		cancel()
		<-ctx.Done()
		return ctx.Err()
	})
	_, err := f.account(t, sleep).BatchEncrypt(ctx, testTag, []EncryptRequest{{Plaintext: []byte("x")}})
	var e *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("BatchEncrypt = %v, want context.Canceled and the 503 *Error", err)
	}
}

// TestConnectionNotMade checks that any call, even one that changes a key,
// is sent again when its connection could not be made.
func TestConnectionNotMade(t *testing.T) {
	t.Parallel()
	f := newFake(t, answer{status: 201, body: keyJSON("ENABLED", "null", "null")})
	dials := 0
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials++
		if dials == 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("no route")}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	k, err := f.account(t, WithHTTPClient(hc)).CreateKey(t.Context(), CreateKeyRequest{KeyName: "orders", KeyType: AES256, ProtectionType: Basic})
	if err != nil || k.KeyTag != testTag || len(f.requests()) != 1 || dials != 2 {
		t.Fatalf("CreateKey = %v, %v after %d dials and %d requests", k, err, dials, len(f.requests()))
	}
	if got := string(f.requests()[0].body); !strings.Contains(got, `"rotation":{"enabled":false}`) {
		t.Errorf("body %s, want the required rotation even when disabled", got)
	}
}
