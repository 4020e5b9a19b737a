// Package kmsv3 is a Go client of NAVER Cloud Platform's KMS API 3.0
// (`/kms/v3`), as nkms serves it and as NAVER Cloud KMS itself does
// (https://ocapi.ncloud.com, or a region's host such as
// https://ocapi-kr.ncloud.com). It knows only that contract (the pages
// summarised in nkms's ncp-kms-api-v3.md, and decisions.md D9 where they are
// silent); nothing in it is particular to nkms.
//
// A client made by New calls the account routes (/kms/v3/keys/...) and
// signs every request with signature v2 (a fresh timestamp each time). A
// client made by NewWithToken calls the token routes
// (/kms/v3/token/keys/...) with a key token in x-ncp-ocapi-token and no
// signature: an access token for the crypto methods (Encrypt, Decrypt,
// ReEncrypt, the Batch methods, Sign, Verify, IssueCustomKey, GetPublicKey),
// which then call encryptWithToken and the other …WithToken operations, and
// a refresh token for ReissueKeyTokens and IssueKeyAccessToken. On a token
// route the key tag must be given exactly as issued (lower-case); the
// client sends it unchanged.
//
// Methods take and return raw bytes where the wire carries Base64
// (plaintexts, contexts, signed data); ciphertexts and signatures stay the
// `ncpkms:v<N>:…` strings of the wire. Pages are numbered from 0. Token
// lifetimes are in minutes (access) and hours (refresh), as on the wire.
//
//	c, err := kmsv3.New("https://ocapi.ncloud.com", accessKey, secretKey)
//	key, err := c.CreateKey(ctx, kmsv3.CreateKeyRequest{KeyName: "orders", KeyType: kmsv3.AES256,
//		ProtectionType: kmsv3.Basic, Rotation: kmsv3.RotationSettings{Enabled: false}})
//	ct, err := c.Encrypt(ctx, key.KeyTag, []byte("hello"), nil)
//	pt, err := c.Decrypt(ctx, key.KeyTag, ct, nil)
//
// A failed call returns an *Error (HTTP status, errorCode, message, detail,
// fieldErrors, the x-ncp-request-id of the answer), or, for a batch that
// failed item by item, a *BatchError whose Failures are keyed by request
// index.
//
// # Retries
//
// The retry policy is the one of the API 2.0 client (package client). A
// call that changes nothing on the server is retried: every GET (GetKey,
// ListKeys, GetKeyRotation, ListKeyVersions, GetKeyVersion, GetKeyAcl,
// GetKeyTokenGenerator, ListKeyActivities, GetPublicKey) and the crypto
// POSTs (Encrypt, Decrypt, ReEncrypt, BatchEncrypt, BatchDecrypt,
// BatchReEncrypt, Sign, Verify, IssueCustomKey), on account and token
// routes alike. Such a call is sent again, up to 4 times in all (see
// WithRetries), when the server answers 429, 500, 502, 503 or 504, or when
// the connection fails before the whole answer arrived (refused, reset,
// closed; not a timeout). The wait is the Retry-After of a 429 or 503 when
// the server gives one (up to 30 s), otherwise a random wait up to 100 ms,
// 200 ms, 400 ms… (capped at 2 s); a call whose next wait is longer than
// 30 s, or would outlast ctx's deadline, stops at once with its last
// answer. Every attempt is signed afresh. When ctx ends during a wait, the
// error matches both ctx.Err() (errors.Is) and the last *Error (errors.As).
//
// Every other call (CreateKey, the PATCH updates, DeleteKey, deletion
// requests, CreateKeyVersion, the allowed-IP edits, the token generator and
// token routes) could take effect twice, or answer differently the second
// time, so it is sent again only when its connection could not be made at
// all.
package kmsv3

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nkms/nkms/client/internal/httpx"
	"github.com/nkms/nkms/client/internal/retry"
)

// HeaderToken carries a key token on the token routes.
const HeaderToken = httpx.HeaderToken

// HeaderRequestID is the server's identifier of one request, echoed in *Error.
const HeaderRequestID = "x-ncp-request-id"

// Content types of request bodies.
const (
	contentJSON       = "application/json"
	contentMergePatch = "application/merge-patch+json"
)

// Client calls one KMS API 3.0 server with one access key, or with one key
// token. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	accessKey string
	secret    []byte
	token     string // token client; "" for an account client
	lang      string // x-ncp-lang, optional
	hc        *http.Client
	now       func() time.Time
	rootCAs   *x509.CertPool
	retry     retry.Policy
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send requests with hc. The default client
// has a 30-second timeout and does not follow redirects.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRootCAs makes the default HTTP client trust only the certificates of
// pool for HTTPS. It cannot be combined with WithHTTPClient.
func WithRootCAs(pool *x509.CertPool) Option { return func(c *Client) { c.rootCAs = pool } }

// WithClock sets the clock that stamps each signed request (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithRetries sets how many times in all the client sends a call that may be
// retried (default 4); 1 turns retries off. It must be at least 1.
func WithRetries(maxAttempts int) Option { return func(c *Client) { c.retry.Attempts = maxAttempts } }

// WithLanguage sends x-ncp-lang (for example "en", "ko", "ja"), the language
// NAVER's servers use for error messages.
func WithLanguage(lang string) Option { return func(c *Client) { c.lang = lang } }

// withBackoff sets the backoff base and cap (tests).
func withBackoff(base, cap time.Duration) Option {
	return func(c *Client) { c.retry.Base, c.retry.Cap = base, cap }
}

// withSleep replaces the wait between attempts (tests).
func withSleep(sleep func(context.Context, time.Duration) error) Option {
	return func(c *Client) { c.retry.Sleep = sleep }
}

// New returns a client of the account routes of the server at baseURL (for
// example "https://ocapi.ncloud.com" or "http://127.0.0.1:8383"; a path
// prefix is kept) that signs with accessKey and secretKey.
func New(baseURL, accessKey, secretKey string, opts ...Option) (*Client, error) {
	c, err := newClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New("kmsv3: access key and secret key are required")
	}
	c.accessKey, c.secret = accessKey, []byte(secretKey)
	return c, nil
}

// NewWithToken returns a client of the token routes of the server at
// baseURL (as for New) that sends token in x-ncp-ocapi-token on every
// request. The token never appears in the client's errors or printed form.
func NewWithToken(baseURL, token string, opts ...Option) (*Client, error) {
	c, err := newClient(baseURL, opts)
	if err != nil {
		return nil, err
	}
	if err := httpx.CheckToken("kmsv3", token); err != nil {
		return nil, err
	}
	c.token = token
	return c, nil
}

func newClient(baseURL string, opts []Option) (*Client, error) {
	base, err := httpx.ParseBaseURL("kmsv3", baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, now: time.Now, retry: retry.Default(), hc: httpx.DefaultHTTPClient()}
	defaultHC := c.hc
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil || c.now == nil || c.retry.Sleep == nil {
		return nil, errors.New("kmsv3: nil HTTP client or clock")
	}
	if c.retry.Attempts < 1 {
		return nil, fmt.Errorf("kmsv3: WithRetries(%d): at least 1 attempt is needed", c.retry.Attempts)
	}
	if strings.ContainsAny(c.lang, "\r\n") {
		return nil, errors.New("kmsv3: invalid language")
	}
	if err := httpx.UseRootCAs("kmsv3", c.hc, defaultHC, c.rootCAs); err != nil {
		return nil, err
	}
	return c, nil
}

// String describes c without its secret key or token.
func (c *Client) String() string { return httpx.Describe("kmsv3 client", c.base, c.accessKey, c.token) }

// GoString describes c without its secret key or token.
func (c *Client) GoString() string { return c.String() }

// call is one operation: its route and how to send and read it.
type call struct {
	method string
	path   string     // escaped, from the base URL, without query
	query  url.Values // nil for none
	body   any        // nil: no body
	patch  bool       // merge-patch body
	idem   bool       // changes nothing on the server: retried on 429/5xx
	batch  bool       // a failure may carry index-keyed failures
}

// do sends cl and decodes a 2xx answer's body into out (nil: the body is
// ignored). Any other answer gives an *Error or a *BatchError.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var raw []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("kmsv3: encode request body: %w", err)
		}
		raw = b
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var stamped time.Time // timestamp of the last signed attempt
	var reqID string      // x-ncp-request-id of the last answer
	attempt := func() retry.Answer {
		req, err := c.newRequest(ctx, cl, target, raw)
		if err != nil {
			return retry.Answer{Err: err}
		}
		stamped = c.authenticate(req, stamped)
		a, id := c.send(req)
		reqID = id
		return a
	}
	statusErr := func(status int, data []byte) error { return c.parseError(status, data, reqID, cl.batch) }
	status, data, err := c.retry.Run(ctx, c.retry.Attempts, cl.idem, attempt, statusErr)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return c.parseError(status, data, reqID, cl.batch)
	}
	if out == nil {
		return nil
	}
	if status == http.StatusNoContent || len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("kmsv3: %s %s: HTTP %d without the expected body", cl.method, cl.path, status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("kmsv3: %s %s: malformed response: %w", cl.method, cl.path, err)
	}
	return nil
}

func (c *Client) newRequest(ctx context.Context, cl call, target string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, r)
	if err != nil {
		return nil, fmt.Errorf("kmsv3: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		ct := contentJSON
		if cl.patch {
			ct = contentMergePatch
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.lang != "" {
		req.Header.Set("x-ncp-lang", c.lang)
	}
	return req, nil
}

// authenticate sets the token header of a token client, or the signature v2
// headers of an account client stamped now but always later than after
// (the previous attempt of the same call, or zero), so that a retry never
// repeats a signature. It returns the stamp.
func (c *Client) authenticate(req *http.Request, after time.Time) time.Time {
	return httpx.Authenticate(req, c.token, c.accessKey, c.secret, c.now, after)
}

// send performs req and reads its whole (bounded) body; it returns the
// answer and its x-ncp-request-id.
func (c *Client) send(req *http.Request) (retry.Answer, string) {
	status, h, body, err := httpx.Send("kmsv3", c.hc, req)
	return retry.Answer{Status: status, Body: body, RetryAfter: h.Get("Retry-After"), Err: err}, h.Get(HeaderRequestID)
}
