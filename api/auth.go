package api

import (
	"errors"
	"hash"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// headerToken carries a key token (token authentication, ncp-kms-api.md §2.2).
const headerToken = "x-ncp-ocapi-token"

// canonicalToken is headerToken as http.Header keys it, so that looking it up
// makes no canonical copy.
var canonicalToken = http.CanonicalHeaderKey(headerToken)

// errBadCredential is the one answer to a signed request whose access key is
// unknown (or revoked) or whose signature does not match: which of the two,
// it does not say, and both cost the same work (Service.AuthenticateAccessKey
// verifies an unknown access key's signature with a decoy key). Missing or
// malformed headers and a stale timestamp keep their own details: they are
// decided from the request alone, before any access key is looked up.
var errBadCredential = errAuth("access key or signature is not valid")

// authenticate checks the account signature (decisions.md D2) or the key
// token of r for key tag, as the route allows, and returns the caller. ip is
// the client's address (clientIP), ipText its text (addrText) and now the
// wall clock (Config.Now), read once per request by the caller. Messages say what is wrong with the request's form
// without echoing secrets, and never whether an access key exists.
func (s *Server) authenticate(r *http.Request, kind authKind, tag nkms.Tag, ip netip.Addr, ipText string, now time.Time) (nkms.Caller, error) {
	if kind == authNone {
		return nkms.Caller{}, nil
	}
	cred, err := sigv2.FromRequest(r)
	if err != nil { // no signature: a token, if the route takes one
		tok := r.Header.Get(canonicalToken)
		switch {
		case tok != "" && kind == authOrToken:
			return s.svc.AuthenticateToken(r.Context(), tag, tok, nkms.AccessToken, ip)
		case tok != "" && kind == authToken:
			return s.svc.AuthenticateToken(r.Context(), tag, tok, nkms.AccessToken, ip)
		case tok != "" && kind == authRefresh:
			return s.svc.AuthenticateToken(r.Context(), tag, tok, nkms.RefreshToken, ip)
		case kind == authRefresh:
			return nkms.Caller{}, errAuth("this route takes a refresh token in x-ncp-ocapi-token")
		case kind == authToken:
			return nkms.Caller{}, errAuth("this route takes an access token in x-ncp-ocapi-token")
		}
		return nkms.Caller{}, errAuth("missing x-ncp-apigw-timestamp, x-ncp-iam-access-key or signature header")
	}
	if kind == authRefresh {
		return nkms.Caller{}, errAuth("this route takes a refresh token in x-ncp-ocapi-token, not a signature")
	}
	if kind == authToken {
		return nkms.Caller{}, errAuth("this route takes an access token in x-ncp-ocapi-token, not a signature")
	}
	if err := sigv2.CheckTimestamp(cred.Timestamp, now); err != nil {
		if errors.Is(err, sigv2.ErrStale) {
			return nkms.Caller{}, errAuth("timestamp differs from the server clock by 5 minutes or more")
		}
		return nkms.Caller{}, errAuth("timestamp must be Unix milliseconds")
	}
	c, ok, err := s.svc.AuthenticateAccessKey(r.Context(), cred.AccessKey, func(mac hash.Hash) bool {
		return sigv2.VerifyMAC(mac, r.Method, requestURI(r), cred)
	})
	if errors.Is(err, nkms.ErrAccessKeyNotFound) || err == nil && !ok {
		return nkms.Caller{}, errBadCredential
	}
	if err != nil {
		return nkms.Caller{}, err
	}
	if s.replays != nil && !s.replays.firstUse(cred.AccessKey, cred.Signature, cred.Timestamp, now) {
		return nkms.Caller{}, errAuth("this signature was used before; sign every request afresh")
	}
	c.IP = ipText
	return c, nil
}

// clientIP is the TCP peer of r, unless the peer is a trusted proxy: then it
// is the last address of X-Forwarded-For that is not a trusted proxy.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := ap.Addr().Unmap()
	if !s.trusted(ip) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a malformed hop: trust nothing before it
		}
		ip = hop.Unmap()
		if !s.trusted(ip) {
			return ip
		}
	}
	return ip
}

// addrText is ip.String(), for ip from clientIP. When ip is the TCP peer's
// IPv4 address, as it usually is, the text is taken from r.RemoteAddr, which
// holds it already, rather than made anew for every request.
func addrText(r *http.Request, ip netip.Addr) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 && ip.Is4() {
		host := r.RemoteAddr[:i]
		var buf [len("255.255.255.255")]byte
		if string(ip.AppendTo(buf[:0])) == host {
			return host
		}
	}
	return ip.String()
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// requestURI is the request target exactly as received: path plus "?" and the
// raw query when there is one.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" && r.RequestURI[0] == '/' {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}
