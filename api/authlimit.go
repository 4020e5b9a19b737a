package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nkms/nkms"
)

// Defaults of the limit on failed authentications per client address
// (Config.AuthFailuresPerSecond): generous enough that no working client
// meets it (a client whose every request fails is refused after 100 tries,
// then may try 10 times a second), tight enough that guessing secrets,
// access keys or tokens from one address is slow.
const (
	DefaultAuthFailuresPerSecond = 10
	DefaultAuthFailureBurst      = 100
)

// errAuthFailuresLimited answers an address that spent its budget of failed
// authentications; its request is not authenticated at all.
var errAuthFailuresLimited = errRateLimited("too many failed authentications from this address; retry later")

// authFailureLimit counts failed authentications per client address.
type authFailureLimit struct {
	buckets  *limiter // nil: no limit
	failures atomic.Uint64
}

// newAuthFailureLimit returns the limit cfg asks for and publishes its
// counters on cfg.Metrics.
func newAuthFailureLimit(cfg Config) *authFailureLimit {
	l := &authFailureLimit{}
	if rate := cfg.AuthFailuresPerSecond; rate > 0 {
		burst := cfg.AuthFailureBurst
		if burst <= 0 {
			burst = int(min(10*rate, 1<<30)) // ten seconds' worth
		}
		l.buckets = newBurstLimiter(rate, burst)
	}
	if m := cfg.Metrics; m != nil {
		m.CounterFunc("nkms_auth_failures_total",
			"Requests refused with 401 errorCode 200: missing or malformed credentials, unknown access key, wrong signature, bad token.",
			nil, func() float64 { return float64(l.failures.Load()) })
		m.CounterFunc("nkms_auth_failure_limited_requests_total",
			"Requests refused with 429 before authentication because their client address had too many failed authentications (--auth-failure-rate).",
			nil, func() float64 { return float64(l.buckets.Refused()) })
	}
	return l
}

// authenticateLimited is authenticate behind the failure budget of the
// client's address (clientIP: trusted proxies apply). An address whose
// budget is spent answers 429 with Retry-After at once, before any signature,
// token or store work, whether or not its request is signed correctly; a
// failed authentication (401, errorCode 200) spends one token; a successful
// one spends nothing.
func (s *Server) authenticateLimited(w http.ResponseWriter, r *http.Request, kind authKind, tag nkms.Tag) (nkms.Caller, error) {
	if kind == authNone {
		return nkms.Caller{}, nil
	}
	l := s.authFailures
	ip, now := s.clientIP(r), s.now()
	ipText := addrText(r, ip)
	var addr string
	if l.buckets != nil {
		addr = failureBucket(ip, ipText)
		if wait, ok := l.buckets.peek(addr, now); !ok {
			w.Header().Set("Retry-After", retryAfter(wait))
			return nkms.Caller{}, errAuthFailuresLimited
		}
	}
	c, err := s.authenticate(r, kind, tag, ip, ipText, now)
	if err != nil && authFailed(err) {
		l.failures.Add(1)
		l.buckets.charge(addr, now)
	}
	return c, err
}

// authFailed reports whether err, from authenticate, is a failed
// authentication (401, errorCode 200), without failureCode's allocation:
// authenticate's own refusals are *gatewayError, the Service's are nkms
// errors.
func authFailed(err error) bool {
	if gw, ok := err.(*gatewayError); ok {
		return gw.errorCode == "200"
	}
	return nkms.ErrorCode(err) == nkms.Unauthenticated
}

// failureBucket is the bucket of a client address: the address itself for
// IPv4, its /64 for IPv6 (one host usually holds a whole /64, so a bucket per
// address would give it 2^64 budgets). An address that cannot be told (a
// listener without IP addresses) shares the bucket "". ipText is
// ip.String() (addrText).
func failureBucket(ip netip.Addr, ipText string) string {
	switch {
	case !ip.IsValid():
		return ""
	case ip.Is4():
		return ipText
	}
	p, err := ip.WithZone("").Prefix(64)
	if err != nil {
		return ip.String()
	}
	return p.String()
}

// retryAfter is the Retry-After value for a wait: whole seconds, at least 1.
func retryAfter(wait time.Duration) string {
	secs := int64((wait + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(1, secs), 10)
}
