package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

const (
	testAccessKey = "AKID-test"
	testSecret    = "SECRET-d2c7f1e0-never-on-the-wire"
	testTag       = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	// testToken is the key token that the fake accepts in x-ncp-ocapi-token.
	testToken = "eyJhbGciOiJIUzI1NiJ9.eyJrdCI6ImExYjIiLCJ0eXAiOiJhY2Nlc3MifQ.dG9rZW4tbmV2ZXItaW4tZXJyb3Jz"
)

// t0 is the time of the fake server's clock; the test clock starts there.
var t0 = time.UnixMilli(1_733_452_211_270)

// seen is one request as the fake server received it.
type seen struct {
	Method      string
	URI         string // r.RequestURI, the raw request target
	ContentType string
	Body        []byte
	Timestamp   string
	Token       string // x-ncp-ocapi-token
	AuthErr     error  // nil when the signature and timestamp, or the token, verified
	Dump        []byte
}

// fake is an nkms stand-in. It verifies every request the way the server
// will (sigv2 over r.Method and r.RequestURI, 5-minute window around t0; or
// testToken alone, without any account header), records it, and answers with respond, or with the gateway 401 body when
// authentication fails and respond is not told to ignore it.
type fake struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []seen
	respond func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newFake(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *fake {
	t.Helper()
	f := &fake{respond: respond}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	dump, _ := httputil.DumpRequest(r, true) // before the body is read
	body, _ := io.ReadAll(r.Body)
	s := seen{
		Method:      r.Method,
		URI:         r.RequestURI,
		ContentType: r.Header.Get("Content-Type"),
		Body:        body,
		Timestamp:   r.Header.Get(sigv2.HeaderTimestamp),
		Token:       r.Header.Get(headerToken),
		AuthErr:     authenticate(r),
		Dump:        dump,
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()
	if s.AuthErr != nil && r.URL.Path != "/healthz" {
		b, _ := json.Marshal(map[string]any{"error": map[string]string{
			"errorCode": "200", "message": "Authentication Failed", "details": s.AuthErr.Error()}})
		writeJSON(w, http.StatusUnauthorized, string(b))
		return
	}
	f.respond(w, r, body)
}

func authenticate(r *http.Request) error {
	if tok := r.Header.Get(headerToken); tok != "" {
		for name := range r.Header {
			if n := strings.ToLower(name); strings.HasPrefix(n, "x-ncp-apigw-") || strings.HasPrefix(n, "x-ncp-iam-") {
				return fmt.Errorf("token request also carries %s", n)
			}
		}
		if tok != testToken {
			return fmt.Errorf("unknown token")
		}
		return nil
	}
	c, err := sigv2.FromRequest(r)
	if err != nil {
		return err
	}
	if c.AccessKey != testAccessKey {
		return fmt.Errorf("unknown access key %q", c.AccessKey)
	}
	if err := sigv2.CheckTimestamp(c.Timestamp, t0); err != nil {
		return err
	}
	if !sigv2.Verify([]byte(testSecret), r.Method, r.RequestURI, c) {
		return fmt.Errorf("wrong signature over %s %s", r.Method, r.RequestURI)
	}
	return nil
}

func (f *fake) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// client returns a client of f whose clock starts at t0 and moves 1 ms per
// request, so that every request gets a distinct timestamp.
func (f *fake) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	var n atomic.Int64
	clock := func() time.Time { return t0.Add(time.Duration(n.Add(1)) * time.Millisecond) }
	c, err := New(f.srv.URL, testAccessKey, testSecret, append([]Option{WithClock(clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenClient returns a client of f that authenticates with testToken.
func (f *fake) tokenClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := NewWithToken(f.srv.URL, testToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// success answers {"code":"SUCCESS","data":data} with data given as JSON.
func success(data string) func(http.ResponseWriter, *http.Request, []byte) {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeJSON(w, http.StatusOK, `{"code":"SUCCESS","data":`+data+`}`)
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("body %q is not JSON: %v", got, err)
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

func ptr(n int64) *int64 { return &n }
