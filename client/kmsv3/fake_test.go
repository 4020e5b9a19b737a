package kmsv3

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// The fake server of these tests knows only the wire of API 3.0 (D9): it
// checks each request's authentication (signature v2 on account routes, the
// token header alone on token routes), records the request and answers
// what the test says.

const (
	testAccessKey = "AKIDTEST"
	testSecret    = "secret-key-of-the-test"
	testTag       = "f3a1c2d4e5b6978812345678abcdef0123456789abcdef0123456789abcdef01"
	testToken     = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0In0.c2ln"
)

// seen is one request as the fake received it.
type seen struct {
	method, path, query, contentType string
	header                           http.Header
	body                             []byte
}

// answer is what the fake sends back.
type answer struct {
	status int
	body   string
	header map[string]string
}

type fake struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	got []seen
	// answers are sent in turn; the last one again once they run out.
	answers []answer
}

func newFake(t *testing.T, answers ...answer) *fake {
	t.Helper()
	f := &fake{t: t, answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// authFailure is the gateway's answer to a request whose authentication is wrong.
const authFailure = `{"error":{"errorCode":"200","message":"Authentication Failed","details":"fake: bad authentication"}}`

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.t.Errorf("fake: read body: %v", err)
	}
	f.mu.Lock()
	f.got = append(f.got, seen{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
		contentType: r.Header.Get("Content-Type"), header: r.Header.Clone(), body: body})
	n := len(f.got)
	f.mu.Unlock()
	if !authOK(r) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, authFailure)
		return
	}
	a := answer{status: 200, body: `{}`}
	if len(f.answers) > 0 {
		a = f.answers[min(n, len(f.answers))-1]
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// authOK checks a request's authentication as a KMS 3.0 server does.
func authOK(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/kms/v3/token/") {
		return r.Header.Get(HeaderToken) == testToken && r.Header.Get(sigv2.HeaderSignatureV2) == "" &&
			r.Header.Get(sigv2.HeaderAccessKey) == "" && r.Header.Get(sigv2.HeaderTimestamp) == ""
	}
	if r.Header.Get(HeaderToken) != "" {
		return false
	}
	cr, err := sigv2.FromRequest(r)
	if err != nil || cr.AccessKey != testAccessKey || sigv2.CheckTimestamp(cr.Timestamp, time.Now()) != nil {
		return false
	}
	return sigv2.Verify([]byte(testSecret), r.Method, r.URL.RequestURI(), cr)
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

// waits records the waits between attempts instead of sleeping.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

func (w *waits) option() Option {
	return withSleep(func(_ context.Context, d time.Duration) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.ds = append(w.ds, d)
		return nil
	})
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ds...)
}

// account and token are clients of f; opts come after a no-wait sleep.
func (f *fake) account(t *testing.T, opts ...Option) *Client {
	t.Helper()
	var w waits
	c, err := New(f.srv.URL, testAccessKey, testSecret, append([]Option{w.option()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fake) token(t *testing.T, opts ...Option) *Client {
	t.Helper()
	var w waits
	c, err := NewWithToken(f.srv.URL, testToken, append([]Option{w.option()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
