package api_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
)

// countingStore counts the reads authentication makes.
type countingStore struct {
	nkms.Store
	reads *atomic.Int64
}

func (s countingStore) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	s.reads.Add(1)
	return s.Store.GetAccessKey(ctx, id)
}

func (s countingStore) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	s.reads.Add(1)
	return s.Store.Get(ctx, tag)
}

// from sends a request as the client address addr, through the trusted proxy
// at 127.0.0.1 (X-Forwarded-For), signed as prepare says.
func (e *env) from(addr, method, path string, prepare func(*http.Request)) (int, http.Header, []byte) {
	e.t.Helper()
	r, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if addr != "" {
		r.Header.Set("X-Forwarded-For", addr)
	}
	if prepare != nil {
		prepare(r)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// limitedEnv is a server that allows 5 failed authentications per client
// address, refilling one a second, behind a trusted proxy at loopback.
func limitedEnv(t *testing.T, configure ...func(*api.Config)) (*env, *atomic.Int64) {
	t.Helper()
	e := newEnvWith(t, func(c *api.Config) {
		c.AuthFailuresPerSecond, c.AuthFailureBurst = 1, 5
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		for _, f := range configure {
			f(c)
		}
	})
	reads := &atomic.Int64{}
	e.svc.Store = countingStore{e.svc.Store, reads}
	return e, reads
}

const limitPath = "/kms/v1/keys"

func (e *env) signed(r *http.Request) {
	sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
}

func (e *env) badSignature(r *http.Request) {
	sigv2.SignRequest(r, e.creds[1].AccessKey, []byte("not-the-secret-key-of-it"), e.clk.Now())
}

// TestAuthFailuresLimitedPerAddress: after its budget of failed
// authentications, an address gets 429 (errorCode 420, Retry-After) even for
// a correctly signed request, before any store work; another address is not
// affected; the budget refills with time (issue 13 item 10: before, failures
// were not limited at all).
func TestAuthFailuresLimitedPerAddress(t *testing.T) {
	t.Parallel()
	e, reads := limitedEnv(t)
	const attacker, other = "203.0.113.7", "198.51.100.20"
	tag := strings.Repeat("a", 64)
	// Five failures of every kind: bad signature, unknown access key, no
	// credentials, a bad token on a token route, a stale timestamp.
	failures := []struct {
		method, path string
		prepare      func(*http.Request)
	}{
		{"GET", limitPath, e.badSignature},
		{"GET", limitPath, func(r *http.Request) { sigv2.SignRequest(r, "NKNOSUCHACCESSKEY00", []byte("x"), e.clk.Now()) }},
		{"GET", limitPath, nil},
		{"POST", "/kms/v1/keys/" + tag + "/access-token", func(r *http.Request) { r.Header.Set("x-ncp-ocapi-token", "eyJhbGciOiJIUzI1NiJ9.e30.x") }},
		{"GET", limitPath, func(r *http.Request) {
			sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now().Add(-time.Hour))
		}},
	}
	for _, f := range failures {
		if status, _, body := e.from(attacker, f.method, f.path, f.prepare); status != http.StatusUnauthorized {
			t.Fatalf("%s %s: got %d %s, want 401", f.method, f.path, status, body)
		}
	}
	before := reads.Load()
	status, h, body := e.from(attacker, "GET", limitPath, e.signed)
	if status != http.StatusTooManyRequests || gatewayCode(t, body) != "420" {
		t.Fatalf("signed request after 5 failures: got %d %s, want 429 errorCode 420", status, body)
	}
	if h.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1 (one failure a second)", h.Get("Retry-After"))
	}
	golden(t, "auth-failures-limited", status, body)
	if status, _, _ := e.from(attacker, "GET", limitPath, e.badSignature); status != http.StatusTooManyRequests {
		t.Fatalf("bad signature over the limit: got %d, want 429", status)
	}
	if n := reads.Load() - before; n != 0 {
		t.Fatalf("requests over the limit made %d store reads, want none", n)
	}
	// Another address is not affected, nor is the proxy itself.
	for _, addr := range []string{other, ""} {
		if status, _, body := e.from(addr, "GET", limitPath, e.signed); status != http.StatusOK {
			t.Fatalf("another address (%q): got %d %s, want 200", addr, status, body)
		}
	}
	// A second later, one failure's worth is back: successes spend none of it.
	e.clk.Add(time.Second)
	for range 3 {
		if status, _, body := e.from(attacker, "GET", limitPath, e.signed); status != http.StatusOK {
			t.Fatalf("a second later: got %d %s, want 200", status, body)
		}
	}
	if status, _, _ := e.from(attacker, "GET", limitPath, e.badSignature); status != http.StatusUnauthorized {
		t.Fatalf("the refilled failure: got %d, want 401", status)
	}
	if status, _, _ := e.from(attacker, "GET", limitPath, e.signed); status != http.StatusTooManyRequests {
		t.Fatalf("after spending the refilled failure: got %d, want 429", status)
	}
	// Five seconds refill the whole budget.
	e.clk.Add(5 * time.Second)
	for range 5 {
		if status, _, _ := e.from(attacker, "GET", limitPath, e.badSignature); status != http.StatusUnauthorized {
			t.Fatalf("after the budget refilled: got %d, want 401", status)
		}
	}
}

// TestAuthFailureLimitSparesSuccesses: successful requests between failures
// spend nothing; only failures count.
func TestAuthFailureLimitSparesSuccesses(t *testing.T) {
	t.Parallel()
	e, _ := limitedEnv(t)
	const addr = "192.0.2.44"
	for range 4 {
		e.from(addr, "GET", limitPath, e.badSignature)
	}
	for i := range 50 {
		if status, _, body := e.from(addr, "GET", limitPath, e.signed); status != http.StatusOK {
			t.Fatalf("success %d after 4 failures: got %d %s", i, status, body)
		}
	}
	if status, _, _ := e.from(addr, "GET", limitPath, e.badSignature); status != http.StatusUnauthorized {
		t.Fatalf("fifth failure: got %d, want 401", status)
	}
	if status, _, _ := e.from(addr, "GET", limitPath, e.signed); status != http.StatusTooManyRequests {
		t.Fatalf("after the fifth failure: got %d, want 429", status)
	}
}

// TestAuthFailureLimitAddress: the client address is the one clientIP
// decides. Behind no trusted proxy, X-Forwarded-For is the client's own word
// and changes nothing; IPv6 addresses share the budget of their /64.
func TestAuthFailureLimitAddress(t *testing.T) {
	t.Parallel()
	t.Run("untrusted X-Forwarded-For", func(t *testing.T) {
		t.Parallel()
		e, _ := limitedEnv(t, func(c *api.Config) { c.TrustedProxies = nil })
		for i := range 5 {
			e.from("203.0.113."+strconv.Itoa(i+1), "GET", limitPath, e.badSignature)
		}
		if status, _, _ := e.from("203.0.113.99", "GET", limitPath, e.signed); status != http.StatusTooManyRequests {
			t.Fatalf("a new X-Forwarded-For from the same peer: got %d, want 429", status)
		}
	})
	t.Run("IPv6 per /64", func(t *testing.T) {
		t.Parallel()
		e, _ := limitedEnv(t)
		for i := range 5 {
			e.from("2001:db8:1:2::"+strconv.Itoa(i+1), "GET", limitPath, e.badSignature)
		}
		if status, _, _ := e.from("2001:db8:1:2:ffff::1", "GET", limitPath, e.signed); status != http.StatusTooManyRequests {
			t.Fatalf("another address of the same /64: got %d, want 429", status)
		}
		if status, _, _ := e.from("2001:db8:1:3::1", "GET", limitPath, e.signed); status != http.StatusOK {
			t.Fatalf("another /64: got %d, want 200", status)
		}
	})
}

// TestAuthFailureMetrics: failures and the requests the limit refused are counted.
func TestAuthFailureMetrics(t *testing.T) {
	t.Parallel()
	m := api.NewMetrics()
	e, _ := limitedEnv(t, func(c *api.Config) { c.Metrics = m })
	for range 7 {
		e.from("192.0.2.1", "GET", limitPath, e.badSignature)
	}
	_, fams := scrape(t, m)
	if got := testkit.MetricValue(fams, "nkms_auth_failures_total", nil); got != 5 {
		t.Errorf("nkms_auth_failures_total = %v, want 5", got)
	}
	if got := testkit.MetricValue(fams, "nkms_auth_failure_limited_requests_total", nil); got != 2 {
		t.Errorf("nkms_auth_failure_limited_requests_total = %v, want 2", got)
	}
}
