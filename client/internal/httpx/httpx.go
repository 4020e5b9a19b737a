// Package httpx is the HTTP plumbing shared by the Go clients of nkms
// (package client for API 2.0, package kmsv3 for API 3.0): the base URL,
// the default HTTP client, the key token check, the authentication of a
// request (signature v2 or key token), the bounded read of an answer and the
// cleaning of server text. It knows only NAVER Cloud Platform's API gateway
// contract; nothing in it is particular to nkms or to one API version.
//
// Errors start with the prefix a caller passes ("client", "kmsv3"), so each
// package keeps its own.
package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// MaxResponse bounds the size of a response body that a client reads.
const MaxResponse = 16 << 20

// HeaderToken carries a key token (API 2.0 and 3.0 alike).
const HeaderToken = "x-ncp-ocapi-token"

// ParseBaseURL checks raw, a server's base URL http(s)://host[:port][/path]
// without user, query or fragment, and returns it as
// scheme://host[:port][/path] without a trailing slash.
func ParseBaseURL(prefix, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%s: invalid base URL: %w", prefix, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("%s: base URL %q must be http(s)://host[:port][/path], without user, query or fragment", prefix, u.Redacted())
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// DefaultHTTPClient returns a new HTTP client as a client uses when it is
// not given one: a 30-second timeout, no redirect followed, and a
// connection pool of the clients' own (transport).
func DefaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: transport,
		Timeout:   30 * time.Second,
		// A KMS API never redirects; do not replay signed headers or a token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// transport is the connection pool of every client made with
// DefaultHTTPClient: http.DefaultTransport's settings, but not its pool, so
// that other code closing that pool's idle connections cannot break a
// request of ours that just took one (httptest.Server.Close does it, and
// so do the test suites of the applications that use these clients).
var transport = http.DefaultTransport.(*http.Transport).Clone()

// UseRootCAs makes def, the client of DefaultHTTPClient, trust only the
// certificates of pool for HTTPS (TLS 1.2 at least); a nil pool changes
// nothing. hc is the client the options left in place: anything but def
// means the caller gave its own, which cannot be combined with a pool.
func UseRootCAs(prefix string, hc, def *http.Client, pool *x509.CertPool) error {
	if pool == nil {
		return nil
	}
	if hc != def {
		return fmt.Errorf("%s: WithRootCAs and WithHTTPClient cannot be combined; set RootCAs in your HTTP client", prefix)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	def.Transport = t
	return nil
}

// CheckToken checks a key token: not empty, and printable ASCII without
// spaces, so that it can travel in a header. The error never holds the token.
func CheckToken(prefix, token string) error {
	if token == "" {
		return errors.New(prefix + ": token is required")
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return errors.New(prefix + ": token must be printable ASCII without spaces")
		}
	}
	return nil
}

// Authenticate sets the authentication headers of req: with a token (not
// empty), the token header; otherwise the signature v2 headers of accessKey
// and secret, stamped now() but always later than after (the previous
// attempt of the same call, or zero) so that a retry never repeats a
// signature. It returns the stamp (zero for a token, and now is not called).
func Authenticate(req *http.Request, token, accessKey string, secret []byte, now func() time.Time, after time.Time) time.Time {
	if token != "" {
		req.Header.Set(HeaderToken, token)
		return time.Time{}
	}
	t := now()
	if !after.IsZero() && t.UnixMilli() <= after.UnixMilli() {
		t = time.UnixMilli(after.UnixMilli() + 1)
	}
	sigv2.SignRequest(req, accessKey, secret, t)
	return t
}

// Describe is the printed form of a client named name (for example "nkms
// client") of base: with a token (not empty), only that it holds one;
// otherwise its access key. It never shows the token or a secret key.
func Describe(name, base, accessKey, token string) string {
	if token != "" {
		return fmt.Sprintf("%s %s (key token)", name, base)
	}
	return fmt.Sprintf("%s %s (access key %s)", name, base, accessKey)
}

// Send performs req with hc and reads the whole answer, up to MaxResponse
// bytes. A body that cannot be read whole is an error on a 2xx answer; on
// any other answer it is dropped (nil body, no error), for the status alone
// makes the client's error. err, a failure to send or to read a 2xx
// answer, starts with prefix; then status is 0 and header nil.
func Send(prefix string, hc *http.Client, req *http.Request) (status int, header http.Header, body []byte, err error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s: %w", prefix, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err == nil && len(body) > MaxResponse {
		err = fmt.Errorf("response body over %d bytes", MaxResponse)
	}
	if err != nil {
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return resp.StatusCode, resp.Header, nil, nil
		}
		return 0, nil, nil, fmt.Errorf("%s: %s %s: read response: %w", prefix, req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// StatusMessage is the Message of an error answer without a body the client
// can read: the HTTP status text, or "unexpected response".
func StatusMessage(status int) string {
	if msg := http.StatusText(status); msg != "" {
		return msg
	}
	return "unexpected response"
}

// Clean keeps server text printable and short, with token (when not empty)
// replaced by "[token]" before anything is cut.
func Clean(s, token string) string {
	const max = 300
	if token != "" {
		s = strings.ReplaceAll(s, token, "[token]")
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return s
}
