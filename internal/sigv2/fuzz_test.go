package sigv2

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func FuzzCheckTimestamp(f *testing.F) {
	for _, s := range []string{"", "0", "1700000000000", "-1", "+1", " 1", "1.5", "0x10",
		"9223372036854775807", "9223372036854775808", "12345678901234567890"} {
		f.Add(s, int64(1_700_000_000_000))
	}
	f.Add("1700000000000", int64(-1<<63))
	f.Fuzz(func(t *testing.T, ts string, nowMs int64) {
		err := CheckTimestamp(ts, time.UnixMilli(nowMs))
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrStale) {
			t.Fatalf("CheckTimestamp(%q) = %v: neither malformed nor stale", ts, err)
		}
		if errors.Is(err, ErrMalformed) {
			return
		}
		// Accepted syntax: 1-19 ASCII digits only.
		if len(ts) == 0 || len(ts) > 19 {
			t.Fatalf("CheckTimestamp(%q) accepted the syntax of a %d-character timestamp", ts, len(ts))
		}
		for _, c := range []byte(ts) {
			if c < '0' || c > '9' {
				t.Fatalf("CheckTimestamp(%q) accepted a non-digit", ts)
			}
		}
	})
}

func FuzzFromRequest(f *testing.F) {
	f.Add("1700000000000", "AKID", "sig", "", true)
	f.Add("", "", "", "sig1", false)
	f.Add("1", "\x00", "", "\xff", true)
	f.Fuzz(func(t *testing.T, ts, ak, sig2, sig1 string, withV2 bool) {
		r := &http.Request{Method: "GET", Header: http.Header{}}
		// Set the map directly: a server may receive values that Header.Set would refuse to send.
		r.Header[http.CanonicalHeaderKey(HeaderTimestamp)] = []string{ts}
		r.Header[http.CanonicalHeaderKey(HeaderAccessKey)] = []string{ak}
		if withV2 {
			r.Header[http.CanonicalHeaderKey(HeaderSignatureV2)] = []string{sig2}
		}
		r.Header[http.CanonicalHeaderKey(HeaderSignatureV1)] = []string{sig1}
		c, err := FromRequest(r)
		if err != nil {
			if !errors.Is(err, ErrMissing) {
				t.Fatalf("FromRequest error %v does not wrap ErrMissing", err)
			}
			return
		}
		if c.Timestamp == "" || c.AccessKey == "" || c.Signature == "" {
			t.Fatalf("FromRequest = %+v with an empty field and no error", c)
		}
		want := sig1
		if withV2 && sig2 != "" {
			want = sig2
		}
		if c.Signature != want {
			t.Fatalf("Signature = %q, want %q", c.Signature, want)
		}
		_ = CheckTimestamp(c.Timestamp, time.UnixMilli(1_700_000_000_000))
		_ = Verify([]byte("k"), r.Method, "/", c)
	})
}
