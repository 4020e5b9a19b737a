package api

// authKind is how a route authenticates its caller.
type authKind int

const (
	authNone    authKind = iota // GET /healthz
	authAccount                 // signature v2 only
	authOrToken                 // signature v2, or an access token in x-ncp-ocapi-token
	authRefresh                 // a refresh token in x-ncp-ocapi-token only
	authToken                   // an access token in x-ncp-ocapi-token only (API 3.0 token routes)
)

// Body limits.
const (
	smallBody  = 16 << 10  // management routes
	cryptoBody = 256 << 10 // crypto routes: 32 KiB plaintext in Base64 and JSON, arrays included
)

// route is one line of the API: method and path pattern, how it
// authenticates, its body limit and its handler. What the caller's role may
// do is the Service's to decide (role.go), and so is the usage log.
type route struct {
	method, path string
	auth         authKind
	limit        int64
	handle       handlerFunc
	kind         routeKind
}

// routeKind is what sets a route's answer apart.
type routeKind int

const (
	plain       routeKind = iota
	v1Body                // API 1.0 route: the success body also carries "msg": ""
	streamed              // a streamed answer (backup): Config.RequestTimeout does not apply
	v3OK                  // API 3.0 route: the bare resource with 200, errors as in v3.go
	v3Created             // API 3.0 route answering 201
	v3NoContent           // API 3.0 route answering 204 with no body
)

// v3 reports whether a route of kind k speaks API 3.0.
func (k routeKind) v3() bool { return k >= v3OK }

// routes is the whole API on one screen (ncp-kms-api.md §5, decisions.md D1).
func (s *Server) routes() []route {
	rs := []route{
		{"GET", "/healthz", authNone, 0, nil, plain},

		{"POST", "/kms/v1/keys", authAccount, smallBody, s.createKey, plain},
		{"GET", "/kms/v1/keys", authAccount, smallBody, s.listKeys, plain},
		{"GET", "/kms/v1/keys/{keyTag}", authAccount, smallBody, s.keyInfo, plain},
		{"POST", "/kms/v1/keys/{keyTag}/enable", authAccount, smallBody, s.statusChange(s.svc.EnableKey), plain},
		{"POST", "/kms/v1/keys/{keyTag}/disable", authAccount, smallBody, s.statusChange(s.svc.DisableKey), plain},
		{"PUT", "/kms/v1/keys/{keyTag}/name", authAccount, smallBody, s.updateName, plain},
		{"PUT", "/kms/v1/keys/{keyTag}/memo", authAccount, smallBody, s.updateMemo, plain},
		{"POST", "/kms/v1/keys/{keyTag}/rotate", authAccount, smallBody, s.rotate, plain},
		{"POST", "/kms/v1/keys/{keyTag}/enable-auto-rotation", authAccount, smallBody, s.enableAutoRotation, plain},
		{"POST", "/kms/v1/keys/{keyTag}/disable-auto-rotation", authAccount, smallBody, s.disableAutoRotation, plain},
		{"PUT", "/kms/v1/keys/{keyTag}/rotation-period", authAccount, smallBody, s.rotationPeriod, plain},
		{"GET", "/kms/v1/keys/{keyTag}/versions", authAccount, smallBody, s.versions, plain},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/enable", authAccount, smallBody, s.enableVersion, plain},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/disable", authAccount, smallBody, s.disableVersion, plain},
		{"POST", "/kms/v1/keys/{keyTag}/request-deletion", authAccount, smallBody, s.statusChange(s.svc.RequestDeletion), plain},
		{"POST", "/kms/v1/keys/{keyTag}/cancel-deletion", authAccount, smallBody, s.statusChange(s.svc.CancelDeletion), plain},
		{"DELETE", "/kms/v1/keys/{keyTag}", authAccount, smallBody, s.deleteKey, plain},

		{"POST", "/kms/v1/keys/{keyTag}/get-pub-key", authOrToken, smallBody, s.publicKey, plain},
		{"POST", "/kms/v1/keys/{keyTag}/encrypt", authOrToken, cryptoBody, s.encrypt, plain},
		{"POST", "/kms/v1/keys/{keyTag}/decrypt", authOrToken, cryptoBody, s.decrypt, plain},
		{"POST", "/kms/v1/keys/{keyTag}/create-custom-key", authOrToken, smallBody, s.customKey, plain},
		{"POST", "/kms/v1/keys/{keyTag}/re-encrypt", authOrToken, cryptoBody, s.reEncrypt, plain},
		{"POST", "/kms/v1/keys/{keyTag}/sign", authOrToken, cryptoBody, s.sign, plain},
		{"POST", "/kms/v1/keys/{keyTag}/verify", authOrToken, cryptoBody, s.verify, plain},

		{"POST", "/kms/v1/keys/{keyTag}/acl/enable", authAccount, smallBody, s.setACL(true), plain},
		{"POST", "/kms/v1/keys/{keyTag}/acl/disable", authAccount, smallBody, s.setACL(false), plain},
		{"GET", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.listACL, plain},
		{"POST", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.changeACL(s.svc.AddACL), plain},
		{"DELETE", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.changeACL(s.svc.DeleteACL), plain},
		{"POST", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.CreateTokenGenerator), plain},
		{"GET", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.getTokenGenerator, plain},
		{"PUT", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.ReplaceTokenGenerator), plain},
		{"DELETE", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.DeleteTokenGenerator), plain},
		{"POST", "/kms/v1/keys/{keyTag}/token-set", authAccount, smallBody, s.tokenSet, plain},
		{"PUT", "/kms/v1/keys/{keyTag}/token-set", authRefresh, smallBody, s.tokenSet, plain},
		{"POST", "/kms/v1/keys/{keyTag}/access-token", authRefresh, smallBody, s.accessToken, plain},

		{"GET", "/kms/v1/keys/{keyTag}/activities", authAccount, smallBody, s.activities, plain},
		{"GET", "/kms/v1/keys/{keyTag}/last-use-info", authAccount, smallBody, s.lastUse, plain},

		{"POST", "/nkms/v1/access-keys", authAccount, smallBody, s.createAccessKey, plain},
		{"GET", "/nkms/v1/access-keys", authAccount, smallBody, s.listAccessKeys, plain},
		{"DELETE", "/nkms/v1/access-keys/{accessKey}", authAccount, smallBody, s.revokeAccessKey, plain},
		{"GET", "/nkms/v1/backup", authAccount, smallBody, s.backup, streamed},
		{"GET", "/nkms/v1/seed", authAccount, smallBody, s.exportSeed, plain},
	}
	if s.svc != nil && s.svc.DevClock != nil { // nkms server --dev-clock (devclock.go)
		rs = append(rs, s.devClockRoutes()...)
	}
	// API 1.0 crypto routes: the same operations under /keys/v1 and /keys/v2.
	v1 := []struct {
		path   string
		limit  int64
		handle handlerFunc
	}{
		{"encrypt", cryptoBody, s.encrypt},
		{"decrypt", cryptoBody, s.decrypt},
		{"createCustomKey", smallBody, s.customKey},
		{"reencrypt", cryptoBody, s.reEncrypt},
		{"sign", cryptoBody, s.sign},
		{"verify", cryptoBody, s.verify},
	}
	for _, prefix := range []string{"/keys/v1/", "/keys/v2/"} {
		for _, a := range v1 {
			rs = append(rs, route{"POST", prefix + "{keyTag}/" + a.path, authAccount, a.limit, a.handle, v1Body})
		}
	}
	return append(rs, s.routesV3()...)
}
