package api_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// fqRoute is a route of FuzzQueriesAndHeaders: the fuzzed path segment
// replaces {seg}; {ec} is the fuzz key's tag. Only routes that do not change
// the keys' state are listed, so that every input meets the same server.
type fqRoute struct {
	method, path, body string
}

var fqRoutes = []fqRoute{
	{"GET", "/kms/v1/keys", ""},
	{"GET", "/kms/v1/keys/{seg}", ""},
	{"GET", "/kms/v1/keys/{seg}/versions", ""},
	{"GET", "/kms/v1/keys/{seg}/activities", ""},
	{"GET", "/kms/v1/keys/{seg}/last-use-info", ""},
	{"GET", "/kms/v1/keys/{seg}/acl", ""},
	{"GET", "/kms/v1/keys/{seg}/token-generator", ""},
	{"GET", "/nkms/v1/access-keys", ""},
	{"POST", "/kms/v1/keys/{seg}/sign", `{"data":"aGVsbG8="}`},     // signature or access token
	{"POST", "/kms/v1/keys/{seg}/get-pub-key", `{"keyVersion":1}`}, // signature or access token
	{"POST", "/kms/v1/keys/{seg}/access-token", `{}`},              // refresh token
	{"PUT", "/kms/v1/keys/{seg}/token-set", `{}`},                  // refresh token
	{"POST", "/kms/v1/keys/{ec}/versions/{seg}/enable", ""},        // version 1 is already enabled
	{"POST", "/keys/v2/{seg}/sign", `{"data":"aGVsbG8="}`},         // API 1.0, signature only
	{"GET", "/healthz", ""},
}

// Bits of FuzzQueriesAndHeaders' flags argument.
const (
	fqSign      = 1 << iota // fill in the signature headers the input leaves empty, with a valid signature
	fqReplays   = 1 << iota // send to a server that refuses replayed signatures
	fqKeystore2 = 1 << iota // sign as keystore 2's access key (the keys are keystore 1's)
	fqUntrusted = 1 << iota // from a peer that is not a trusted proxy
)

// fqTrusted are the trusted proxies of the fuzzed server: the peer address
// of every fuzzed request (192.0.2.1, as httptest.NewRequest uses) and an
// inner proxy range.
var fqTrusted = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.0.0.0/8")}

// FuzzQueriesAndHeaders sends arbitrary query strings, path segments (key
// tags, versions) and values of the authentication headers and
// X-Forwarded-For to the read-only routes, through api.New(...).ServeHTTP,
// and requires an answer below 500: no input may produce a 500 or a panic.
// With the fqSign flag a request is signed properly around the fuzzed
// headers, so that the query parsing behind authentication is reached.
func FuzzQueriesAndHeaders(f *testing.F) {
	var cfg api.Config
	e := newEnvWith(f, func(c *api.Config) {
		c.TrustedProxies = fqTrusted
		cfg = *c
	})
	ctx := context.Background()
	rec := &fqRecorder{next: e.srv.Client().Transport}
	hc := &http.Client{Transport: rec}
	cr := e.creds[1]
	c, err := client.New(e.srv.URL, cr.AccessKey, cr.SecretKey, client.WithClock(e.clk.Now), client.WithHTTPClient(hc))
	if err != nil {
		f.Fatal(err)
	}

	// The fuzz key: ECDSA, signed once (a usage log), a token generator, a
	// token set, and an IP ACL that lets 127.0.0.1 (the recording client)
	// and 198.51.100.0/24 (behind a trusted proxy) use tokens.
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "fuzz", KeyType: "ECDSA"})
	if err != nil {
		f.Fatal(err)
	}
	ec := k.KeyTag
	if _, err := c.Sign(ctx, ec, []byte("hello")); err != nil {
		f.Fatal(err)
	}
	if err := c.CreateTokenGenerator(ctx, ec); err != nil {
		f.Fatal(err)
	}
	set, err := c.CreateTokenSet(ctx, ec, 1, client.Unlimited)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := c.AddACL(ctx, ec, []string{"127.0.0.1", "198.51.100.0/24"}); err != nil {
		f.Fatal(err)
	}
	if _, err := c.EnableACL(ctx, ec); err != nil {
		f.Fatal(err)
	}

	// Real requests, recorded on the wire: signed account calls, then token calls.
	rec.start()
	must := func(err error) {
		if err != nil {
			f.Helper()
			f.Fatal(err)
		}
	}
	_, err = c.ListKeys(ctx, 1, 10)
	must(err)
	_, err = c.GetKey(ctx, ec)
	must(err)
	_, err = c.ListVersions(ctx, ec)
	must(err)
	_, err = c.Activities(ctx, ec, client.ActivityQuery{From: t0.Add(-time.Hour), To: t0, Keyword: "Sign", PageNo: 1, PageSize: 20})
	must(err)
	_, err = c.LastUse(ctx, ec)
	must(err)
	_, err = c.GetACL(ctx, ec)
	must(err)
	_, err = c.GetTokenGenerator(ctx, ec)
	must(err)
	_, err = c.ListAccessKeys(ctx)
	must(err)
	access, err := client.NewWithToken(e.srv.URL, set.AccessToken, client.WithHTTPClient(hc))
	must(err)
	_, err = access.Sign(ctx, ec, []byte("hello"))
	must(err)
	_, err = access.PublicKey(ctx, ec, 1)
	must(err)
	refresh, err := client.NewWithToken(e.srv.URL, set.RefreshToken, client.WithHTTPClient(hc))
	must(err)
	_, err = refresh.CreateAccessToken(ctx, ec, 1)
	must(err)
	_, err = refresh.RenewTokenSet(ctx, ec, 1, 1)
	must(err)
	recorded := rec.stop()

	seeded := 0
	for _, r := range recorded {
		route, seg, query, ok := fqMatch(r.method, r.uri, ec)
		if !ok {
			continue
		}
		h := r.header
		// The request exactly as sent (its signature is valid: the clock is fixed) ...
		f.Add(route, seg, query, h.Get(sigv2.HeaderTimestamp), h.Get(sigv2.HeaderAccessKey),
			h.Get(sigv2.HeaderSignatureV2), h.Get(sigv2.HeaderSignatureV1), h.Get("x-ncp-ocapi-token"), "", uint8(0))
		// ... and from behind the trusted proxy, for a token the ACL allows,
		// or with the signature left to the fuzz function.
		if tok := h.Get("x-ncp-ocapi-token"); tok != "" {
			f.Add(route, seg, query, "", "", "", "", tok, "198.51.100.7", uint8(0))
		} else {
			f.Add(route, seg, query, "", "", "", "", "", "198.51.100.7", uint8(fqSign))
		}
		seeded++
	}
	if seeded < 10 {
		f.Fatalf("only %d of %d recorded requests matched a fuzzed route", seeded, len(recorded))
	}

	now := strconv.FormatInt(t0.UnixMilli(), 10)
	for i, rt := range fqRoutes {
		seg := ec
		if strings.Contains(rt.path, "/versions/{seg}") {
			seg = "1"
		}
		f.Add(uint8(i), seg, "", "", "", "", "", "", "", uint8(fqSign))
		f.Add(uint8(i), strings.ToUpper(seg), "pageNo=1", "", "", "", "", set.AccessToken, "198.51.100.7", uint8(0))
		f.Add(uint8(i), seg, "", "", "", "", "", set.RefreshToken, "203.0.113.9, 198.51.100.7", uint8(0))
		f.Add(uint8(i), seg, "", "", "", "", "", set.AccessToken, "198.51.100.7, 10.1.2.3", uint8(fqUntrusted))
	}
	for _, q := range []string{
		"pageNo=0", "pageSize=0", "pageSize=201", "pageNo=999999999&pageSize=200", "pageNo=-1", "pageNo=+1",
		"pageNo=%zz", "pageNo=1&pageNo=2", "pageSize=1e3", "pageSize= 1", ";", "a=1;b=2", "&&=&",
		"timestampFrom=9999999999999999", "timestampFrom=1&timestampTo=0", "timestampTo=999999999999999",
		"timestampFrom=-1", "timestampFrom=0x10", "keyword=" + strings.Repeat("k", 101), "keyword=%00%ff",
		"keyword=%20%20Sign%20", "keyword=Sign&pageSize=1&pageNo=2", "timestampFrom=" + now + "&timestampTo=" + now,
	} {
		f.Add(uint8(0), "", q, "", "", "", "", "", "", uint8(fqSign))
		f.Add(uint8(3), ec, q, "", "", "", "", "", "", uint8(fqSign))
	}
	for _, ts := range []string{"0", "-1", "+" + now, " " + now, now + "0", "9223372036854775807",
		"9223372036854775808", "1e12", strconv.FormatInt(t0.Add(-5*time.Minute).UnixMilli(), 10),
		strconv.FormatInt(t0.Add(5*time.Minute-time.Millisecond).UnixMilli(), 10)} {
		f.Add(uint8(0), "", "", ts, "", "", "", "", "", uint8(fqSign))
		f.Add(uint8(0), "", "", ts, "", "", "", "", "", uint8(fqSign|fqReplays))
	}
	for _, ak := range []string{"NKNOSUCHKEY", "\xff", strings.Repeat("A", 1000), e.creds[2].AccessKey} {
		f.Add(uint8(0), "", "", "", ak, "", "", "", "", uint8(fqSign))
	}
	for _, sig := range []string{"AAAA", "====", "not base64", strings.Repeat("A", 44)} {
		f.Add(uint8(0), "", "", "", "", sig, "", "", "", uint8(fqSign))
		f.Add(uint8(0), "", "", "", "", "", sig, "", "", uint8(fqSign))
	}
	for _, tok := range []string{"x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", set.AccessToken + "x", strings.Repeat(".", 3)} {
		f.Add(uint8(8), ec, "", "", "", "", "", tok, "198.51.100.7", uint8(0))
	}
	for _, xff := range []string{"not-an-ip", "::1", "::ffff:198.51.100.7", "198.51.100.7,", ",", "192.0.2.1",
		"fe80::1%eth0", strings.Repeat("10.0.0.1,", 200) + "198.51.100.7"} {
		f.Add(uint8(8), ec, "", "", "", "", "", set.AccessToken, xff, uint8(0))
	}
	for _, seg := range []string{"", ".", "..", "%2F", "%00", strings.Repeat("a", 64), strings.Repeat("G", 64), ec + "/", "0", "-1", "01",
		"999999999999"} {
		f.Add(uint8(1), seg, "", "", "", "", "", "", "", uint8(fqSign))
		f.Add(uint8(12), seg, "", "", "", "", "", "", "", uint8(fqSign))
	}
	f.Add(uint8(0), "", "", "", "", "", "", "", "", uint8(fqSign|fqKeystore2))

	cfg.Log = nil // the environment's log buffer would grow with every input
	srv := api.New(e.svc, cfg)
	cfg.RejectReplayedSignatures = true
	replays := api.New(e.svc, cfg)
	f.Fuzz(func(t *testing.T, route uint8, seg, query, ts, ak, sig2, sig1, tok, xff string, flags uint8) {
		rt := fqRoutes[int(route)%len(fqRoutes)]
		target := strings.ReplaceAll(strings.ReplaceAll(rt.path, "{ec}", ec), "{seg}", seg)
		if query != "" {
			target += "?" + query
		}
		header := http.Header{}
		for name, v := range map[string]string{
			sigv2.HeaderTimestamp: ts, sigv2.HeaderAccessKey: ak, sigv2.HeaderSignatureV2: sig2,
			sigv2.HeaderSignatureV1: sig1, "x-ncp-ocapi-token": tok, "X-Forwarded-For": xff,
		} {
			if v != "" {
				header.Set(name, v)
			}
		}
		r, ok := fqParse(rt.method, target, header, rt.body)
		if !ok {
			return // net/http would answer 400 before the handler
		}
		r.RemoteAddr = "192.0.2.1:1234"
		if flags&fqUntrusted != 0 {
			r.RemoteAddr = "203.0.113.5:4321"
		}
		if flags&fqSign != 0 {
			cr := e.creds[1]
			if flags&fqKeystore2 != 0 {
				cr = e.creds[2]
			}
			if r.Header.Get(sigv2.HeaderTimestamp) == "" {
				r.Header.Set(sigv2.HeaderTimestamp, strconv.FormatInt(e.clk.Now().UnixMilli(), 10))
			}
			if r.Header.Get(sigv2.HeaderAccessKey) == "" {
				r.Header.Set(sigv2.HeaderAccessKey, cr.AccessKey)
			}
			if r.Header.Get(sigv2.HeaderSignatureV2) == "" && r.Header.Get(sigv2.HeaderSignatureV1) == "" {
				// Signed as the server sees it: the request target as received
				// and the header values after net/http trimmed them.
				r.Header.Set(sigv2.HeaderSignatureV2, sigv2.Sign([]byte(cr.SecretKey), r.Method, r.RequestURI,
					r.Header.Get(sigv2.HeaderTimestamp), r.Header.Get(sigv2.HeaderAccessKey)))
			}
		}
		h := srv
		if flags&fqReplays != 0 {
			h = replays
		}
		w := &fqResponse{header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.code >= http.StatusInternalServerError {
			t.Fatalf("%s %q\nheaders %q\nremote %s: %d %s", r.Method, r.RequestURI, r.Header, r.RemoteAddr, w.code, w.body.Bytes())
		}
	})
}

// fqParse parses a request the way net/http's server reads one off the
// wire, with the given target, headers and body; ok is false when the server
// would refuse it before any handler runs (a target or header value it
// cannot carry).
func fqParse(method, target string, header http.Header, body string) (*http.Request, bool) {
	if !fqValidTarget(target) {
		return nil, false
	}
	var raw strings.Builder
	raw.WriteString(method + " " + target + " HTTP/1.1\r\nHost: kms.example\r\n")
	for name, vs := range header {
		for _, v := range vs {
			if !fqValidHeaderValue(v) {
				return nil, false
			}
			raw.WriteString(name + ": " + v + "\r\n")
		}
	}
	if body != "" {
		raw.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	raw.WriteString("\r\n" + body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
	if err != nil {
		return nil, false
	}
	return r, true
}

// fqValidTarget reports whether target can stand in a request line: no
// spaces or control characters.
func fqValidTarget(target string) bool {
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// fqValidHeaderValue is the check net/http's server applies to every header
// value it receives (httpguts.ValidHeaderFieldValue): no control characters
// but horizontal tab.
func fqValidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// fqMatch finds the fuzzed route of a recorded request: its index, the path
// segment in place of {seg}, and its query.
func fqMatch(method, uri, ec string) (route uint8, seg, query string, ok bool) {
	path, query, _ := strings.Cut(uri, "?")
	for i, rt := range fqRoutes {
		if rt.method != method {
			continue
		}
		prefix, suffix, hasSeg := strings.Cut(strings.ReplaceAll(rt.path, "{ec}", ec), "{seg}")
		if !hasSeg {
			if path == prefix {
				return uint8(i), "", query, true
			}
			continue
		}
		if rest, found := strings.CutPrefix(path, prefix); found {
			if s, found := strings.CutSuffix(rest, suffix); found && !strings.Contains(s, "/") {
				return uint8(i), s, query, true
			}
		}
	}
	return 0, "", "", false
}

// fqResponse is a minimal http.ResponseWriter; httptest.ResponseRecorder
// would do, but this one keeps the fuzz loop's allocations down.
type fqResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *fqResponse) Header() http.Header { return w.header }

func (w *fqResponse) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *fqResponse) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(b)
}

// fqRecorder is an http.RoundTripper that records the requests a real
// client sends, as they go on the wire.
type fqRecorder struct {
	next http.RoundTripper

	mu        sync.Mutex
	recording bool
	reqs      []fqRecorded
}

type fqRecorded struct {
	method, uri string
	header      http.Header
}

func (rec *fqRecorder) start() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.recording = true
}

func (rec *fqRecorder) stop() []fqRecorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.recording = false
	return rec.reqs
}

func (rec *fqRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rec.mu.Lock()
	if rec.recording {
		rec.reqs = append(rec.reqs, fqRecorded{method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone()})
	}
	rec.mu.Unlock()
	return rec.next.RoundTrip(r)
}
