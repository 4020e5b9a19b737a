package api

// authKind is how a route authenticates its caller.
type authKind int

const (
	authNone    authKind = iota // GET /healthz
	authAccount                 // signature v2 only
	authOrToken                 // signature v2, or an access token in x-ncp-ocapi-token
	authRefresh                 // a refresh token in x-ncp-ocapi-token only
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
	v1           bool // API 1.0 route: the success body also carries "msg": ""
}

// routes is the whole API on one screen (ncp-kms-api.md §5, decisions.md D1).
func (s *Server) routes() []route {
	rs := []route{
		{"GET", "/healthz", authNone, 0, nil, false},

		{"POST", "/kms/v1/keys", authAccount, smallBody, s.createKey, false},
		{"GET", "/kms/v1/keys", authAccount, smallBody, s.listKeys, false},
		{"GET", "/kms/v1/keys/{keyTag}", authAccount, smallBody, s.keyInfo, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable", authAccount, smallBody, s.statusChange(s.svc.EnableKey), false},
		{"POST", "/kms/v1/keys/{keyTag}/disable", authAccount, smallBody, s.statusChange(s.svc.DisableKey), false},
		{"PUT", "/kms/v1/keys/{keyTag}/name", authAccount, smallBody, s.updateName, false},
		{"PUT", "/kms/v1/keys/{keyTag}/memo", authAccount, smallBody, s.updateMemo, false},
		{"POST", "/kms/v1/keys/{keyTag}/rotate", authAccount, smallBody, s.rotate, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable-auto-rotation", authAccount, smallBody, s.enableAutoRotation, false},
		{"POST", "/kms/v1/keys/{keyTag}/disable-auto-rotation", authAccount, smallBody, s.disableAutoRotation, false},
		{"PUT", "/kms/v1/keys/{keyTag}/rotation-period", authAccount, smallBody, s.rotationPeriod, false},
		{"GET", "/kms/v1/keys/{keyTag}/versions", authAccount, smallBody, s.versions, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/enable", authAccount, smallBody, s.enableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/disable", authAccount, smallBody, s.disableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/request-deletion", authAccount, smallBody, s.statusChange(s.svc.RequestDeletion), false},
		{"POST", "/kms/v1/keys/{keyTag}/cancel-deletion", authAccount, smallBody, s.statusChange(s.svc.CancelDeletion), false},
		{"DELETE", "/kms/v1/keys/{keyTag}", authAccount, smallBody, s.deleteKey, false},

		{"POST", "/kms/v1/keys/{keyTag}/get-pub-key", authOrToken, smallBody, s.publicKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/encrypt", authOrToken, cryptoBody, s.encrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/decrypt", authOrToken, cryptoBody, s.decrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/create-custom-key", authOrToken, smallBody, s.customKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/re-encrypt", authOrToken, cryptoBody, s.reEncrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/sign", authOrToken, cryptoBody, s.sign, false},
		{"POST", "/kms/v1/keys/{keyTag}/verify", authOrToken, cryptoBody, s.verify, false},

		{"POST", "/kms/v1/keys/{keyTag}/acl/enable", authAccount, smallBody, s.setACL(true), false},
		{"POST", "/kms/v1/keys/{keyTag}/acl/disable", authAccount, smallBody, s.setACL(false), false},
		{"GET", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.listACL, false},
		{"POST", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.changeACL(s.svc.AddACL), false},
		{"DELETE", "/kms/v1/keys/{keyTag}/acl", authAccount, smallBody, s.changeACL(s.svc.DeleteACL), false},
		{"POST", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.CreateTokenGenerator), false},
		{"GET", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.getTokenGenerator, false},
		{"PUT", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.ReplaceTokenGenerator), false},
		{"DELETE", "/kms/v1/keys/{keyTag}/token-generator", authAccount, smallBody, s.tokenGenerator(s.svc.DeleteTokenGenerator), false},
		{"POST", "/kms/v1/keys/{keyTag}/token-set", authAccount, smallBody, s.tokenSet, false},
		{"PUT", "/kms/v1/keys/{keyTag}/token-set", authRefresh, smallBody, s.tokenSet, false},
		{"POST", "/kms/v1/keys/{keyTag}/access-token", authRefresh, smallBody, s.accessToken, false},

		{"GET", "/kms/v1/keys/{keyTag}/activities", authAccount, smallBody, s.activities, false},
		{"GET", "/kms/v1/keys/{keyTag}/last-use-info", authAccount, smallBody, s.lastUse, false},

		{"POST", "/nkms/v1/access-keys", authAccount, smallBody, s.createAccessKey, false},
		{"GET", "/nkms/v1/access-keys", authAccount, smallBody, s.listAccessKeys, false},
		{"DELETE", "/nkms/v1/access-keys/{accessKey}", authAccount, smallBody, s.revokeAccessKey, false},
		{"GET", "/nkms/v1/backup", authAccount, smallBody, s.backup, false},
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
			rs = append(rs, route{"POST", prefix + "{keyTag}/" + a.path, authAccount, a.limit, a.handle, true})
		}
	}
	return rs
}
