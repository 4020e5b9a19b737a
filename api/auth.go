package api

import (
	"errors"
	"net/http"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// headerToken carries a key token (token authentication, ncp-kms-api.md §2.2).
const headerToken = "x-ncp-ocapi-token"

// authenticate checks the account signature of r (decisions.md D2) and
// returns the caller. Messages say what is wrong without echoing secrets.
func (s *Server) authenticate(r *http.Request, kind authKind) (nkms.Caller, error) {
	if kind == authNone {
		return nkms.Caller{}, nil
	}
	cred, err := sigv2.FromRequest(r)
	if err != nil {
		if kind == authOrToken && r.Header.Get(headerToken) != "" {
			return nkms.Caller{}, errAuth("token authentication is not enabled on this server")
		}
		return nkms.Caller{}, errAuth("missing x-ncp-apigw-timestamp, x-ncp-iam-access-key or signature header")
	}
	if err := sigv2.CheckTimestamp(cred.Timestamp, s.svc.Now()); err != nil {
		if errors.Is(err, sigv2.ErrStale) {
			return nkms.Caller{}, errAuth("timestamp differs from the server clock by 5 minutes or more")
		}
		return nkms.Caller{}, errAuth("timestamp must be Unix milliseconds")
	}
	c, secret, err := s.svc.AccessKeySecret(r.Context(), cred.AccessKey)
	if errors.Is(err, nkms.ErrAccessKeyNotFound) {
		return nkms.Caller{}, errAuth("unknown access key")
	}
	if err != nil {
		return nkms.Caller{}, err
	}
	ok := sigv2.Verify(secret, r.Method, requestURI(r), cred)
	clear(secret)
	if !ok {
		return nkms.Caller{}, errAuth("signature does not match")
	}
	return c, nil
}

// requestURI is the request target exactly as received: path plus "?" and the
// raw query when there is one.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" && r.RequestURI[0] == '/' {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}
