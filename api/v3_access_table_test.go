package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// TestV3AccessTable calls each of the twelve 3.0 operations of ACLs, token
// generators, tokens and activities (ncp-kms-api-v3.md §1 rows 14-25) as
// every role and with the other kind of key token, over HTTP: the role
// allows it (D10) and it answers its D9 status, or it is 403 AccessDenied;
// a token route refuses signatures and access tokens (401).
func TestV3AccessTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	operator := nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	tag := newV3Key(t, e, "table", "AES256")
	k, tk := "/kms/v3/keys/"+tag, "/kms/v3/token/keys/"+tag
	if status, b := e.raw("POST", k+"/activate-token-generator", ""); status != 200 {
		t.Fatalf("activate: %d %s", status, b)
	}
	_, set := e.raw("POST", k+"/issue-tokens", "")
	access, refresh := field(t, set, "accessToken"), field(t, set, "refreshToken")

	ops := []struct {
		row                int
		method, path, body string
		perm               nkms.Permission
		refresh            bool // a refresh-token route
	}{
		{14, "GET", k + "/acl", "", nkms.PermRead, false},
		{15, "PATCH", k + "/acl", `{"enabled":false}`, nkms.PermManage, false},
		{16, "POST", k + "/acl/add-allowed-ips", `{"allowedIps":["10.*.*.*"]}`, nkms.PermManage, false},
		{17, "POST", k + "/acl/remove-allowed-ips", `{"allowedIps":["10.*.*.*"]}`, nkms.PermManage, false},
		{18, "GET", k + "/token-generator", "", nkms.PermRead, false},
		{19, "POST", k + "/activate-token-generator", "", nkms.PermManage, false},
		{20, "POST", k + "/rotate-token-generator", "", nkms.PermManage, false},
		{21, "POST", k + "/deactivate-token-generator", "", nkms.PermManage, false},
		{22, "POST", k + "/issue-tokens", `{}`, nkms.PermCrypto, false},
		{23, "POST", tk + "/reissue-tokens", `{}`, nkms.PermCrypto, true},
		{24, "POST", tk + "/issue-access-token", `{}`, nkms.PermCrypto, true},
		{25, "GET", k + "/activities?pageNo=0&pageSize=5", "", nkms.PermRead, false},
	}
	roles := []nkms.Role{nkms.RoleAdmin, nkms.RoleManager, nkms.RoleCrypto, nkms.RoleViewer}
	creds := map[nkms.Role]*nkms.Credentials{}
	for _, r := range roles {
		cr, err := e.svc.CreateAccessKey(ctx, operator, 1, r)
		if err != nil {
			t.Fatal(err)
		}
		creds[r] = cr
	}
	for _, op := range ops {
		if op.refresh {
			// Refresh-token routes: a refresh token works; a signature or an access token is 401.
			status, b := e.rawWith(op.method, op.path, op.body, withToken(refresh))
			if status != 200 {
				t.Errorf("row %d %s %s with a refresh token: got %d %s, want 200", op.row, op.method, op.path, status, b)
			}
			for who, prep := range map[string]func(*http.Request){
				"access token": withToken(access),
				"signature": func(r *http.Request) {
					sigv2.SignRequest(r, creds[nkms.RoleAdmin].AccessKey, []byte(creds[nkms.RoleAdmin].SecretKey), e.clk.Now())
				},
			} {
				if status, b := e.rawWith(op.method, op.path, op.body, prep); status != 401 {
					t.Errorf("row %d with a %s: got %d %s, want 401", op.row, who, status, b)
				}
			}
			continue
		}
		for _, r := range roles {
			cr := creds[r]
			status, b := e.rawWith(op.method, op.path, op.body, func(req *http.Request) {
				sigv2.SignRequest(req, cr.AccessKey, []byte(cr.SecretKey), e.clk.Now())
			})
			if r.Can(op.perm) {
				if status != 200 {
					t.Errorf("row %d %s %s as %s: got %d %s, want 200", op.row, op.method, op.path, r, status, b)
				}
			} else if status != 403 || !strings.Contains(string(b), `"errorCode":"AccessDenied"`) {
				t.Errorf("row %d %s %s as %s: got %d %s, want 403 AccessDenied", op.row, op.method, op.path, r, status, b)
			}
		}
		// Account routes take no key token.
		if status, b := e.rawWith(op.method, op.path, op.body, withToken(access)); status != 401 {
			t.Errorf("row %d with an access token: got %d %s, want 401", op.row, status, b)
		}
		if op.row == 20 || op.row == 21 { // rotated or deactivated: issue a new pair for the next rows
			e.raw("POST", k+"/activate-token-generator", "")
			_, set := e.raw("POST", k+"/issue-tokens", "")
			access, refresh = field(t, set, "accessToken"), field(t, set, "refreshToken")
		}
	}
}

// TestV3TokenRole: a token carries the role of the access key that issued
// it (D9), through 2.0 and 3.0 alike, and tokens without the claim (issued
// before tokens carried it) still work.
func TestV3TokenRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "roles", "AES256")
	k := "/kms/v3/keys/" + tag
	e.raw("POST", k+"/activate-token-generator", "")
	ctx := context.Background()
	operator := nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	cr, err := e.svc.CreateAccessKey(ctx, operator, 1, nkms.RoleCrypto)
	if err != nil {
		t.Fatal(err)
	}
	status, b := e.rawWith("POST", k+"/issue-tokens", "", func(r *http.Request) {
		sigv2.SignRequest(r, cr.AccessKey, []byte(cr.SecretKey), e.clk.Now())
	})
	if status != 200 {
		t.Fatalf("issue-tokens as crypto: %d %s", status, b)
	}
	for _, tok := range []string{field(t, b, "accessToken"), field(t, b, "refreshToken")} {
		if got := claim(t, tok, "role"); got != "crypto" {
			t.Errorf("token role claim %q, want crypto", got)
		}
	}
	// 2.0 token-set, by the admin: the role claim is admin.
	_, b = e.raw("POST", "/kms/v1/keys/"+tag+"/token-set", `{}`)
	if got := claim(t, data(t, b, "accessToken"), "role"); got != "admin" {
		t.Errorf("2.0 token role claim %q, want admin", got)
	}
}

// claim returns a claim of a JWT's payload (not verified).
func claim(t *testing.T, tok, name string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[name].(string)
	return s
}
