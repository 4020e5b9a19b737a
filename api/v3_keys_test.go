package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// kv3 sends a 3.0 request signed by keystore 1's admin with the given
// Content-Type ("" for application/json).
func (e *env) kv3(method, path, body, contentType string) (int, []byte) {
	e.t.Helper()
	return e.kv3As(e.creds[1], method, path, body, contentType)
}

// kv3As is kv3 signed with the given credentials.
func (e *env) kv3As(cr *nkms.Credentials, method, path, body, contentType string) (int, []byte) {
	e.t.Helper()
	return e.rawWith(method, path, body, func(r *http.Request) {
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		sigv2.SignRequest(r, cr.AccessKey, []byte(cr.SecretKey), e.clk.Now())
	})
}

// kv3Create creates a key through 3.0 with the given body and returns its tag.
func (e *env) kv3Create(body string) string {
	e.t.Helper()
	status, b := e.kv3("POST", "/kms/v3/keys", body, "")
	if status != http.StatusCreated {
		e.t.Fatalf("createKey %s: HTTP %d %s", body, status, b)
	}
	var k struct{ KeyTag string }
	if err := json.Unmarshal(b, &k); err != nil {
		e.t.Fatal(err)
	}
	return k.KeyTag
}

// kv3Call is one request of a case, "{tag}" standing for the case's key.
type kv3Call struct{ method, path, body string }

const (
	kv3AES   = `{"keyName":"k-aes","keyType":"AES256","protectionType":"BASIC","memo":"payment key","rotation":{"enabled":true,"periodDays":30}}`
	kv3Off   = `{"keyName":"k-off","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":false}}`
	kv3Merge = "application/merge-patch+json"
)

// TestV3KeyOperations drives each of the 13 key and version operations of
// API 3.0 over HTTP: its success (a golden body) and its main refusals (the
// D9 status and errorCode; some with a golden body). Each case has a key of
// its own, created through 3.0 with key (kv3AES by default), and runs setup
// first.
func TestV3KeyOperations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		key         string // createKey body of the case's key
		setup       []kv3Call
		call        kv3Call
		contentType string
		status      int
		errorCode   string // want this errorCode (refusals)
		golden      string // compare the body with testdata/<golden>.golden
	}{
		// 1 createKey
		{name: "createKey", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"RSA2048","protectionType":"BASIC","memo":"<b>signing</b> key 🔑","rotation":{"enabled":false,"periodDays":45}}`},
			status: 201, golden: "v3_create_key"},
		{name: "createKey convergent", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"conv","keyType":"AES256","protectionType":"BASIC","convergent":true,"rotation":{"enabled":true}}`},
			status: 201},
		{name: "createKey without rotation", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC"}`},
			status: 400, errorCode: "InvalidParameter", golden: "v3_error_400_rotation_required"},
		{name: "createKey without rotation.enabled", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC","rotation":{}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey COMMON_HSM", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"COMMON_HSM","rotation":{"enabled":false}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey convergent RSA", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"RSA2048","protectionType":"BASIC","convergent":true,"rotation":{"enabled":false}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey periodDays 30.0", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":true,"periodDays":30.0}}`},
			status: 400, errorCode: "InvalidParameter", golden: "v3_error_400_period_not_integer"},
		{name: "createKey periodDays \"30\"", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":true,"periodDays":"30"}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey periodDays 0 with rotation off", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":false,"periodDays":0}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey memo only emoji and tags", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"new-key","keyType":"AES256","protectionType":"BASIC","memo":"<i></i>😀","rotation":{"enabled":false}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey name taken", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"K-AES","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":false}}`},
			status: 409, errorCode: "AlreadyExists"},
		{name: "createKey bad name", call: kv3Call{"POST", "/kms/v3/keys", `{"keyName":"1abc","keyType":"AES256","protectionType":"BASIC","rotation":{"enabled":false}}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "createKey not JSON", call: kv3Call{"POST", "/kms/v3/keys", `keyName=x`}, contentType: "text/plain",
			status: 415, errorCode: "UnsupportedMediaType", golden: "v3_error_415"},
		{name: "createKey array body", call: kv3Call{"POST", "/kms/v3/keys", `[]`}, status: 400, errorCode: "InvalidParameter"},

		// 2 listKeys
		{name: "listKeys", setup: []kv3Call{{"POST", "/kms/v3/keys", kv3Off}}, call: kv3Call{"GET", "/kms/v3/keys?pageNo=1&pageSize=1", ""},
			status: 200, golden: "v3_list_keys"},
		{name: "listKeys default page", call: kv3Call{"GET", "/kms/v3/keys", ""}, status: 200},
		{name: "listKeys pageNo -1", call: kv3Call{"GET", "/kms/v3/keys?pageNo=-1", ""}, status: 400, errorCode: "InvalidParameter"},
		{name: "listKeys pageSize 0x10", call: kv3Call{"GET", "/kms/v3/keys?pageSize=0x10", ""}, status: 400, errorCode: "InvalidParameter"},
		{name: "listKeys last page", call: kv3Call{"GET", "/kms/v3/keys?pageNo=2147483646&pageSize=1", ""}, status: 200},
		{name: "listKeys pageNo × pageSize too large", call: kv3Call{"GET", "/kms/v3/keys?pageNo=2147483646&pageSize=2", ""}, status: 400, errorCode: "InvalidParameter"},
		{name: "listKeys pageSize 201", call: kv3Call{"GET", "/kms/v3/keys?pageSize=201", ""}, status: 400, errorCode: "InvalidParameter"},

		// 3 getKey
		{name: "getKey", call: kv3Call{"GET", "/kms/v3/keys/{tag}", ""}, status: 200, golden: "v3_get_key"},
		{name: "getKey upper-case tag", call: kv3Call{"GET", "/kms/v3/keys/{TAG}", ""}, status: 200},
		{name: "getKey unknown", call: kv3Call{"GET", "/kms/v3/keys/" + strings.Repeat("ab", 32), ""},
			status: 404, errorCode: "ResourceNotFound", golden: "v3_error_404"},
		{name: "getKey malformed tag", call: kv3Call{"GET", "/kms/v3/keys/xyz", ""}, status: 404, errorCode: "ResourceNotFound"},

		// 4 updateKey
		{name: "updateKey {}", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{}`}, contentType: kv3Merge, status: 200, golden: "v3_get_key"},
		{name: "updateKey all fields", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"keyName":"renamed","memo":"new <br/>memo","status":"DISABLED"}`},
			contentType: kv3Merge, status: 200, golden: "v3_update_key"},
		{name: "updateKey memo null", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"memo":null}`}, status: 200, golden: "v3_update_key_memo_null"},
		{name: "updateKey own name", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"keyName":"K-Aes"}`}, contentType: kv3Merge,
			status: 409, errorCode: "AlreadyExists", golden: "v3_error_409"},
		{name: "updateKey other key's name", setup: []kv3Call{{"POST", "/kms/v3/keys", kv3Off}}, call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"keyName":"k-off"}`},
			status: 409, errorCode: "AlreadyExists"},
		{name: "updateKey keyName null", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"keyName":null}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKey status null", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"status":null}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKey status REVOKED", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"status":"REVOKED"}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKey memo empty", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"memo":""}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKey memo number", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"memo":5}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKey revoked key", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}},
			call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"status":"ENABLED"}`}, status: 400, errorCode: "InvalidState", golden: "v3_error_400_invalid_state"},
		{name: "updateKey not JSON", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `memo=x`}, contentType: "text/plain", status: 415, errorCode: "UnsupportedMediaType"},
		{name: "updateKey too large", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `{"memo":"` + strings.Repeat("a", 17<<10) + `"}`},
			status: 413, errorCode: "PayloadTooLarge"},
		{name: "updateKey null body", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}", `null`}, status: 400, errorCode: "InvalidParameter"},

		// 5 deleteKey
		{name: "deleteKey", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}}, call: kv3Call{"DELETE", "/kms/v3/keys/{tag}", ""}, status: 204},
		{name: "deleteKey enabled", call: kv3Call{"DELETE", "/kms/v3/keys/{tag}", ""}, status: 400, errorCode: "InvalidState"},

		// 6 requestKeyDeletion
		{name: "requestKeyDeletion", call: kv3Call{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}, status: 200, golden: "v3_request_deletion"},
		{name: "requestKeyDeletion twice", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}},
			call: kv3Call{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}, status: 400, errorCode: "InvalidState"},

		// 7 cancelKeyDeletion
		{name: "cancelKeyDeletion", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/request-deletion", ""}},
			call: kv3Call{"POST", "/kms/v3/keys/{tag}/cancel-deletion", ""}, status: 200, golden: "v3_cancel_deletion"},
		{name: "cancelKeyDeletion not revoked", call: kv3Call{"POST", "/kms/v3/keys/{tag}/cancel-deletion", ""}, status: 400, errorCode: "InvalidState"},

		// 8 getKeyRotation
		{name: "getKeyRotation", call: kv3Call{"GET", "/kms/v3/keys/{tag}/rotation", ""}, status: 200, golden: "v3_get_rotation"},
		{name: "getKeyRotation created off", key: kv3Off, call: kv3Call{"GET", "/kms/v3/keys/{tag}/rotation", ""}, status: 200, golden: "v3_get_rotation_off"},
		{name: "getKeyRotation unknown", call: kv3Call{"GET", "/kms/v3/keys/" + strings.Repeat("cd", 32) + "/rotation", ""}, status: 404, errorCode: "ResourceNotFound"},

		// 9 updateKeyRotation
		{name: "updateKeyRotation {}", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{}`}, contentType: kv3Merge, status: 200, golden: "v3_get_rotation"},
		{name: "updateKeyRotation off keeps the period", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"enabled":false}`},
			contentType: kv3Merge, status: 200, golden: "v3_update_rotation_off"},
		{name: "updateKeyRotation on with period", key: kv3Off, call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"enabled":true,"periodDays":7}`},
			status: 200, golden: "v3_update_rotation_on"},
		{name: "updateKeyRotation off with period", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"enabled":false,"periodDays":7}`},
			status: 400, errorCode: "InvalidParameter", golden: "v3_error_400_period_with_off"},
		{name: "updateKeyRotation period on an off key", key: kv3Off, call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"periodDays":7}`},
			status: 400, errorCode: "InvalidParameter"},
		{name: "updateKeyRotation period 731", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"periodDays":731}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKeyRotation period 1e1", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"periodDays":1e1}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKeyRotation enabled null", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"enabled":null}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKeyRotation disabled key", setup: []kv3Call{{"PATCH", "/kms/v3/keys/{tag}", `{"status":"DISABLED"}`}},
			call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `{"enabled":false}`}, status: 400, errorCode: "InvalidState"},
		{name: "updateKeyRotation not JSON", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/rotation", `x`}, contentType: "text/plain", status: 415, errorCode: "UnsupportedMediaType"},

		// 10 createKeyVersion
		{name: "createKeyVersion", call: kv3Call{"POST", "/kms/v3/keys/{tag}/versions", ""}, status: 201, golden: "v3_create_version"},
		{name: "createKeyVersion disabled key", setup: []kv3Call{{"PATCH", "/kms/v3/keys/{tag}", `{"status":"DISABLED"}`}},
			call: kv3Call{"POST", "/kms/v3/keys/{tag}/versions", ""}, status: 400, errorCode: "InvalidState"},

		// 11 listKeyVersions
		{name: "listKeyVersions", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/versions", ""}, {"POST", "/kms/v3/keys/{tag}/versions", ""}},
			call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions?pageNo=1&pageSize=2", ""}, status: 200, golden: "v3_list_versions"},
		{name: "listKeyVersions past the end", call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions?pageNo=5", ""}, status: 200},
		{name: "listKeyVersions pageSize 0", call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions?pageSize=0", ""}, status: 400, errorCode: "InvalidParameter"},
		{name: "listKeyVersions unknown", call: kv3Call{"GET", "/kms/v3/keys/" + strings.Repeat("ef", 32) + "/versions", ""}, status: 404, errorCode: "ResourceNotFound"},

		// 12 getKeyVersion
		{name: "getKeyVersion", call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions/1", ""}, status: 200, golden: "v3_get_version"},
		{name: "getKeyVersion unknown", call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions/2", ""}, status: 404, errorCode: "ResourceNotFound"},
		{name: "getKeyVersion 0x1", call: kv3Call{"GET", "/kms/v3/keys/{tag}/versions/0x1", ""}, status: 400, errorCode: "InvalidParameter"},

		// 13 updateKeyVersion
		{name: "updateKeyVersion disable", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/versions", ""}},
			call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `{"status":"DISABLED"}`}, contentType: kv3Merge, status: 200, golden: "v3_update_version"},
		{name: "updateKeyVersion {}", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `{}`}, status: 200, golden: "v3_get_version"},
		{name: "updateKeyVersion current", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `{"status":"DISABLED"}`}, status: 400, errorCode: "InvalidState"},
		{name: "updateKeyVersion status ENABLE", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `{"status":"ENABLE"}`}, status: 400, errorCode: "InvalidParameter"},
		{name: "updateKeyVersion unknown", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/3", `{"status":"ENABLED"}`}, status: 404, errorCode: "ResourceNotFound"},
		{name: "updateKeyVersion disabled key", setup: []kv3Call{{"POST", "/kms/v3/keys/{tag}/versions", ""}, {"PATCH", "/kms/v3/keys/{tag}", `{"status":"DISABLED"}`}},
			call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `{"status":"DISABLED"}`}, status: 400, errorCode: "InvalidState"},
		{name: "updateKeyVersion not JSON", call: kv3Call{"PATCH", "/kms/v3/keys/{tag}/versions/1", `x`}, contentType: "text/xml", status: 415, errorCode: "UnsupportedMediaType"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			key := tc.key
			if key == "" {
				key = kv3AES
			}
			tag := e.kv3Create(key)
			fill := func(s string) string {
				return strings.NewReplacer("{tag}", tag, "{TAG}", strings.ToUpper(tag)).Replace(s)
			}
			for _, s := range tc.setup {
				if status, b := e.kv3(s.method, fill(s.path), s.body, ""); status >= 300 {
					t.Fatalf("setup %s %s: HTTP %d %s", s.method, s.path, status, b)
				}
			}
			status, body := e.kv3(tc.call.method, fill(tc.call.path), tc.call.body, tc.contentType)
			if status != tc.status {
				t.Fatalf("HTTP %d %s, want %d", status, body, tc.status)
			}
			if tc.errorCode != "" {
				var eb struct{ Error struct{ ErrorCode string } }
				if err := json.Unmarshal(body, &eb); err != nil || eb.Error.ErrorCode != tc.errorCode {
					t.Errorf("body %s: errorCode %q, want %q", body, eb.Error.ErrorCode, tc.errorCode)
				}
			}
			if status == http.StatusNoContent && len(body) != 0 {
				t.Errorf("204 with body %q", body)
			}
			if tc.golden != "" {
				golden(t, tc.golden, status, body)
			}
		})
	}
}

// TestV3KeyRoles: a viewer reads keys and versions through 3.0 but changes
// nothing (403 AccessDenied); a key of another keystore is not found.
func TestV3KeyRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := e.kv3Create(kv3AES)
	admin := nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	viewer, err := e.svc.CreateAccessKey(context.Background(), admin, 1, nkms.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	k := "/kms/v3/keys/" + tag
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/kms/v3/keys", "", 200},
		{"GET", k, "", 200},
		{"GET", k + "/rotation", "", 200},
		{"GET", k + "/versions", "", 200},
		{"GET", k + "/versions/1", "", 200},
		{"POST", "/kms/v3/keys", kv3Off, 403},
		{"PATCH", k, `{}`, 403},
		{"PATCH", k, `{"memo":"x"}`, 403},
		{"POST", k + "/request-deletion", "", 403},
		{"POST", k + "/cancel-deletion", "", 403},
		{"DELETE", k, "", 403},
		{"PATCH", k + "/rotation", `{"enabled":false}`, 403},
		{"POST", k + "/versions", "", 403},
		{"PATCH", k + "/versions/1", `{}`, 403},
		{"PATCH", k + "/versions/1", `{"status":"ENABLED"}`, 403},
	} {
		status, b := e.kv3As(viewer, c.method, c.path, c.body, "")
		if status != c.status {
			t.Errorf("viewer %s %s: HTTP %d %s, want %d", c.method, c.path, status, b, c.status)
		}
		if c.status == 403 && !strings.Contains(string(b), `"AccessDenied"`) {
			t.Errorf("viewer %s %s: body %s, want AccessDenied", c.method, c.path, b)
		}
		if status, b := e.kv3As(e.creds[2], c.method, c.path, c.body, ""); c.path != "/kms/v3/keys" && status != 404 {
			t.Errorf("other keystore %s %s: HTTP %d %s, want 404", c.method, c.path, status, b)
		}
	}
}
