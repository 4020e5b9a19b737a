package api

import "github.com/nkms/nkms"

// authKind is how a route authenticates its caller.
type authKind int

const (
	authNone    authKind = iota // GET /healthz
	authAccount                 // signature v2 only
	authOrToken                 // signature v2, or an access token (token auth follows in a later release)
)

// Body limits.
const (
	smallBody  = 16 << 10  // management routes
	cryptoBody = 256 << 10 // crypto routes: 32 KiB plaintext in Base64 and JSON, arrays included
)

// route is one line of the API: method and path pattern, how it
// authenticates, the permission its caller's role needs, its body limit and
// its handler.
type route struct {
	method, path string
	auth         authKind
	perm         nkms.Permission // what the caller's role must allow
	limit        int64
	handle       handlerFunc
	v1           bool // API 1.0 route: the success body also carries "msg": ""
}

// routes is the whole API on one screen (ncp-kms-api.md §5, decisions.md D1).
func (s *Server) routes() []route {
	rs := []route{
		{"GET", "/healthz", authNone, "", 0, nil, false},

		{"POST", "/kms/v1/keys", authAccount, nkms.PermManage, smallBody, s.createKey, false},
		{"GET", "/kms/v1/keys", authAccount, nkms.PermRead, smallBody, s.listKeys, false},
		{"GET", "/kms/v1/keys/{keyTag}", authAccount, nkms.PermRead, smallBody, s.keyInfo, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.EnableKey), false},
		{"POST", "/kms/v1/keys/{keyTag}/disable", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.DisableKey), false},
		{"PUT", "/kms/v1/keys/{keyTag}/name", authAccount, nkms.PermManage, smallBody, s.updateName, false},
		{"PUT", "/kms/v1/keys/{keyTag}/memo", authAccount, nkms.PermManage, smallBody, s.updateMemo, false},
		{"POST", "/kms/v1/keys/{keyTag}/rotate", authAccount, nkms.PermManage, smallBody, s.rotate, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable-auto-rotation", authAccount, nkms.PermManage, smallBody, s.enableAutoRotation, false},
		{"POST", "/kms/v1/keys/{keyTag}/disable-auto-rotation", authAccount, nkms.PermManage, smallBody, s.disableAutoRotation, false},
		{"PUT", "/kms/v1/keys/{keyTag}/rotation-period", authAccount, nkms.PermManage, smallBody, s.rotationPeriod, false},
		{"GET", "/kms/v1/keys/{keyTag}/versions", authAccount, nkms.PermRead, smallBody, s.versions, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/enable", authAccount, nkms.PermManage, smallBody, s.enableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/disable", authAccount, nkms.PermManage, smallBody, s.disableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/request-deletion", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.RequestDeletion), false},
		{"POST", "/kms/v1/keys/{keyTag}/cancel-deletion", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.CancelDeletion), false},
		{"DELETE", "/kms/v1/keys/{keyTag}", authAccount, nkms.PermManage, smallBody, s.deleteKey, false},

		{"POST", "/kms/v1/keys/{keyTag}/get-pub-key", authOrToken, nkms.PermCrypto, smallBody, s.publicKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/encrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.encrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/decrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.decrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/create-custom-key", authOrToken, nkms.PermCrypto, smallBody, s.customKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/re-encrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.reEncrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/sign", authOrToken, nkms.PermCrypto, cryptoBody, s.sign, false},
		{"POST", "/kms/v1/keys/{keyTag}/verify", authOrToken, nkms.PermCrypto, cryptoBody, s.verify, false},

		{"POST", "/nkms/v1/access-keys", authAccount, nkms.PermAdmin, smallBody, s.createAccessKey, false},
		{"GET", "/nkms/v1/access-keys", authAccount, nkms.PermAdmin, smallBody, s.listAccessKeys, false},
		{"DELETE", "/nkms/v1/access-keys/{accessKey}", authAccount, nkms.PermAdmin, smallBody, s.revokeAccessKey, false},
	}
	// API 1.0 crypto routes: the same operations under /keys/v1 and /keys/v2.
	v1 := []struct {
		action string
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
			rs = append(rs, route{"POST", prefix + "{keyTag}/" + a.action, authAccount, nkms.PermCrypto, a.limit, a.handle, true})
		}
	}
	return rs
}
