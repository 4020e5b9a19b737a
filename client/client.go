// Package client is the Go client of nkms. It speaks NAVER Cloud Platform's
// KMS API 2.0, so it also works against NAVER Cloud KMS itself
// (https://ocapi.ncloud.com), except for nkms's own admin routes.
//
// A client made by New signs every request with signature v2 (a fresh
// timestamp each time). A client made by NewWithToken sends a per-key token
// in x-ncp-ocapi-token instead, and no signature: an access token for the
// crypto methods, a refresh token for RenewTokenSet and CreateAccessToken.
// Methods take and return raw bytes; the Base64 of the wire is handled here.
// A failed call returns an *Error carrying the HTTP status and the error
// code of either error body of the server.
//
//	c, err := client.New("http://127.0.0.1:8383", accessKey, secretKey)
//	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "orders", KeyType: "AES256", ProtectionType: "BASIC"})
//	ct, err := c.Encrypt(ctx, key.KeyTag, []byte("hello"), nil)
//	pt, err := c.Decrypt(ctx, key.KeyTag, ct, nil)
//
//	err = c.CreateTokenGenerator(ctx, key.KeyTag)
//	set, err := c.CreateTokenSet(ctx, key.KeyTag, 0, 0)
//	tc, err := client.NewWithToken("http://127.0.0.1:8383", set.AccessToken)
//	ct, err = tc.Encrypt(ctx, key.KeyTag, []byte("hello"), nil)
//
// # Retries
//
// A call that changes nothing on the server is retried: every GET (GetKey,
// ListKeys, ListVersions, GetACL, GetTokenGenerator, Activities, LastUse,
// ListAccessKeys) and the crypto POSTs (Encrypt, Decrypt, ReEncrypt and
// their Many forms, Sign, Verify, PublicKey, CreateCustomKey; and Do with
// these routes, or those of API 1.0 under /keys/v1 and /keys/v2). Such a
// call is sent again, up to 4 times in all (see WithRetries), when the
// server answers 429, 500, 502, 503 or 504, or when the connection fails
// before the whole answer arrived (refused, reset, closed; not a timeout).
// The wait between attempts is the Retry-After of a 429 or 503 when the
// server gives one (in seconds or as a date, up to 30 s), otherwise a random
// wait up to 100 ms, 200 ms, 400 ms… (capped at 2 s, "full jitter"); a call
// whose next wait is longer than 30 s, or would outlast ctx's deadline,
// stops at once with its last answer. Every attempt is signed
// afresh, with a later timestamp than the one before. When ctx ends during
// a wait, the call returns an error that matches both ctx.Err() (errors.Is)
// and the last *Error (errors.As); otherwise a call that runs out of
// attempts returns its last answer's *Error.
//
// Every other call (CreateKey, the key state, name, memo, rotation and
// version changes, DeleteKey, the ACL, token generator and token routes,
// CreateTokenSet, RenewTokenSet, CreateAccessToken, CreateAccessKey,
// RevokeAccessKey) could take effect twice if sent twice, so it is sent
// again only when the connection could not be made at all (the request was
// never sent). Health sends one request and is never retried.
package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nkms/nkms/client/internal/httpx"
	"github.com/nkms/nkms/client/internal/retry"
)

// headerToken carries the key token of a token client (ncp-kms-api.md §2.2).
const headerToken = httpx.HeaderToken

// Client calls one nkms (or NAVER Cloud KMS) server with one access key, or
// with one key token. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	accessKey string // account client (New)
	secret    []byte // account client (New)
	token     string // token client (NewWithToken); "" for an account client
	hc        *http.Client
	now       func() time.Time
	rootCAs   *x509.CertPool // WithRootCAs
	retry     retryPolicy
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send requests with hc. The default client
// has a 30-second timeout and does not follow redirects.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRootCAs makes the default HTTP client trust only the certificates of
// pool for HTTPS, for example a server's self-signed `nkms server --dev`
// certificate. It cannot be combined with WithHTTPClient.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.rootCAs = pool } }

// WithClock sets the clock that stamps each signed request (default
// time.Now); a token client sends no timestamp.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// New returns a client of the server at baseURL (for example
// "http://127.0.0.1:8383" or "https://ocapi.ncloud.com"; a path prefix is
// kept) that signs with accessKey and secretKey.
func New(baseURL, accessKey, secretKey string, opts ...Option) (*Client, error) {
	c, err := newClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New("client: access key and secret key are required")
	}
	c.accessKey, c.secret = accessKey, []byte(secretKey)
	return c, nil
}

// NewWithToken returns a client of the server at baseURL (as for New) that
// authenticates every request with token, a key token sent in
// x-ncp-ocapi-token, instead of a signature; it has no access key and sends
// no x-ncp-apigw-* header. With an access token it can call the crypto
// methods (Encrypt, Decrypt, ReEncrypt and their Many forms,
// CreateCustomKey, Sign, Verify, PublicKey) of the key that issued it; with
// a refresh token, RenewTokenSet and CreateAccessToken. The server refuses
// every other route. The token never appears in the client's errors or
// printed form.
func NewWithToken(baseURL, token string, opts ...Option) (*Client, error) {
	c, err := newClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	if err := httpx.CheckToken("client", token); err != nil {
		return nil, err
	}
	c.token = token
	return c, nil
}

// newClient returns a client of baseURL without credentials, with opts applied.
func newClient(baseURL string, opts []Option) (*Client, error) {
	base, err := httpx.ParseBaseURL("client", baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, now: time.Now, retry: defaultRetryPolicy(), hc: httpx.DefaultHTTPClient()}
	defaultHC := c.hc
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil || c.now == nil || c.retry.sleep == nil {
		return nil, errors.New("client: nil HTTP client or clock")
	}
	if c.retry.attempts < 1 {
		return nil, fmt.Errorf("client: WithRetries(%d): at least 1 attempt is needed", c.retry.attempts)
	}
	if err := httpx.UseRootCAs("client", c.hc, defaultHC, c.rootCAs); err != nil {
		return nil, err
	}
	return c, nil
}

// String describes c without its secret key or token.
func (c *Client) String() string { return httpx.Describe("nkms client", c.base, c.accessKey, c.token) }

// GoString describes c without its secret key or token.
func (c *Client) GoString() string { return c.String() }

// Error is a failure answered by the server. Code is set for KMS-style
// bodies ({"code","msg"}); ErrorCode and Details for gateway-style bodies
// ({"error":{"errorCode","message","details"}}); Message for both. For any
// other body, only Status and a short Message (the HTTP status text) are set.
// The text comes from the server and never includes the client's secret; a
// token client's token is replaced by "[token]" should the server echo it.
type Error struct {
	Status    int    // HTTP status
	Code      string // KMS-style code, e.g. "INVALID_REQUEST", "NOT_FOUND"
	ErrorCode string // gateway-style errorCode, e.g. "200" (authentication failed)
	Message   string
	Details   string // gateway-style details, when the server gives them
}

// Error formats e as "HTTP <status>: <code>: <message> (<details>)", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, ": errorCode %s", e.ErrorCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Details != "" {
		fmt.Fprintf(&b, " (%s)", e.Details)
	}
	return b.String()
}

// Do sends one authenticated request (signed, or carrying the token of a
// token client) and decodes the answer. path starts with "/"
// and may carry a query; it is appended to the base URL as is. body, when
// not nil, is sent as JSON. On a 2xx answer the envelope
// {"code":"SUCCESS","data":...} is checked and data is decoded into out
// (out may be nil). Any other answer gives an *Error. A GET, or a POST to
// one of the crypto routes, is retried as the package documentation says;
// any other request is sent again only when its connection failed.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("client: encode request body: %w", err)
		}
		raw = b
	}
	status, data, err := c.exchange(ctx, method, path, raw, true, c.retry.attempts)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return parseError(status, data, c.token)
	}
	var env struct {
		Code string          `json:"code"`
		Msg  string          `json:"msg"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("client: %s %s: malformed response: %w", method, path, err)
	}
	if env.Code != "SUCCESS" {
		return &Error{Status: status, Code: httpx.Clean(env.Code, c.token), Message: httpx.Clean(env.Msg, c.token)}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok { // the caller decides what null means
		*raw = env.Data
		return nil
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("client: %s %s: response has no data", method, path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("client: %s %s: malformed response data: %w", method, path, err)
	}
	return nil
}

// Health checks that the server is ready to serve: GET /healthz,
// unauthenticated, answering 200 "ok". It sends one request and is never
// retried: its answer is the server's state now.
func (c *Client) Health(ctx context.Context) error {
	status, data, err := c.exchange(ctx, http.MethodGet, "/healthz", nil, false, 1)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return parseError(status, data, c.token)
	}
	if strings.TrimSpace(string(data)) != "ok" {
		return &Error{Status: status, Message: "unexpected health answer"}
	}
	return nil
}

// exchange sends a request of method to path with body (JSON, or nil for
// none), authenticated when auth is set, at most attempts times, and
// returns the last answer: its status and body, or the error that ended the
// call. Each attempt is a new request, signed afresh. Only an idempotent
// request is sent again after a 429 or 5xx answer (after the wait that a
// Retry-After header asks for, or a full-jitter backoff) or after its
// connection broke; any request is sent again when its connection could
// not be made.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, auth bool, attempts int) (int, []byte, error) {
	var stamped time.Time // timestamp of the last signed attempt
	attempt := func() retry.Answer {
		req, err := c.newRequest(ctx, method, path, body)
		if err != nil {
			return retry.Answer{Err: err}
		}
		if auth {
			stamped = c.authenticate(req, stamped)
		}
		status, data, ra, err := c.send(req)
		return retry.Answer{Status: status, Body: data, RetryAfter: ra, Err: err}
	}
	statusErr := func(status int, data []byte) error { return parseError(status, data, c.token) }
	return c.retry.shared().Run(ctx, attempts, idempotent(method, path), attempt, statusErr)
}

// authenticate sets the authentication headers of req: the token header for
// a token client, the signature v2 headers for an account client, stamped
// now but always later than after (the previous attempt of the same call,
// or zero) so that a retry never repeats a signature. It returns the stamp.
func (c *Client) authenticate(req *http.Request, after time.Time) time.Time {
	return httpx.Authenticate(req, c.token, c.accessKey, c.secret, c.now, after)
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("client: path %q does not start with /", path)
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send performs req and reads its whole (bounded) body; retryAfter is the
// answer's Retry-After header.
func (c *Client) send(req *http.Request) (status int, body []byte, retryAfter string, err error) {
	status, h, body, err := httpx.Send("client", c.hc, req)
	return status, body, h.Get("Retry-After"), err
}

// parseError reads either error body of decisions.md D3; anything else
// becomes an *Error with the status text only. token, when not empty, is
// hidden from the text.
func parseError(status int, body []byte, token string) *Error {
	var v struct {
		Error *struct {
			ErrorCode string `json:"errorCode"`
			Message   string `json:"message"`
			Details   string `json:"details"`
		} `json:"error"`
		Code string `json:"code"`
		Msg  string `json:"msg"`
	}
	if json.Unmarshal(body, &v) == nil {
		if g := v.Error; g != nil && (g.ErrorCode != "" || g.Message != "") {
			return &Error{Status: status, ErrorCode: httpx.Clean(g.ErrorCode, token), Message: httpx.Clean(g.Message, token),
				Details: httpx.Clean(g.Details, token)}
		}
		if v.Code != "" {
			return &Error{Status: status, Code: httpx.Clean(v.Code, token), Message: httpx.Clean(v.Msg, token)}
		}
	}
	return &Error{Status: status, Message: httpx.StatusMessage(status)}
}
