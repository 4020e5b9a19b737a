package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", ms(7), 50, 7 * time.Millisecond},
		{"one value p99", ms(7), 99, 7 * time.Millisecond},
		{"two values p50 is the lower", ms(1, 2), 50, 1 * time.Millisecond},
		{"two values p51 is the upper", ms(1, 2), 51, 2 * time.Millisecond},
		{"p100 is the max", ms(1, 2, 3, 40), 100, 40 * time.Millisecond},
		{"p0 is the min", ms(1, 2, 3, 40), 0, 1 * time.Millisecond},
		{"over 100 is the max", ms(1, 2, 3), 150, 3 * time.Millisecond},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p90", hundred, 90, 90 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"hundred p99.9", hundred, 99.9, 100 * time.Millisecond},
		{"ten p99 is the max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"ten p90", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestResultSummary(t *testing.T) {
	t.Parallel()
	r := &Result{Requests: 4, Elapsed: 2 * time.Second, Latencies: ms(1, 2, 3, 6),
		Errors: map[string]int{"503": 1, TransportError: 2}}
	if got, want := r.Mean(), 3*time.Millisecond; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
	if got, want := r.RequestsPerSecond(), 2.0; got != want {
		t.Errorf("RequestsPerSecond = %v, want %v", got, want)
	}
	if got, want := r.ErrorCount(), 3; got != want {
		t.Errorf("ErrorCount = %v, want %v", got, want)
	}
	if got := (&Result{}).RequestsPerSecond(); got != 0 {
		t.Errorf("RequestsPerSecond of nothing = %v, want 0", got)
	}
}

const (
	ak     = "LOADGENKEY"
	secret = "loadgen-secret-0123"
)

// signedServer answers 200 to requests signed with ak/secret and 401 to
// others; /fail answers 503. It counts the requests it saw and the bodies
// that differ from want.
func signedServer(t *testing.T, want string) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var seen, bad atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		b, _ := io.ReadAll(r.Body)
		if string(b) != want {
			bad.Add(1)
		}
		c, err := sigv2.FromRequest(r)
		if err != nil || sigv2.CheckTimestamp(c.Timestamp, time.Now()) != nil ||
			!sigv2.Verify([]byte(secret), r.Method, r.URL.RequestURI(), c) || c.AccessKey != ak {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/fail" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"code":"SUCCESS"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen, &bad
}

func TestRunExactRequests(t *testing.T) {
	t.Parallel()
	body := `{"plaintext":"aGVsbG8="}`
	srv, seen, bad := signedServer(t, body)
	res, err := Run(context.Background(), Config{
		Request:     Request{Method: "POST", URL: srv.URL + "/kms/v1/keys/x/encrypt?a=b", Body: []byte(body)},
		AccessKey:   ak,
		Secret:      []byte(secret),
		Concurrency: 3,
		Requests:    50,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 50 || seen.Load() != 50 {
		t.Fatalf("requests: result %d, server saw %d, want 50", res.Requests, seen.Load())
	}
	if len(res.Errors) != 0 || bad.Load() != 0 {
		t.Fatalf("errors %v, bad bodies %d, want none", res.Errors, bad.Load())
	}
	if len(res.Latencies) != 50 || !slices.IsSorted(res.Latencies) || res.Latencies[0] <= 0 {
		t.Fatalf("latencies: %d sorted %v first %v", len(res.Latencies), slices.IsSorted(res.Latencies), res.Latencies[0])
	}
	if res.Elapsed <= 0 || res.RequestsPerSecond() <= 0 {
		t.Fatalf("elapsed %v", res.Elapsed)
	}
}

func TestRunCountsStatusesAndTransportErrors(t *testing.T) {
	t.Parallel()
	srv, _, _ := signedServer(t, "")
	run := func(cfg Config) *Result {
		t.Helper()
		cfg.Request.Method = "GET"
		cfg.Concurrency, cfg.Requests = 2, 10
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(Config{Request: Request{URL: srv.URL + "/fail"}, AccessKey: ak, Secret: []byte(secret)}); res.Errors["503"] != 10 || len(res.Errors) != 1 {
		t.Errorf("503s: got %v, want map[503:10]", res.Errors)
	}
	if res := run(Config{Request: Request{URL: srv.URL + "/"}, AccessKey: ak, Secret: []byte("wrong-secret-0123")}); res.Errors["401"] != 10 {
		t.Errorf("bad signature: got %v, want map[401:10]", res.Errors)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	res := run(Config{Request: Request{URL: url}, AccessKey: ak, Secret: []byte(secret)})
	if res.Errors[TransportError] != 10 || len(res.Latencies) != 0 || res.Requests != 10 {
		t.Errorf("closed server: got errors %v, %d latencies, %d requests; want 10 transport errors", res.Errors, len(res.Latencies), res.Requests)
	}
}

func TestRunDurationWarmupAndProgress(t *testing.T) {
	t.Parallel()
	srv, seen, _ := signedServer(t, "")
	var calls atomic.Int64
	res, err := Run(context.Background(), Config{
		Request:       Request{Method: "GET", URL: srv.URL + "/"},
		AccessKey:     ak,
		Secret:        []byte(secret),
		Concurrency:   2,
		Duration:      300 * time.Millisecond,
		Warmup:        100 * time.Millisecond,
		Progress:      func(Progress) { calls.Add(1) },
		ProgressEvery: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || int64(res.Requests) >= seen.Load() {
		t.Fatalf("measured %d of %d requests: want some, and fewer than the server saw (warm-up)", res.Requests, seen.Load())
	}
	if calls.Load() == 0 {
		t.Fatal("progress never called")
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	srv, _, _ := signedServer(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, Config{Request: Request{Method: "GET", URL: srv.URL}, AccessKey: ak, Secret: []byte(secret),
		Concurrency: 2, Duration: time.Hour})
	if err != context.Canceled || res.ErrorCount() != 0 {
		t.Fatalf("got %v, errors %v; want context.Canceled and no errors", err, res.Errors)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no workers":        {Request: Request{URL: "http://x/"}, Requests: 1},
		"no work":           {Request: Request{URL: "http://x/"}, Concurrency: 1},
		"negative requests": {Request: Request{URL: "http://x/"}, Concurrency: 1, Requests: -1, Duration: time.Second},
		"bad url":           {Request: Request{URL: "x"}, Concurrency: 1, Requests: 1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRunSpreadsOverHosts(t *testing.T) {
	t.Parallel()
	body := `{"plaintext":"aGVsbG8="}`
	a, seenA, badA := signedServer(t, body)
	b, seenB, badB := signedServer(t, body)
	res, err := Run(context.Background(), Config{
		Request:     Request{Method: "POST", URL: a.URL + "/kms/v1/keys/x/encrypt", Body: []byte(body)},
		AccessKey:   ak,
		Secret:      []byte(secret),
		Concurrency: 4,
		Requests:    40,
		Hosts:       []string{a.Listener.Addr().String(), b.Listener.Addr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 0 || badA.Load()+badB.Load() != 0 {
		t.Fatalf("errors %v, bad signatures or bodies %d", res.Errors, badA.Load()+badB.Load())
	}
	if seenA.Load() == 0 || seenB.Load() == 0 || seenA.Load()+seenB.Load() != 40 {
		t.Fatalf("host A saw %d and host B %d requests, want both some, 40 in all", seenA.Load(), seenB.Load())
	}
}

// TestRunHonoursRetryAfter: a worker answered 503 with Retry-After: 1 sends
// nothing for that second; told to ignore it, it goes on at once (a wait of
// an hour would outlive the run's context).
func TestRunHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, ignore := range []bool{false, true} {
		var mu sync.Mutex
		var refusedAt, nextAt time.Time
		after := "1"
		if ignore {
			after = "3600" // a worker that waited would outlive ctx below
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case refusedAt.IsZero():
				refusedAt = time.Now()
				w.Header().Set("Retry-After", after)
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			case nextAt.IsZero():
				nextAt = time.Now()
			}
			io.WriteString(w, `{}`)
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := Run(ctx, Config{Request: Request{Method: "GET", URL: srv.URL + "/"},
			AccessKey: ak, Secret: []byte(secret), Concurrency: 1, Requests: 3, IgnoreRetryAfter: ignore})
		cancel()
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors["503"] != 1 || res.Requests != 3 {
			t.Fatalf("ignore=%v: %d requests, errors %v", ignore, res.Requests, res.Errors)
		}
		gap := nextAt.Sub(refusedAt)
		if !ignore && gap < time.Second {
			t.Errorf("the request after a 503 with Retry-After: 1 came %v later", gap)
		}
	}
}
