package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/sigv2"
)

// field decodes one field of a bare 3.0 body ("" when absent; the raw JSON
// of a value that is not a string).
func field(t testing.TB, body []byte, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	var s string
	if json.Unmarshal(m[name], &s) == nil {
		return s
	}
	return string(m[name])
}

// v3 sends a signed request, checks its status and pins its answer in
// testdata/v3_<name>.golden.
func (e *env) v3(name string, want int, method, path, body string) []byte {
	e.t.Helper()
	status, b := e.raw(method, path, body)
	if status != want {
		e.t.Fatalf("%s: %s %s: got %d %s, want %d", name, method, path, status, b, want)
	}
	golden(e.t, "v3_"+name, status, requestorRE.ReplaceAll(b, []byte(`"requestorId":"<accessKey>"`)))
	return b
}

var requestorRE = regexp.MustCompile(`"requestorId":"NK[A-Z0-9]+"`)

// v3Token is v3 with a key token instead of a signature.
func (e *env) v3Token(name string, want int, tok, method, path, body string) []byte {
	e.t.Helper()
	status, b := e.rawWith(method, path, body, withToken(tok))
	if status != want {
		e.t.Fatalf("%s: %s %s: got %d %s, want %d", name, method, path, status, b, want)
	}
	golden(e.t, "v3_"+name, status, requestorRE.ReplaceAll(b, []byte(`"requestorId":"<accessKey>"`)))
	return b
}

// newV3Key creates a key through 2.0 and returns its tag.
func newV3Key(t testing.TB, e *env, name, keyType string) string {
	t.Helper()
	status, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"`+name+`","keyType":"`+keyType+`"}`)
	if status != 200 {
		t.Fatalf("create key: %d %s", status, b)
	}
	return data(t, b, "keyTag")
}

// TestV3AccessRoutes walks the twelve 3.0 operations of ACLs, token
// generators, tokens and activities (ncp-kms-api-v3.md §1 rows 14-25) and
// pins every answer.
func TestV3AccessRoutes(t *testing.T) {
	e := newEnv(t)
	tag := newV3Key(t, e, "v3access", "ECDSA")
	k := "/kms/v3/keys/" + tag
	tk := "/kms/v3/token/keys/" + tag

	// 14-17: the ACL.
	e.v3("acl_get", 200, "GET", k+"/acl", "")
	e.v3("acl_patch_empty", 200, "PATCH", k+"/acl", `{}`)
	e.v3("acl_patch_enable", 200, "PATCH", k+"/acl", `{"enabled":true}`)
	e.v3("acl_add", 200, "POST", k+"/acl/add-allowed-ips", `{"allowedIps":["127.0.0.1","10.3.0.1/24","192.168.*.*","10.0.0.1/32"]}`)
	again := e.v3("acl_add_again", 200, "POST", k+"/acl/add-allowed-ips", `{"allowedIps":["127.0.0.1"]}`)
	if !strings.Contains(string(again), `"allowedIps":["127.0.0.1","10.3.0.1/24","192.168.*.*","10.0.0.1/32"]`) {
		t.Fatalf("re-adding an entry changed the list: %s", again)
	}
	e.v3("acl_remove_absent", 400, "POST", k+"/acl/remove-allowed-ips", `{"allowedIps":["10.3.0.1/24","10.3.0.0/24"]}`)
	e.v3("acl_remove", 200, "POST", k+"/acl/remove-allowed-ips", `{"allowedIps":["10.3.0.1/24","10.0.0.1/32"]}`)

	// 18-21: the token generator; 22-24: tokens.
	e.v3("token_generator_disabled", 200, "GET", k+"/token-generator", "")
	e.v3("issue_tokens_without_generator", 400, "POST", k+"/issue-tokens", `{}`)
	gen := field(t, e.v3("activate_token_generator", 200, "POST", k+"/activate-token-generator", ""), "tokenGeneratorId")
	if again := field(t, e.v3("activate_token_generator", 200, "POST", k+"/activate-token-generator", ""), "tokenGeneratorId"); again != gen || gen == "" {
		t.Fatalf("activating an active generator: id %q, then %q", gen, again)
	}
	e.v3("token_generator_enabled", 200, "GET", k+"/token-generator", "")
	set := e.v3("issue_tokens", 200, "POST", k+"/issue-tokens", `{"accessTokenMinutes":60,"refreshTokenUnlimited":true}`)
	e.v3("issue_tokens_defaults", 200, "POST", k+"/issue-tokens", "")
	refresh := field(t, set, "refreshToken")
	re := e.v3Token("reissue_tokens", 200, refresh, "POST", tk+"/reissue-tokens", `{"accessTokenUnlimited":true,"refreshTokenHours":1}`)
	e.v3Token("issue_access_token", 200, field(t, re, "refreshToken"), "POST", tk+"/issue-access-token", `{"accessTokenMinutes":1}`)
	e.v3Token("issue_access_token_old_refresh", 200, refresh, "POST", tk+"/issue-access-token", "") // the one used stays valid

	rotated := field(t, e.v3("rotate_token_generator", 200, "POST", k+"/rotate-token-generator", ""), "tokenGeneratorId")
	if rotated == gen || rotated == "" {
		t.Fatalf("rotation kept the generator id %q", gen)
	}
	e.v3Token("error_401_rotated", 401, refresh, "POST", tk+"/reissue-tokens", "")
	e.v3("deactivate_token_generator", 200, "POST", k+"/deactivate-token-generator", "")
	e.v3("deactivate_token_generator_again", 200, "POST", k+"/deactivate-token-generator", "")
	e.v3("rotate_without_generator", 400, "POST", k+"/rotate-token-generator", "")

	// 25: activities, newest first, filtered.
	e.v3("activities", 200, "GET", k+"/activities?pageSize=5", "")
	e.v3("activities_page", 200, "GET", k+"/activities?pageNo=1&pageSize=3", "")
	e.v3("activities_filtered", 200, "GET", k+"/activities?actionCode=IssueKeyTokens&actionCode=ReissueKeyTokens&resultCode=SUCCESS&requestType=API", "")
	e.v3("activities_failures", 200, "GET", k+"/activities?resultCode=FAIL", "")
	e.v3("activities_period", 200, "GET", k+"/activities?fromDateTime=2026-11-27T08:00:00Z&toDateTime=2026-11-27T08:59:59.999Z", "")
	// Only toDateTime: the 24 hours before it (an hour after the calls, they are in; a day after, not).
	if b := e.v3("activities_to_only", 200, "GET", k+"/activities?pageSize=1&toDateTime=2026-11-27T10:00:00%2B01:00", ""); field(t, b, "totalCount") == "0" {
		t.Fatalf("toDateTime only: %s", b)
	}
	if b := e.v3("activities_to_only_later", 200, "GET", k+"/activities?toDateTime=2026-11-28T09:00:00.001Z", ""); field(t, b, "totalCount") != "0" {
		t.Fatalf("toDateTime a day later: %s", b)
	}
}

// TestV3AccessRefusals pins the refusals of the 3.0 ACL, token-generator,
// token and activity routes.
func TestV3AccessRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "refused", "AES256")
	k := "/kms/v3/keys/" + tag

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"acl_patch_string", "PATCH", "/acl", `{"enabled":"true"}`, 400},
		{"acl_patch_null", "PATCH", "/acl", `{"enabled":null}`, 400},
		{"acl_patch_array", "PATCH", "/acl", `[]`, 400},
		{"acl_add_empty", "POST", "/acl/add-allowed-ips", `{"allowedIps":[]}`, 400},
		{"acl_add_missing", "POST", "/acl/add-allowed-ips", `{}`, 400},
		{"acl_add_wildcard_cidr", "POST", "/acl/add-allowed-ips", `{"allowedIps":["10.*.0.0/16"]}`, 400},
		{"acl_add_prefix_33", "POST", "/acl/add-allowed-ips", `{"allowedIps":["10.0.0.0/33"]}`, 400},
		{"acl_add_ipv6", "POST", "/acl/add-allowed-ips", `{"allowedIps":["::1"]}`, 400},
		{"acl_add_number", "POST", "/acl/add-allowed-ips", `{"allowedIps":[10]}`, 400},
		{"issue_tokens_float", "POST", "/issue-tokens", `{"accessTokenMinutes":60.0}`, 400},
		{"issue_tokens_string", "POST", "/issue-tokens", `{"accessTokenMinutes":"60"}`, 400},
		{"issue_tokens_zero", "POST", "/issue-tokens", `{"accessTokenMinutes":0}`, 400},
		{"issue_tokens_too_long", "POST", "/issue-tokens", `{"accessTokenMinutes":1051201}`, 400},
		{"issue_tokens_refresh_too_long", "POST", "/issue-tokens", `{"refreshTokenHours":17521}`, 400},
		{"issue_tokens_minutes_and_unlimited", "POST", "/issue-tokens", `{"accessTokenMinutes":5,"accessTokenUnlimited":true}`, 400},
		{"activities_page_size", "GET", "/activities?pageSize=201", "", 400},
		{"activities_page_no_hex", "GET", "/activities?pageNo=0x1", "", 400},
		{"activities_from", "GET", "/activities?fromDateTime=yesterday", "", 400},
		{"activities_from_after_to", "GET", "/activities?fromDateTime=2026-11-27T09:00:00Z&toDateTime=2026-11-27T08:00:00Z", "", 400},
		{"acl_add_text", "POST", "/acl/add-allowed-ips", "not json", 400},
	} {
		e.v3("error_"+tc.name, tc.status, tc.method, k+tc.path, tc.body)
	}
	status, b := e.rawWith("POST", k+"/acl/add-allowed-ips", `{"allowedIps":["10.0.0.1"]}`, func(r *http.Request) {
		r.Header.Set("Content-Type", "text/plain")
		signV3(e, r)
	})
	golden(t, "v3_error_415_acl_add", status, b)

	// 101 entries: the 101st is refused, and nothing is added.
	var ips []string
	for i := range 100 {
		ips = append(ips, "10.0."+strconv.Itoa(i)+".1")
	}
	list, _ := json.Marshal(map[string][]string{"allowedIps": ips})
	e.v3("acl_add_hundred", 200, "POST", k+"/acl/add-allowed-ips", string(list))
	e.v3("error_acl_add_101st", 400, "POST", k+"/acl/add-allowed-ips", `{"allowedIps":["10.1.0.1","127.0.0.1"]}`)
	e.v3("acl_add_known_at_limit", 200, "POST", k+"/acl/add-allowed-ips", `{"allowedIps":["10.0.0.1"]}`)

	// Settings changes need an ENABLED key on 3.0 (reads do not).
	e.raw("POST", "/kms/v1/keys/"+tag+"/disable", "")
	for _, tc := range []struct{ name, method, path, body string }{
		{"acl_patch", "PATCH", "/acl", `{"enabled":true}`},
		{"acl_patch_empty", "PATCH", "/acl", `{}`},
		{"acl_add", "POST", "/acl/add-allowed-ips", `{"allowedIps":["10.9.9.9"]}`},
		{"acl_remove", "POST", "/acl/remove-allowed-ips", `{"allowedIps":["10.0.0.1"]}`},
		{"activate", "POST", "/activate-token-generator", ""},
		{"rotate", "POST", "/rotate-token-generator", ""},
		{"deactivate", "POST", "/deactivate-token-generator", ""},
		{"issue_tokens", "POST", "/issue-tokens", ""},
	} {
		e.v3("error_disabled_"+tc.name, 400, tc.method, k+tc.path, tc.body)
	}
	e.v3("acl_get_disabled", 200, "GET", k+"/acl", "")

	// Unknown and other keystores' keys.
	other := "/kms/v3/keys/" + strings.Repeat("ab", 32)
	e.v3("error_404_acl", 404, "GET", other+"/acl", "")
	e.v3("error_404_activate", 404, "POST", other+"/activate-token-generator", "")

	// 414 with no body: the request line of activities over 4,096 bytes,
	// refused before authentication.
	path := k + "/activities?actionCode="
	path += strings.Repeat("A", 4096-len("GET ")-len(path))
	if status, b := e.rawWith("GET", path, "", nil); status == 414 {
		t.Fatalf("a request line of exactly 4,096 bytes: got 414 %s", b)
	}
	status, b = e.rawWith("GET", path+"A", "", nil)
	if status != 414 || len(b) != 0 {
		t.Fatalf("a request line of 4,097 bytes: got %d %q, want 414 with no body", status, b)
	}
}

// signV3 signs r with keystore 1's access key.
func signV3(e *env, r *http.Request) {
	sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
}
