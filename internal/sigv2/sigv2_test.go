package sigv2

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Known-answer vectors, computed outside Go (Python's hmac module).
var vectors = []struct {
	name                                   string
	secret, method, uri, timestamp, access string
	want                                   string
}{
	{
		name:   "get with query",
		secret: "secret", method: "GET", uri: "/kms/v1/keys?pageNo=1", timestamp: "1700000000000", access: "AKID",
		want: "waF9+8xeyUewkDC/WG/rCHLKW4FXtUctiJNmnkhaLAk=",
	},
	{
		name:   "post without query",
		secret: "ncp_iam_BPKMKR0987654321secret", method: "POST", uri: "/kms/v1/keys/abc/encrypt",
		timestamp: "1733452211270", access: "ncp_iam_BPAMKR1234567890",
		want: "eBcyf+lNkFBmjdUcF9ZoGtIo0vOSMKh/eTgE2A87aks=",
	},
}

func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			// Independent computation with crypto/hmac directly.
			h := hmac.New(sha256.New, []byte(v.secret))
			h.Write([]byte(v.method + " " + v.uri + "\n" + v.timestamp + "\n" + v.access))
			direct := base64.StdEncoding.EncodeToString(h.Sum(nil))
			if direct != v.want {
				t.Fatalf("direct HMAC = %q, want %q (vector is wrong)", direct, v.want)
			}
			if got := Sign([]byte(v.secret), v.method, v.uri, v.timestamp, v.access); got != v.want {
				t.Errorf("Sign = %q, want %q", got, v.want)
			}
			c := Credentials{AccessKey: v.access, Timestamp: v.timestamp, Signature: v.want}
			if !Verify([]byte(v.secret), v.method, v.uri, c) {
				t.Errorf("Verify(known answer) = false, want true")
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	t.Parallel()
	v := vectors[0]
	good := Credentials{AccessKey: v.access, Timestamp: v.timestamp, Signature: v.want}
	sigBytes, _ := base64.StdEncoding.DecodeString(v.want)
	flipped := append([]byte(nil), sigBytes...)
	flipped[0] ^= 1
	tests := []struct {
		name        string
		secret      string
		method, uri string
		mutate      func(*Credentials)
	}{
		{name: "method", secret: v.secret, method: "POST", uri: v.uri},
		{name: "method case", secret: v.secret, method: "get", uri: v.uri},
		{name: "uri path", secret: v.secret, method: v.method, uri: "/kms/v1/keys/?pageNo=1"},
		{name: "uri query", secret: v.secret, method: v.method, uri: "/kms/v1/keys?pageNo=2"},
		{name: "uri dropped query", secret: v.secret, method: v.method, uri: "/kms/v1/keys"},
		{name: "uri bare question mark", secret: v.secret, method: v.method, uri: "/kms/v1/keys?pageNo=1?"},
		{name: "timestamp", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Timestamp = "1700000000001" }},
		{name: "access key", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.AccessKey = "AKIE" }},
		{name: "secret", secret: "secreT", method: v.method, uri: v.uri},
		{name: "flipped bit", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature = base64.StdEncoding.EncodeToString(flipped) }},
		{name: "unpadded", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature = strings.TrimRight(c.Signature, "=") }},
		{name: "raw url encoding", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature = base64.RawURLEncoding.EncodeToString(sigBytes) }},
		{name: "trailing newline", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature += "\n" }},
		{name: "empty signature", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature = "" }},
		{name: "raw mac bytes", secret: v.secret, method: v.method, uri: v.uri,
			mutate: func(c *Credentials) { c.Signature = string(sigBytes) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			if tc.mutate != nil {
				tc.mutate(&c)
			}
			if Verify([]byte(tc.secret), tc.method, tc.uri, c) {
				t.Errorf("Verify = true, want false")
			}
		})
	}
}

func TestCheckTimestampSkew(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_700_000_000_000)
	ms := func(d time.Duration) string { return itoa(now.Add(d).UnixMilli()) }
	tests := []struct {
		name string
		ts   string
		want error
	}{
		{"now", ms(0), nil},
		{"past 4m59.999s", ms(-(MaxSkew - time.Millisecond)), nil},
		{"future 4m59.999s", ms(MaxSkew - time.Millisecond), nil},
		{"past exactly 5m", ms(-MaxSkew), ErrStale},
		{"future exactly 5m", ms(MaxSkew), ErrStale},
		{"past 1h", ms(-time.Hour), ErrStale},
		{"future 1h", ms(time.Hour), ErrStale},
		{"zero", "0", ErrStale},
		{"leading zeros", "0" + ms(0), nil},
		{"max int64", "9223372036854775807", ErrStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckTimestamp(tc.ts, now); !errors.Is(err, tc.want) {
				t.Errorf("CheckTimestamp(%q) = %v, want %v", tc.ts, err, tc.want)
			}
		})
	}
}

func TestCheckTimestampSubMillisecondClock(t *testing.T) {
	t.Parallel()
	base := time.UnixMilli(1_700_000_000_000)
	ts := itoa(base.UnixMilli())
	if err := CheckTimestamp(ts, base.Add(MaxSkew-time.Microsecond)); err != nil {
		t.Errorf("just under 5m: got %v, want nil", err)
	}
	if err := CheckTimestamp(ts, base.Add(MaxSkew+time.Microsecond)); !errors.Is(err, ErrStale) {
		t.Errorf("just over 5m: got %v, want %v", err, ErrStale)
	}
}

func TestCheckTimestampMalformed(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_700_000_000_000)
	for _, ts := range []string{
		"", "abc", "-1", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "１２３",
		"12345678901234567890", // 20 digits
		"9223372036854775808",  // 19 digits, above MaxInt64
		"1700000000000\n", "1_700_000_000_000", "1700000000000ms",
	} {
		t.Run(ts, func(t *testing.T) {
			t.Parallel()
			if err := CheckTimestamp(ts, now); !errors.Is(err, ErrMalformed) {
				t.Errorf("CheckTimestamp(%q) = %v, want %v", ts, err, ErrMalformed)
			}
		})
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers map[string]string
		want    Credentials
		wantErr error
	}{
		{
			name:    "v2",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "AK", HeaderSignatureV2: "sig2"},
			want:    Credentials{AccessKey: "AK", Timestamp: "1", Signature: "sig2"},
		},
		{
			name:    "v1 fallback",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "AK", HeaderSignatureV1: "sig1"},
			want:    Credentials{AccessKey: "AK", Timestamp: "1", Signature: "sig1"},
		},
		{
			name: "v2 wins over v1",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "AK",
				HeaderSignatureV1: "sig1", HeaderSignatureV2: "sig2"},
			want: Credentials{AccessKey: "AK", Timestamp: "1", Signature: "sig2"},
		},
		{
			name: "empty v2 falls back to v1",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "AK",
				HeaderSignatureV1: "sig1", HeaderSignatureV2: ""},
			want: Credentials{AccessKey: "AK", Timestamp: "1", Signature: "sig1"},
		},
		{
			name:    "no timestamp",
			headers: map[string]string{HeaderAccessKey: "AK", HeaderSignatureV2: "sig"},
			wantErr: ErrMissing,
		},
		{
			name:    "no access key",
			headers: map[string]string{HeaderTimestamp: "1", HeaderSignatureV2: "sig"},
			wantErr: ErrMissing,
		},
		{
			name:    "no signature",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "AK"},
			wantErr: ErrMissing,
		},
		{
			name:    "empty access key",
			headers: map[string]string{HeaderTimestamp: "1", HeaderAccessKey: "", HeaderSignatureV2: "sig"},
			wantErr: ErrMissing,
		},
		{name: "nothing", headers: nil, wantErr: ErrMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/kms/v1/keys", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			got, err := FromRequest(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("FromRequest error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("FromRequest = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSignRequestRoundTrip signs outgoing requests and verifies them as the
// server will: over r.Method and the raw r.RequestURI as received.
func TestSignRequestRoundTrip(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	now := time.UnixMilli(1_700_000_000_123)
	type seen struct {
		uri string
		ok  bool
		err error
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := FromRequest(r)
		if err == nil {
			err = CheckTimestamp(c.Timestamp, now)
		}
		got <- seen{uri: r.RequestURI, ok: err == nil && Verify(secret, r.Method, r.RequestURI, c), err: err}
	}))
	defer srv.Close()

	tests := []struct {
		method, url, wantURI string
		forceQuery           bool
	}{
		{method: "GET", url: "/kms/v1/keys?pageNo=1&pageSize=20", wantURI: "/kms/v1/keys?pageNo=1&pageSize=20"},
		{method: "POST", url: "/kms/v1/keys/ab%2Fcd/encrypt", wantURI: "/kms/v1/keys/ab%2Fcd/encrypt"},
		{method: "DELETE", url: "/kms/v1/keys/x", wantURI: "/kms/v1/keys/x"},
		{method: "GET", url: "", wantURI: "/"},
		{method: "GET", url: "/q?a=%20b&a=c", wantURI: "/q?a=%20b&a=c"},
		{method: "GET", url: "/bare", wantURI: "/bare", forceQuery: true},
		{method: "", url: "/empty-method", wantURI: "/empty-method"},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, srv.URL+tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.ForceQuery = tc.forceQuery
		SignRequest(req, "AKID", secret, now)
		if got := req.Header.Get(HeaderTimestamp); got != "1700000000123" {
			t.Errorf("%s %s: timestamp header = %q, want %q", tc.method, tc.url, got, "1700000000123")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		s := <-got
		if s.uri != tc.wantURI || !s.ok {
			t.Errorf("%s %q: server saw %q verified=%v (%v), want %q verified=true",
				tc.method, tc.url, s.uri, s.ok, s.err, tc.wantURI)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
