package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms/internal/sigv2"
)

// waits records the waits between attempts instead of sleeping.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

func (w *waits) option() Option {
	return withSleep(func(ctx context.Context, d time.Duration) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ds = append(w.ds, d)
		return ctx.Err()
	})
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ds...)
}

// failing answers status (with Retry-After ra, when not empty) to the first
// n requests, then data in a success envelope; it records each request's
// signature header.
type failing struct {
	status int
	ra     string
	n      int
	data   string

	mu   sync.Mutex
	seen int
	sigs []string
}

func (h *failing) respond(w http.ResponseWriter, r *http.Request, _ []byte) {
	h.mu.Lock()
	h.seen++
	h.sigs = append(h.sigs, r.Header.Get(sigv2.HeaderSignatureV2))
	fail := h.seen <= h.n
	h.mu.Unlock()
	if fail {
		if h.ra != "" {
			w.Header().Set("Retry-After", h.ra)
		}
		writeJSON(w, h.status, `{"code":"SERVICE_UNAVAILABLE","msg":"try again","data":null}`)
		return
	}
	writeJSON(w, http.StatusOK, `{"code":"SUCCESS","data":`+h.data+`}`)
}

func (h *failing) signatures() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.sigs...)
}

// TestRetryThenSuccess checks that an idempotent call answered 429 or 5xx
// twice is sent a third time and succeeds, and that every attempt is signed
// afresh with a later timestamp, even with a clock that stands still.
func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name string
		data string
		call func(context.Context, *Client) error
	}{
		{"GetKey", `{"keyTag":"t"}`, func(ctx context.Context, c *Client) error { _, err := c.GetKey(ctx, testTag); return err }},
		{"Encrypt", `{"ciphertext":"ncpkms:v1:x"}`, func(ctx context.Context, c *Client) error {
			_, err := c.Encrypt(ctx, testTag, []byte("hello"), nil)
			return err
		}},
	}
	for _, status := range []int{429, 500, 502, 503, 504} {
		for _, tc := range calls {
			t.Run(strconv.Itoa(status)+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				h := &failing{status: status, n: 2, data: tc.data}
				f := newFake(t, h.respond)
				var w waits
				c, err := New(f.srv.URL, testAccessKey, testSecret, w.option(), WithClock(func() time.Time { return t0 }))
				if err != nil {
					t.Fatal(err)
				}
				if err := tc.call(t.Context(), c); err != nil {
					t.Fatalf("call after 2 failures = %v, want success", err)
				}
				reqs := f.requests()
				if len(reqs) != 3 {
					t.Fatalf("server saw %d requests, want 3", len(reqs))
				}
				var last int64
				for i, r := range reqs {
					if r.AuthErr != nil {
						t.Errorf("attempt %d did not verify: %v", i+1, r.AuthErr)
					}
					ts, _ := strconv.ParseInt(r.Timestamp, 10, 64)
					if ts <= last {
						t.Errorf("attempt %d timestamp %d, want after %d", i+1, ts, last)
					}
					last = ts
				}
				sigs := h.signatures()
				if sigs[0] == sigs[1] || sigs[1] == sigs[2] || sigs[0] == sigs[2] {
					t.Errorf("signatures %q repeat, want a fresh one per attempt", sigs)
				}
				if ws := w.get(); len(ws) != 2 {
					t.Errorf("waits = %v, want 2", ws)
				}
			})
		}
	}
}

func TestTokenClientRetries(t *testing.T) {
	t.Parallel()
	h := &failing{status: 503, n: 1, data: `{"plaintext":"aGVsbG8="}`}
	f := newFake(t, h.respond)
	var w waits
	pt, err := f.tokenClient(t, w.option()).Decrypt(t.Context(), testTag, "ncpkms:v1:x", nil)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("Decrypt = %q, %v; want hello", pt, err)
	}
	for i, r := range f.requests() {
		if r.AuthErr != nil || r.Token != testToken {
			t.Errorf("attempt %d: token %q, auth error %v", i+1, r.Token, r.AuthErr)
		}
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// TestRetryAfter checks the wait before the next attempt: the server's
// Retry-After on 429 and 503, the backoff otherwise, and no retry when the
// server asks for too long a wait.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		status   int
		ra       string
		wantWait time.Duration // exact; 0 = a backoff wait, below the base
		wantReqs int
	}{
		{"429 seconds", 429, "1", time.Second, 2},
		{"503 seconds", 503, "3", 3 * time.Second, 2},
		{"503 zero", 503, "0", 0, 2},
		{"500 ignores it", 500, "7", 0, 2},
		{"503 garbage", 503, "soon", 0, 2},
		{"429 too long", 429, "120", 0, 1},
		{"503 date too far", 503, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &failing{status: tc.status, ra: tc.ra, n: 1, data: `{"keyTag":"t"}`}
			f := newFake(t, h.respond)
			var w waits
			_, err := f.client(t, w.option(), withBackoff(50*time.Millisecond, time.Second)).GetKey(t.Context(), testTag)
			if n := len(f.requests()); n != tc.wantReqs {
				t.Fatalf("server saw %d requests, want %d", n, tc.wantReqs)
			}
			ws := w.get()
			if tc.wantReqs == 1 {
				var e *Error
				if !errors.As(err, &e) || e.Status != tc.status {
					t.Errorf("GetKey = %v, want the *Error of HTTP %d", err, tc.status)
				}
				if len(ws) != 0 {
					t.Errorf("waits = %v, want none", ws)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetKey = %v", err)
			}
			switch {
			case len(ws) != 1:
				t.Errorf("waits = %v, want 1", ws)
			case tc.wantWait != 0 && ws[0] != tc.wantWait:
				t.Errorf("wait = %v, want %v", ws[0], tc.wantWait)
			case tc.wantWait == 0 && (ws[0] < 0 || ws[0] >= 50*time.Millisecond):
				t.Errorf("wait = %v, want a backoff in [0, 50ms)", ws[0])
			}
		})
	}
}

func TestBackoffFullJitter(t *testing.T) {
	t.Parallel()
	p := retryPolicy{base: 100 * time.Millisecond, cap: 2 * time.Second}
	for n, ceil := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		3: 400 * time.Millisecond, 5: 1600 * time.Millisecond, 6: 2 * time.Second, 40: 2 * time.Second, 70: 2 * time.Second} {
		var maxSeen time.Duration
		for range 2000 {
			d := p.backoff(n)
			if d < 0 || d >= ceil {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil/2 {
			t.Errorf("backoff(%d) never above %v in 2000 draws, want up to %v", n, maxSeen, ceil)
		}
	}
}

// TestNotIdempotentNotRetried checks that a call that changes a key is sent
// once, whatever the server answers.
func TestNotIdempotentNotRetried(t *testing.T) {
	t.Parallel()
	for _, status := range []int{429, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			h := &failing{status: status, ra: "1", n: 100}
			f := newFake(t, h.respond)
			var w waits
			_, err := f.client(t, w.option()).Rotate(t.Context(), testTag)
			var e *Error
			if !errors.As(err, &e) || e.Status != status || e.Code != "SERVICE_UNAVAILABLE" {
				t.Errorf("Rotate = %v, want the *Error of HTTP %d", err, status)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

// retriedRoutes are the routes that the client may send more than once
// after a 5xx: every GET, and the crypto POSTs.
var retriedRoutes = map[string]bool{
	"POST /encrypt": true, "POST /decrypt": true, "POST /re-encrypt": true, "POST /sign": true,
	"POST /verify": true, "POST /get-pub-key": true, "POST /create-custom-key": true,
}

// checkRetries calls tc against a server that answers 503 and checks that
// the call is sent 3 times (WithRetries(3)) if it may be retried, else once.
// runRoutes runs it for every route case.
func checkRetries(t *testing.T, tc routeCase) {
	t.Helper()
	h := &failing{status: 503, n: 100}
	f := newFake(t, h.respond)
	var w waits
	opts := []Option{w.option(), WithRetries(3)}
	c := f.client(t, opts...)
	if tc.token {
		c = f.tokenClient(t, opts...)
	}
	_, err := tc.call(t.Context(), c)
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 {
		t.Errorf("call against a 503 server = %v, want the *Error of HTTP 503", err)
	}
	path, _, _ := strings.Cut(tc.uri, "?")
	want := 1
	if tc.method == "GET" || retriedRoutes[tc.method+" "+strings.TrimPrefix(path, k)] {
		want = 3
	}
	if n := len(f.requests()); n != want {
		t.Errorf("%s %s against a 503 server: sent %d times, want %d", tc.method, tc.uri, n, want)
	}
}

func TestIdempotentOfDo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/anything?x=1", true},
		{"POST", k + "/encrypt", true},
		{"POST", k + "/create-custom-key", true},
		{"POST", "/keys/v1/" + testTag + "/reencrypt", true},
		{"POST", "/keys/v2/" + testTag + "/createCustomKey", true},
		{"POST", "/keys/v2/" + testTag + "/create-custom-key", false},
		{"POST", "/kms/v1/keys", false},
		{"POST", "/kms/v1/keys//encrypt", false},
		{"POST", k + "/versions/1/enable", false},
		{"POST", k + "/rotate", false},
		{"POST", k + "/token-set", false},
		{"POST", k + "/access-token", false},
		{"PUT", k + "/encrypt", false},
		{"DELETE", k, false},
	} {
		if got := idempotent(tc.method, tc.path); got != tc.want {
			t.Errorf("idempotent(%s %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestMaxAttempts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts []Option
		want int
	}{
		{nil, 4},
		{[]Option{WithRetries(1)}, 1},
		{[]Option{WithRetries(2)}, 2},
		{[]Option{WithRetries(6)}, 6},
	} {
		t.Run(strconv.Itoa(tc.want), func(t *testing.T) {
			t.Parallel()
			h := &failing{status: 500, n: 100}
			f := newFake(t, h.respond)
			var w waits
			_, err := f.client(t, append([]Option{w.option()}, tc.opts...)...).Verify(t.Context(), testTag, []byte("m"), "ncpkms:v1:s")
			var e *Error
			if !errors.As(err, &e) || e.Status != 500 {
				t.Errorf("Verify = %v, want the last answer's *Error", err)
			}
			if n := len(f.requests()); n != tc.want {
				t.Errorf("server saw %d requests, want %d", n, tc.want)
			}
			if n := len(w.get()); n != tc.want-1 {
				t.Errorf("waited %d times, want %d", n, tc.want-1)
			}
		})
	}
	for _, n := range []int{0, -1} {
		if _, err := New("http://127.0.0.1:1", testAccessKey, testSecret, WithRetries(n)); err == nil {
			t.Errorf("New with WithRetries(%d) succeeded, want an error", n)
		}
	}
}

// TestContextStopsRetryWait checks that the wait between attempts ends with
// the context, and that the error then matches both the context's error and
// the last *Error.
func TestContextStopsRetryWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeJSON(w, 503, `{"code":"SERVICE_UNAVAILABLE","msg":"busy","data":null}`)
	})
	var waited time.Duration
	sleep := withSleep(func(ctx context.Context, d time.Duration) error {
		waited = d
		cancel() // the context ends during the real wait of up to an hour
		return sleepCtx(ctx, d)
	})
	_, err := f.client(t, withBackoff(time.Hour, time.Hour), sleep).Decrypt(ctx, testTag, "ncpkms:v1:x", nil)
	var e *Error
	if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("Decrypt = %v, want context.Canceled and the 503 *Error", err)
	}
	if !strings.Contains(err.Error(), "HTTP 503") {
		t.Errorf("error text %q, want the last answer", err)
	}
	if n := len(f.requests()); n != 1 || waited == 0 {
		t.Errorf("server saw %d requests after a wait of %v, want 1 after a wait", n, waited)
	}
}

// TestDeadlineBeforeRetryAfter checks that a call gives up at once, with the
// last answer, when its context would end before the wait that the server
// asks for.
func TestDeadlineBeforeRetryAfter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	h := &failing{status: 429, ra: "25", n: 100}
	f := newFake(t, h.respond)
	var w waits
	_, err := f.client(t, w.option()).Sign(ctx, testTag, []byte("m"))
	var e *Error
	if !errors.As(err, &e) || e.Status != 429 || errors.Is(err, context.DeadlineExceeded) {
		// 25 s fits in a minute: it is waited for (through the hook), 4 times.
		t.Fatalf("Sign = %v, want the 429 *Error", err)
	}
	if n := len(f.requests()); n != 4 {
		t.Errorf("with a minute left, server saw %d requests, want 4", n)
	}

	ctx2, cancel2 := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel2()
	h2 := &failing{status: 429, ra: "25", n: 100}
	f2 := newFake(t, h2.respond)
	var w2 waits
	_, err = f2.client(t, w2.option()).Sign(ctx2, testTag, []byte("m"))
	if !errors.As(err, &e) || e.Status != 429 || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sign = %v, want the 429 *Error", err)
	}
	if n, ws := len(f2.requests()), w2.get(); n != 1 || len(ws) != 0 {
		t.Errorf("with 10 s left and Retry-After 25: %d requests, waits %v; want 1 request, no wait", n, ws)
	}
}

// TestDialErrorRetried checks that a refused connection is retried for
// every call, a state-changing one included: nothing was sent.
func TestDialErrorRetried(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for name, call := range map[string]func(context.Context, *Client) error{
		"GetKey":    func(ctx context.Context, c *Client) error { _, err := c.GetKey(ctx, testTag); return err },
		"EnableKey": func(ctx context.Context, c *Client) error { _, err := c.EnableKey(ctx, testTag); return err },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var w waits
			c, err := New("http://"+addr, testAccessKey, testSecret, w.option())
			if err != nil {
				t.Fatal(err)
			}
			err = call(t.Context(), c)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				t.Fatalf("call = %v, want a dial error", err)
			}
			if n := len(w.get()); n != 3 {
				t.Errorf("waited %d times, want 3 (4 attempts)", n)
			}
		})
	}
}

// TestBrokenConnection checks that a connection closed after the request
// was sent is retried for an idempotent call only.
func TestBrokenConnection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		call func(context.Context, *Client) error
		want int
	}{
		{"GetKey", func(ctx context.Context, c *Client) error { _, err := c.GetKey(ctx, testTag); return err }, 4},
		{"Encrypt", func(ctx context.Context, c *Client) error {
			_, err := c.Encrypt(ctx, testTag, []byte("x"), nil)
			return err
		}, 4},
		{"DisableKey", func(ctx context.Context, c *Client) error { _, err := c.DisableKey(ctx, testTag); return err }, 1},
		{"CreateTokenSet", func(ctx context.Context, c *Client) error {
			_, err := c.CreateTokenSet(ctx, testTag, 0, 0)
			return err
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got atomic.Int64
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				got.Add(1)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close() // no answer
				}
			})
			var w waits
			err := tc.call(t.Context(), f.client(t, w.option()))
			var e *Error
			if err == nil || errors.As(err, &e) {
				t.Fatalf("call = %v, want a transport error", err)
			}
			if n := int(got.Load()); n != tc.want {
				t.Errorf("server saw %d requests, want %d", n, tc.want)
			}
		})
	}
}

// TestHealthNotRetried: a health check reports the state of the server now.
func TestHealthNotRetried(t *testing.T) {
	t.Parallel()
	h := &failing{status: 503, n: 100}
	f := newFake(t, h.respond)
	var w waits
	err := f.client(t, w.option()).Health(t.Context())
	var e *Error
	if !errors.As(err, &e) || e.Status != 503 {
		t.Fatalf("Health = %v, want the 503 *Error", err)
	}
	if diff := cmp.Diff(1, len(f.requests())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
