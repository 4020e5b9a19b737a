package api

import (
	"net/http"
	"net/netip"
	"testing"
)

// addrText must be ip.String() whatever the peer's address looks like: the
// usage log, the audit line and the failure limit's buckets read it.
func TestAddrTextIsString(t *testing.T) {
	s := New(nil, Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, tc := range []struct{ remote, xff string }{
		{"192.0.2.1:1234", ""},
		{"127.0.0.1:80", ""},
		{"[::1]:443", ""},
		{"[::ffff:192.0.2.7]:99", ""},
		{"[fe80::1%eth0]:5", ""},
		{"[2001:db8::1]:5", ""},
		{"10.1.2.3:7", "198.51.100.4"},
		{"10.1.2.3:7", "2001:db8::2"},
		{"10.1.2.3:7", "::ffff:198.51.100.9"},
		{"not an address", ""},
		{"", ""},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		ip := s.clientIP(r)
		if got, want := addrText(r, ip), ip.String(); got != want {
			t.Errorf("addrText(%q, %q) = %q, want %q", tc.remote, tc.xff, got, want)
		}
	}
}

func TestAddrTextAllocations(t *testing.T) {
	r := &http.Request{RemoteAddr: "192.0.2.1:1234"}
	ip := netip.MustParseAddr("192.0.2.1")
	if n := testing.AllocsPerRun(100, func() { addrText(r, ip) }); n != 0 {
		t.Errorf("addrText of a TCP peer's IPv4 address allocates %v times, want 0", n)
	}
}
