package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// TestRoles checks every route against every role: a route outside the role
// answers 401 errorCode 210, a route inside it gets past authorisation.
func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	operator := nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"shared","keyType":"RSA2048"}`)
	k := "/kms/v1/keys/" + data(t, b, "keyTag")
	_, b = e.raw("POST", k+"/encrypt", `{"plaintext":"AA=="}`)
	ct := data(t, b, "ciphertext")
	_, b = e.raw("POST", k+"/sign", `{"data":"AA=="}`)
	sig := data(t, b, "signature")

	routes := []struct {
		method, path, body string
		perm               nkms.Permission
	}{
		{"GET", "/kms/v1/keys", "", nkms.PermRead},
		{"GET", k, "", nkms.PermRead},
		{"GET", k + "/versions", "", nkms.PermRead},
		{"POST", "/kms/v1/keys", `{"keyName":"x","keyType":"AES256"}`, nkms.PermManage},
		{"POST", k + "/enable", "", nkms.PermManage},
		{"POST", k + "/disable", "", nkms.PermManage},
		{"PUT", k + "/name", `{"keyName":"x"}`, nkms.PermManage},
		{"PUT", k + "/memo", `{"memo":"m"}`, nkms.PermManage},
		{"POST", k + "/rotate", "", nkms.PermManage},
		{"POST", k + "/enable-auto-rotation", "", nkms.PermManage},
		{"POST", k + "/disable-auto-rotation", "", nkms.PermManage},
		{"PUT", k + "/rotation-period", `{"rotationPeriod":0}`, nkms.PermManage},
		{"POST", k + "/versions/9/enable", "", nkms.PermManage},
		{"POST", k + "/versions/9/disable", "", nkms.PermManage},
		{"POST", k + "/cancel-deletion", "", nkms.PermManage},
		{"POST", k + "/request-deletion", "", nkms.PermManage},
		{"DELETE", k, "", nkms.PermManage},
		{"POST", k + "/get-pub-key", `{"keyVersion":1}`, nkms.PermCrypto},
		{"POST", k + "/encrypt", `{"plaintext":"AA=="}`, nkms.PermCrypto},
		{"POST", k + "/decrypt", `{"ciphertext":"` + ct + `"}`, nkms.PermCrypto},
		{"POST", k + "/re-encrypt", `{"ciphertext":"` + ct + `"}`, nkms.PermCrypto},
		{"POST", k + "/create-custom-key", `{}`, nkms.PermCrypto},
		{"POST", k + "/sign", `{"data":"AA=="}`, nkms.PermCrypto},
		{"POST", k + "/verify", `{"data":"AA==","signature":"` + sig + `"}`, nkms.PermCrypto},
		{"POST", "/keys/v2/" + strings.TrimPrefix(k, "/kms/v1/keys/") + "/encrypt", `{"plaintext":"AA=="}`, nkms.PermCrypto},
		{"POST", k + "/acl/enable", "", nkms.PermManage},
		{"POST", k + "/acl/disable", "", nkms.PermManage},
		{"GET", k + "/acl", "", nkms.PermRead},
		{"POST", k + "/acl", `{"ipList":["x"]}`, nkms.PermManage},
		{"DELETE", k + "/acl", `{"ipList":["x"]}`, nkms.PermManage},
		{"POST", k + "/token-generator", "", nkms.PermManage},
		{"GET", k + "/token-generator", "", nkms.PermRead},
		{"PUT", k + "/token-generator", "", nkms.PermManage},
		{"DELETE", k + "/token-generator", "", nkms.PermManage},
		{"POST", k + "/token-set", `{"accessTokenHours":0}`, nkms.PermCrypto},
		{"GET", k + "/activities", "", nkms.PermRead},
		{"GET", k + "/last-use-info", "", nkms.PermRead},
		{"GET", "/nkms/v1/access-keys", "", nkms.PermAdmin},
		{"POST", "/nkms/v1/access-keys", `{"keystoreId":0}`, nkms.PermAdmin},
		{"DELETE", "/nkms/v1/access-keys/NOBODY", "", nkms.PermAdmin},
		{"GET", "/nkms/v1/backup", "", nkms.PermAdmin},
	}
	for _, role := range []nkms.Role{nkms.RoleViewer, nkms.RoleCrypto, nkms.RoleManager} {
		cred, err := e.svc.CreateAccessKey(ctx, operator, 1, role)
		if err != nil {
			t.Fatal(err)
		}
		for _, rt := range routes {
			status, body := e.rawWith(rt.method, rt.path, rt.body, func(r *http.Request) {
				sigv2.SignRequest(r, cred.AccessKey, []byte(cred.SecretKey), e.clk.Now())
			})
			denied := status == 401 && strings.Contains(string(body), `"errorCode":"210"`)
			if want := !role.Can(rt.perm); denied != want {
				t.Errorf("%s %s %s: got %d %s, want denied=%v", role, rt.method, rt.path, status, body, want)
			}
		}
	}
}

// TestAccessKeyRoutes: list and revoke; a revoked access key fails on its next request.
func TestAccessKeyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.clk.Add(time.Second)
	status, b := e.raw("POST", "/nkms/v1/access-keys", `{"keystoreId":2,"role":"crypto"}`)
	golden(t, "create_access_key_crypto", status, b)
	var created struct {
		Data struct{ AccessKey, SecretKey string } `json:"data"`
	}
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	status, b = e.raw("GET", "/nkms/v1/access-keys", "")
	golden(t, "access_key_list", status, b)
	asNew := func(r *http.Request) {
		sigv2.SignRequest(r, created.Data.AccessKey, []byte(created.Data.SecretKey), e.clk.Now())
	}
	if status, b := e.rawWith("GET", "/kms/v1/keys", "", asNew); status != 200 {
		t.Fatalf("new crypto access key cannot read: %d %s", status, b)
	}
	status, b = e.raw("DELETE", "/nkms/v1/access-keys/"+created.Data.AccessKey, "")
	golden(t, "access_key_revoke", status, b)
	status, b = e.rawWith("GET", "/kms/v1/keys", "", asNew)
	golden(t, "error_401_revoked", status, b)
	status, b = e.raw("DELETE", "/nkms/v1/access-keys/"+e.creds[1].AccessKey, "")
	golden(t, "error_400_revoke_self", status, b)
	status, b = e.raw("POST", "/nkms/v1/access-keys", `{"keystoreId":2,"role":"root"}`)
	golden(t, "error_400_unknown_role", status, b)
	// A tenant admin cannot reach into another keystore.
	asTenant := func(r *http.Request) {
		sigv2.SignRequest(r, e.creds[2].AccessKey, []byte(e.creds[2].SecretKey), e.clk.Now())
	}
	status, b = e.rawWith("POST", "/nkms/v1/access-keys", `{"keystoreId":1}`, asTenant)
	golden(t, "error_401_other_keystore", status, b)
	status, b = e.rawWith("DELETE", "/nkms/v1/access-keys/"+e.creds[1].AccessKey, "", asTenant)
	golden(t, "error_404_other_keystore_access_key", status, b)
}
