package api_test

import (
	"encoding/json"
	"slices"
	"testing"
)

// allowedIPsOf returns the 2.0 view of a key's ACL: enabled and list.
func allowedIPsOf(t *testing.T, e *env, tag string) (bool, []string) {
	t.Helper()
	status, b := e.raw("GET", "/kms/v1/keys/"+tag+"/acl", "")
	if status != 200 {
		t.Fatalf("2.0 get ACL: %d %s", status, b)
	}
	var body struct {
		Data struct {
			IsACLEnabled  bool     `json:"isAclEnabled"`
			AllowedIPList []string `json:"allowedIpList"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body.Data.IsACLEnabled, body.Data.AllowedIPList
}

// aclV3Of returns the 3.0 view of a key's ACL.
func aclV3Of(t *testing.T, e *env, tag string) (bool, []string) {
	t.Helper()
	status, b := e.raw("GET", "/kms/v3/keys/"+tag+"/acl", "")
	if status != 200 {
		t.Fatalf("3.0 get ACL: %d %s", status, b)
	}
	var body struct {
		Enabled    bool     `json:"enabled"`
		AllowedIPs []string `json:"allowedIps"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body.Enabled, body.AllowedIPs
}

func mustStatus(t *testing.T, what string, want, got int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %d %s, want %d", what, got, body, want)
	}
}

// TestV3ACLCrossAPI: one ACL, seen and edited through both APIs; the
// entries 3.0 keeps as sent (wildcards, host bits) govern 2.0 token calls.
func TestV3ACLCrossAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "shared-acl", "AES256")
	k1, k3 := "/kms/v1/keys/"+tag, "/kms/v3/keys/"+tag

	// Edited by 2.0, seen by 3.0.
	e.raw("POST", k1+"/acl", `{"ipList":["10.0.0.7/8","192.0.2.1"]}`)
	e.raw("POST", k1+"/acl/enable", "")
	if on, ips := aclV3Of(t, e, tag); !on || !slices.Equal(ips, []string{"10.0.0.0/8", "192.0.2.1"}) {
		t.Fatalf("3.0 sees the 2.0 ACL as %v %v", on, ips)
	}
	// Edited by 3.0, seen by 2.0.
	status, b := e.raw("POST", k3+"/acl/add-allowed-ips", `{"allowedIps":["127.*.*.1","10.3.0.1/24"]}`)
	mustStatus(t, "3.0 add", 200, status, b)
	status, b = e.raw("POST", k3+"/acl/remove-allowed-ips", `{"allowedIps":["192.0.2.1"]}`)
	mustStatus(t, "3.0 remove", 200, status, b)
	status, b = e.raw("PATCH", k3+"/acl", `{"enabled":false}`)
	mustStatus(t, "3.0 disable", 200, status, b)
	if on, ips := allowedIPsOf(t, e, tag); on || !slices.Equal(ips, []string{"10.0.0.0/8", "127.*.*.1", "10.3.0.1/24"}) {
		t.Fatalf("2.0 sees the 3.0 ACL as %v %v", on, ips)
	}

	// The wildcard entry lets a 2.0 token call from 127.0.0.1 through.
	e.raw("POST", k1+"/token-generator", "")
	_, set := e.raw("POST", k1+"/token-set", `{}`)
	access := data(t, set, "accessToken")
	e.raw("POST", k1+"/acl/enable", "")
	status, b = e.rawWith("POST", k1+"/encrypt", `{"plaintext":"AA=="}`, withToken(access))
	mustStatus(t, "2.0 token call allowed by 127.*.*.1", 200, status, b)
	status, b = e.raw("POST", k3+"/acl/remove-allowed-ips", `{"allowedIps":["127.*.*.1"]}`)
	mustStatus(t, "3.0 remove wildcard", 200, status, b)
	status, b = e.rawWith("POST", k1+"/encrypt", `{"plaintext":"AA=="}`, withToken(access))
	mustStatus(t, "2.0 token call without the wildcard", 403, status, b)

	// A 3.0 token route refuses a call from outside the ACL with 403 AccessDenied.
	status, b = e.raw("POST", k3+"/issue-tokens", `{}`)
	mustStatus(t, "3.0 issue-tokens", 200, status, b)
	refresh := field(t, b, "refreshToken")
	status, b = e.rawWith("POST", "/kms/v3/token/keys/"+tag+"/reissue-tokens", `{}`, withToken(refresh))
	golden(t, "v3_error_403_reissue_outside_acl", status, b)
	status, b = e.raw("POST", k3+"/acl/add-allowed-ips", `{"allowedIps":["127.0.0.0/8"]}`)
	mustStatus(t, "3.0 add prefix", 200, status, b)
	status, b = e.rawWith("POST", "/kms/v3/token/keys/"+tag+"/reissue-tokens", `{}`, withToken(refresh))
	mustStatus(t, "3.0 reissue inside the ACL", 200, status, b)
}

// TestV3TokensCrossAPI: one token generator per key, shared by both APIs;
// tokens issued through one API work on the other's token routes.
func TestV3TokensCrossAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "shared-tokens", "ECDSA")
	k1, k3, t3 := "/kms/v1/keys/"+tag, "/kms/v3/keys/"+tag, "/kms/v3/token/keys/"+tag

	// A generator activated by 3.0 issues tokens through 2.0 token-set.
	status, b := e.raw("POST", k3+"/activate-token-generator", "")
	mustStatus(t, "3.0 activate", 200, status, b)
	gen := field(t, b, "tokenGeneratorId")
	status, b = e.raw("GET", k1+"/token-generator", "")
	if status != 200 || data(t, b, "status") != "ACTIVE" || data(t, b, "tokenGeneratorId") != gen {
		t.Fatalf("2.0 sees the 3.0 generator as %d %s", status, b)
	}
	status, set2 := e.raw("POST", k1+"/token-set", `{}`)
	mustStatus(t, "2.0 token-set from a 3.0 generator", 200, status, set2)

	// 2.0 tokens on 3.0 token routes: the refresh token reissues.
	status, b = e.rawWith("POST", t3+"/reissue-tokens", `{}`, withToken(data(t, set2, "refreshToken")))
	mustStatus(t, "2.0 refresh token on 3.0 reissue-tokens", 200, status, b)
	access3 := field(t, b, "accessToken")
	status, b = e.rawWith("POST", t3+"/issue-access-token", `{}`, withToken(data(t, set2, "refreshToken")))
	mustStatus(t, "2.0 refresh token on 3.0 issue-access-token", 200, status, b)

	// 3.0 tokens on 2.0 token routes.
	status, b = e.rawWith("POST", k1+"/sign", `{"data":"aGVsbG8="}`, withToken(access3))
	mustStatus(t, "3.0 access token on 2.0 sign", 200, status, b)
	status, b = e.raw("POST", k3+"/issue-tokens", `{"refreshTokenHours":1}`)
	mustStatus(t, "3.0 issue-tokens", 200, status, b)
	refresh3 := field(t, b, "refreshToken")
	status, b = e.rawWith("PUT", k1+"/token-set", `{}`, withToken(refresh3))
	mustStatus(t, "3.0 refresh token on 2.0 token-set", 200, status, b)
	status, b = e.rawWith("POST", k1+"/access-token", `{}`, withToken(refresh3))
	mustStatus(t, "3.0 refresh token on 2.0 access-token", 200, status, b)
	// An access token is not a refresh token on 3.0 either.
	status, b = e.rawWith("POST", t3+"/reissue-tokens", `{}`, withToken(access3))
	mustStatus(t, "access token on reissue-tokens", 401, status, b)
	// The 3.0 token routes take the tag as issued (lower case).
	status, b = e.rawWith("POST", "/kms/v3/token/keys/"+upper(tag)+"/reissue-tokens", `{}`, withToken(refresh3))
	mustStatus(t, "upper-case tag on a token route", 401, status, b)

	// Replaced through 2.0: the 3.0 view follows, and every token stops working.
	e.raw("PUT", k1+"/token-generator", "")
	status, b = e.raw("GET", k3+"/token-generator", "")
	if status != 200 || field(t, b, "status") != "ENABLED" || field(t, b, "tokenGeneratorId") == gen {
		t.Fatalf("3.0 sees the replaced generator as %d %s", status, b)
	}
	status, b = e.rawWith("POST", t3+"/issue-access-token", `{}`, withToken(refresh3))
	mustStatus(t, "refresh token of a replaced generator", 401, status, b)
	// Deleted through 2.0: 3.0 sees it DISABLED; activated by 3.0 again: a new one.
	e.raw("DELETE", k1+"/token-generator", "")
	status, b = e.raw("GET", k3+"/token-generator", "")
	if status != 200 || string(b) != `{"status":"DISABLED"}`+"\n" && string(b) != `{"status":"DISABLED"}` {
		t.Fatalf("3.0 sees the deleted generator as %d %s", status, b)
	}
	status, b = e.raw("POST", k3+"/deactivate-token-generator", "")
	mustStatus(t, "3.0 deactivate an inactive generator", 200, status, b)
	status, b = e.raw("POST", k3+"/activate-token-generator", "")
	mustStatus(t, "3.0 activate again", 200, status, b)
}

// TestV3AccessUsageLog: 3.0 calls enter the key's usage log under the D9
// action names, seen through both APIs' activity routes.
func TestV3AccessUsageLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := newV3Key(t, e, "logged", "AES256")
	k1, k3 := "/kms/v1/keys/"+tag, "/kms/v3/keys/"+tag
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/acl", `{"enabled":true}`},
		{"PATCH", "/acl", `{"enabled":false}`},
		{"POST", "/acl/add-allowed-ips", `{"allowedIps":["127.0.0.1"]}`},
		{"POST", "/acl/remove-allowed-ips", `{"allowedIps":["127.0.0.1"]}`},
		{"POST", "/activate-token-generator", ""},
		{"POST", "/rotate-token-generator", ""},
		{"POST", "/issue-tokens", ""},
	} {
		status, b := e.raw(c.method, k3+c.path, c.body)
		mustStatus(t, c.method+" "+c.path, 200, status, b)
	}
	_, b := e.raw("POST", k3+"/issue-tokens", "")
	refresh := field(t, b, "refreshToken")
	for _, p := range []string{"/reissue-tokens", "/issue-access-token"} {
		status, b := e.rawWith("POST", "/kms/v3/token/keys/"+tag+p, "", withToken(refresh))
		mustStatus(t, p, 200, status, b)
	}
	status, b := e.raw("POST", k3+"/deactivate-token-generator", "")
	mustStatus(t, "deactivate", 200, status, b)

	want := []string{"DeleteTokenGenerator", "IssueKeyAccessToken", "ReissueKeyTokens", "IssueKeyTokens", "IssueKeyTokens",
		"UpdateTokenGenerator", "CreateTokenGenerator", "DeleteAclRule", "AddAclRule", "DisableIpAcl", "EnableIpAcl", "CreateKey"}
	status, b = e.raw("GET", k3+"/activities?pageSize=50", "")
	mustStatus(t, "3.0 activities", 200, status, b)
	var v3 struct {
		Activities []struct {
			ActionCode, RequestType string
		} `json:"activities"`
		TotalCount int `json:"totalCount"`
	}
	if err := json.Unmarshal(b, &v3); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range v3.Activities {
		got = append(got, a.ActionCode)
	}
	if !slices.Equal(got, want) || v3.TotalCount != len(want) {
		t.Fatalf("3.0 activities: got %v (total %d), want %v", got, v3.TotalCount, want)
	}

	status, b = e.raw("GET", k1+"/activities?pageSize=50", "")
	mustStatus(t, "2.0 activities", 200, status, b)
	var v2 struct {
		Data struct {
			ActivityLogList []struct {
				Data struct {
					API struct {
						Action string `json:"action"`
					} `json:"api"`
				} `json:"data"`
			} `json:"activityLogList"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &v2); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, a := range v2.Data.ActivityLogList {
		got = append(got, a.Data.API.Action)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("2.0 activities: got %v, want %v", got, want)
	}

	// The token calls, by requestor and type.
	status, b = e.raw("GET", k3+"/activities?actionCode=ReissueKeyTokens&actionCode=IssueKeyAccessToken&requestorIp=127.0.0.1&requestType=API&resultCode=SUCCESS", "")
	mustStatus(t, "filtered", 200, status, b)
	if err := json.Unmarshal(b, &v3); err != nil || v3.TotalCount != 2 {
		t.Fatalf("filtered activities: %s", b)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
