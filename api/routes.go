package api

import "github.com/nkms/nkms"

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

// route is one line of the API: method and path pattern, its usage-log
// action, how it authenticates, the permission its caller's role needs, its
// body limit and its handler.
type route struct {
	method, path string
	action       string // the usage-log name of the operation; "" for routes not logged
	auth         authKind
	perm         nkms.Permission // what the caller's role must allow
	limit        int64
	handle       handlerFunc
	v1           bool // API 1.0 route: the success body also carries "msg": ""
}

// routes is the whole API on one screen (ncp-kms-api.md §5, decisions.md D1).
func (s *Server) routes() []route {
	rs := []route{
		{"GET", "/healthz", "", authNone, "", 0, nil, false},

		{"POST", "/kms/v1/keys", "CreateKey", authAccount, nkms.PermManage, smallBody, s.createKey, false},
		{"GET", "/kms/v1/keys", "", authAccount, nkms.PermRead, smallBody, s.listKeys, false},
		{"GET", "/kms/v1/keys/{keyTag}", "", authAccount, nkms.PermRead, smallBody, s.keyInfo, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable", "EnableKey", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.EnableKey), false},
		{"POST", "/kms/v1/keys/{keyTag}/disable", "DisableKey", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.DisableKey), false},
		{"PUT", "/kms/v1/keys/{keyTag}/name", "UpdateKeyName", authAccount, nkms.PermManage, smallBody, s.updateName, false},
		{"PUT", "/kms/v1/keys/{keyTag}/memo", "UpdateMemo", authAccount, nkms.PermManage, smallBody, s.updateMemo, false},
		{"POST", "/kms/v1/keys/{keyTag}/rotate", "RotateKey", authAccount, nkms.PermManage, smallBody, s.rotate, false},
		{"POST", "/kms/v1/keys/{keyTag}/enable-auto-rotation", "EnableAutoRotation", authAccount, nkms.PermManage, smallBody, s.enableAutoRotation, false},
		{"POST", "/kms/v1/keys/{keyTag}/disable-auto-rotation", "DisableAutoRotation", authAccount, nkms.PermManage, smallBody, s.disableAutoRotation, false},
		{"PUT", "/kms/v1/keys/{keyTag}/rotation-period", "UpdateRotationPeriod", authAccount, nkms.PermManage, smallBody, s.rotationPeriod, false},
		{"GET", "/kms/v1/keys/{keyTag}/versions", "", authAccount, nkms.PermRead, smallBody, s.versions, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/enable", "EnableKeyVersion", authAccount, nkms.PermManage, smallBody, s.enableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/versions/{version}/disable", "DisableKeyVersion", authAccount, nkms.PermManage, smallBody, s.disableVersion, false},
		{"POST", "/kms/v1/keys/{keyTag}/request-deletion", "RequestKeyDeletion", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.RequestDeletion), false},
		{"POST", "/kms/v1/keys/{keyTag}/cancel-deletion", "CancelKeyDeletion", authAccount, nkms.PermManage, smallBody, s.statusChange(s.svc.CancelDeletion), false},
		{"DELETE", "/kms/v1/keys/{keyTag}", "DeleteKey", authAccount, nkms.PermManage, smallBody, s.deleteKey, false},

		{"POST", "/kms/v1/keys/{keyTag}/get-pub-key", "GetPublicKey", authOrToken, nkms.PermCrypto, smallBody, s.publicKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/encrypt", "Encrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.encrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/decrypt", "Decrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.decrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/create-custom-key", "CreateCustomKey", authOrToken, nkms.PermCrypto, smallBody, s.customKey, false},
		{"POST", "/kms/v1/keys/{keyTag}/re-encrypt", "ReEncrypt", authOrToken, nkms.PermCrypto, cryptoBody, s.reEncrypt, false},
		{"POST", "/kms/v1/keys/{keyTag}/sign", "Sign", authOrToken, nkms.PermCrypto, cryptoBody, s.sign, false},
		{"POST", "/kms/v1/keys/{keyTag}/verify", "Verify", authOrToken, nkms.PermCrypto, cryptoBody, s.verify, false},

		{"POST", "/kms/v1/keys/{keyTag}/acl/enable", "EnableIpAcl", authAccount, nkms.PermManage, smallBody, s.setACL(true), false},
		{"POST", "/kms/v1/keys/{keyTag}/acl/disable", "DisableIpAcl", authAccount, nkms.PermManage, smallBody, s.setACL(false), false},
		{"GET", "/kms/v1/keys/{keyTag}/acl", "", authAccount, nkms.PermRead, smallBody, s.listACL, false},
		{"POST", "/kms/v1/keys/{keyTag}/acl", "AddAclRule", authAccount, nkms.PermManage, smallBody, s.changeACL(s.svc.AddACL), false},
		{"DELETE", "/kms/v1/keys/{keyTag}/acl", "DeleteAclRule", authAccount, nkms.PermManage, smallBody, s.changeACL(s.svc.DeleteACL), false},
		{"POST", "/kms/v1/keys/{keyTag}/token-generator", "CreateTokenGenerator", authAccount, nkms.PermManage, smallBody, s.tokenGenerator(s.svc.CreateTokenGenerator), false},
		{"GET", "/kms/v1/keys/{keyTag}/token-generator", "", authAccount, nkms.PermRead, smallBody, s.getTokenGenerator, false},
		{"PUT", "/kms/v1/keys/{keyTag}/token-generator", "UpdateTokenGenerator", authAccount, nkms.PermManage, smallBody, s.tokenGenerator(s.svc.ReplaceTokenGenerator), false},
		{"DELETE", "/kms/v1/keys/{keyTag}/token-generator", "DeleteTokenGenerator", authAccount, nkms.PermManage, smallBody, s.tokenGenerator(s.svc.DeleteTokenGenerator), false},
		{"POST", "/kms/v1/keys/{keyTag}/token-set", "CreateTokenSet", authAccount, nkms.PermCrypto, smallBody, s.tokenSet, false},
		{"PUT", "/kms/v1/keys/{keyTag}/token-set", "RenewTokenSet", authRefresh, nkms.PermCrypto, smallBody, s.tokenSet, false},
		{"POST", "/kms/v1/keys/{keyTag}/access-token", "CreateAccessToken", authRefresh, nkms.PermCrypto, smallBody, s.accessToken, false},

		{"GET", "/kms/v1/keys/{keyTag}/activities", "", authAccount, nkms.PermRead, smallBody, s.activities, false},
		{"GET", "/kms/v1/keys/{keyTag}/last-use-info", "", authAccount, nkms.PermRead, smallBody, s.lastUse, false},

		{"POST", "/nkms/v1/access-keys", "", authAccount, nkms.PermAdmin, smallBody, s.createAccessKey, false},
		{"GET", "/nkms/v1/access-keys", "", authAccount, nkms.PermAdmin, smallBody, s.listAccessKeys, false},
		{"DELETE", "/nkms/v1/access-keys/{accessKey}", "", authAccount, nkms.PermAdmin, smallBody, s.revokeAccessKey, false},
		{"GET", "/nkms/v1/backup", "", authAccount, nkms.PermAdmin, smallBody, s.backup, false},
	}
	// API 1.0 crypto routes: the same operations under /keys/v1 and /keys/v2.
	v1 := []struct {
		path, action string
		limit        int64
		handle       handlerFunc
	}{
		{"encrypt", "Encrypt", cryptoBody, s.encrypt},
		{"decrypt", "Decrypt", cryptoBody, s.decrypt},
		{"createCustomKey", "CreateCustomKey", smallBody, s.customKey},
		{"reencrypt", "ReEncrypt", cryptoBody, s.reEncrypt},
		{"sign", "Sign", cryptoBody, s.sign},
		{"verify", "Verify", cryptoBody, s.verify},
	}
	for _, prefix := range []string{"/keys/v1/", "/keys/v2/"} {
		for _, a := range v1 {
			rs = append(rs, route{"POST", prefix + "{keyTag}/" + a.path, a.action, authAccount, nkms.PermCrypto, a.limit, a.handle, true})
		}
	}
	return rs
}
