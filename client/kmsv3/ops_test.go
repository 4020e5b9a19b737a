package kmsv3

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"
)

const (
	t0     = "2026-11-24T13:51:53.123Z"
	t1     = "2026-11-27T13:51:53.123Z"
	ct1    = "ncpkms:v1:AAAA"
	ct2    = "ncpkms:v2:BBBB"
	sig1   = "ncpkms:v1:c2ln"
	keyURL = "/kms/v3/keys/" + testTag
	tokURL = "/kms/v3/token/keys/" + testTag
)

var (
	time0 = time.Date(2026, 11, 24, 13, 51, 53, 123e6, time.UTC)
	time1 = time.Date(2026, 11, 27, 13, 51, 53, 123e6, time.UTC)
)

func keyJSON(status, memo, destroy string) string {
	return `{"keyTag":"` + testTag + `","keyName":"orders","nrn":"nrn:PUB:KMS::1234567:Key/1","keyType":"AES256",` +
		`"protectionType":"BASIC","status":"` + status + `","memo":` + memo + `,"convergent":false,"currentVersion":2,` +
		`"createdDateTime":"` + t0 + `","statusChangedDateTime":"` + t0 + `","scheduledDestroyDateTime":` + destroy + `}`
}

func wantKey(status string, memo *string, destroy *time.Time) *Key {
	return &Key{KeyTag: testTag, KeyName: "orders", NRN: "nrn:PUB:KMS::1234567:Key/1", KeyType: AES256,
		ProtectionType: Basic, Status: status, Memo: memo, CurrentVersion: 2, CreatedDateTime: time0,
		StatusChangedDateTime: time0, ScheduledDestroyDateTime: destroy}
}

func ptr[T any](v T) *T { return &v }

const versionJSON = `{"version":2,"status":"ENABLED","current":true,"createdDateTime":"` + t0 + `","statusChangedDateTime":"` + t0 + `"}`

var wantVersion = &Version{Version: 2, Status: Enabled, Current: true, CreatedDateTime: time0, StatusChangedDateTime: time0}

const aclJSON = `{"enabled":true,"allowedIps":["10.0.0.1","10.0.0.0/24","10.1.*.*"]}`

var wantACL = &ACL{Enabled: true, AllowedIps: []string{"10.0.0.1", "10.0.0.0/24", "10.1.*.*"}}

const genJSON = `{"status":"ENABLED","tokenGeneratorId":"2c26b46b68ffc68ff99b453c1d30"}`

var wantGen = &TokenGenerator{Status: Enabled, TokenGeneratorID: "2c26b46b68ffc68ff99b453c1d30"}

const tokensJSON = `{"accessToken":"a.b.c","refreshToken":"d.e.f","accessTokenExpireDateTime":"` + t1 + `","refreshTokenExpireDateTime":null}`

var wantTokens = &Tokens{AccessToken: "a.b.c", RefreshToken: "d.e.f", AccessTokenExpireDateTime: &time1}

// op is one operation of ncp-kms-api-v3.md §1: the call, the request the
// server must see and the answer it sends, and what the call returns.
type op struct {
	id     string // operationId
	token  bool   // made by a token client
	method string
	path   string // escaped path
	query  string // raw query, as sent
	body   string // exact request body; "" for none
	patch  bool   // Content-Type application/merge-patch+json
	status int
	answer string
	call   func(ctx context.Context, c *Client) (any, error)
	want   any
}

// ops covers all 45 operations.
func ops() []op {
	const encBody = `{"plaintext":"aGVsbG8=","context":"Y3R4"}`
	const batchEncBody = `{"requests":[{"plaintext":"aGVsbG8="},{"plaintext":"","context":"Y3R4"}]}`
	const batchDecBody = `{"requests":[{"ciphertext":"` + ct1 + `"},{"ciphertext":"` + ct2 + `","context":"Y3R4"}]}`
	encItems := []EncryptRequest{{Plaintext: []byte("hello")}, {Plaintext: []byte{}, Context: []byte("ctx")}}
	decItems := []DecryptRequest{{Ciphertext: ct1}, {Ciphertext: ct2, Context: []byte("ctx")}}
	pub := `{"version":2,"publicKey":"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}`
	wantPub := &PublicKey{Version: 2, PublicKey: "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}
	var rows []op
	// The crypto operations, on the account route and on the token route.
	for _, token := range []bool{false, true} {
		base, sfx := keyURL, ""
		if token {
			base, sfx = tokURL, "WithToken"
		}
		rows = append(rows,
			op{id: "encrypt" + sfx, token: token, method: "POST", path: base + "/encrypt", body: encBody,
				answer: `{"ciphertext":"` + ct1 + `"}`, want: ct1,
				call: func(ctx context.Context, c *Client) (any, error) {
					return c.Encrypt(ctx, testTag, []byte("hello"), []byte("ctx"))
				}},
			op{id: "decrypt" + sfx, token: token, method: "POST", path: base + "/decrypt",
				body: `{"ciphertext":"` + ct1 + `"}`, answer: `{"plaintext":"aGVsbG8="}`, want: []byte("hello"),
				call: func(ctx context.Context, c *Client) (any, error) { return c.Decrypt(ctx, testTag, ct1, nil) }},
			op{id: "reEncrypt" + sfx, token: token, method: "POST", path: base + "/re-encrypt",
				body: `{"ciphertext":"` + ct1 + `","context":"Y3R4"}`, answer: `{"ciphertext":"` + ct2 + `"}`, want: ct2,
				call: func(ctx context.Context, c *Client) (any, error) {
					return c.ReEncrypt(ctx, testTag, ct1, []byte("ctx"))
				}},
			op{id: "batchEncrypt" + sfx, token: token, method: "POST", path: base + "/batch-encrypt", body: batchEncBody,
				answer: `{"results":{"1":{"ciphertext":"` + ct2 + `"},"0":{"ciphertext":"` + ct1 + `"}}}`,
				want:   []string{ct1, ct2},
				call:   func(ctx context.Context, c *Client) (any, error) { return c.BatchEncrypt(ctx, testTag, encItems) }},
			op{id: "batchDecrypt" + sfx, token: token, method: "POST", path: base + "/batch-decrypt", body: batchDecBody,
				answer: `{"results":{"0":{"plaintext":"aGVsbG8="},"1":{"plaintext":""}}}`,
				want:   [][]byte{[]byte("hello"), {}},
				call:   func(ctx context.Context, c *Client) (any, error) { return c.BatchDecrypt(ctx, testTag, decItems) }},
			op{id: "batchReEncrypt" + sfx, token: token, method: "POST", path: base + "/batch-re-encrypt", body: batchDecBody,
				answer: `{"results":{"0":{"ciphertext":"` + ct2 + `"},"1":{"ciphertext":"` + ct2 + `"}}}`,
				want:   []string{ct2, ct2},
				call:   func(ctx context.Context, c *Client) (any, error) { return c.BatchReEncrypt(ctx, testTag, decItems) }},
			op{id: "sign" + sfx, token: token, method: "POST", path: base + "/sign", body: `{"data":"bXNn"}`,
				answer: `{"signature":"` + sig1 + `"}`, want: sig1,
				call: func(ctx context.Context, c *Client) (any, error) { return c.Sign(ctx, testTag, []byte("msg")) }},
			op{id: "verify" + sfx, token: token, method: "POST", path: base + "/verify",
				body: `{"data":"bXNn","signature":"` + sig1 + `"}`, answer: `{"valid":false}`, want: false,
				call: func(ctx context.Context, c *Client) (any, error) { return c.Verify(ctx, testTag, []byte("msg"), sig1) }},
			op{id: "issueCustomKey" + sfx, token: token, method: "POST", path: base + "/issue-custom-key",
				body:   `{"requestPlainKey":true,"bits":512,"context":"Y3R4"}`,
				answer: `{"ciphertext":"` + ct2 + `","plaintext":"AAEC","version":2}`,
				want:   &CustomKey{Ciphertext: ct2, Plaintext: []byte{0, 1, 2}, Version: 2},
				call: func(ctx context.Context, c *Client) (any, error) {
					return c.IssueCustomKey(ctx, testTag, CustomKeyRequest{RequestPlainKey: true, Bits: 512, Context: []byte("ctx")})
				}},
			op{id: "getPublicKey" + sfx, token: token, method: "GET", path: base + "/versions/2/public-key",
				answer: pub, want: wantPub,
				call: func(ctx context.Context, c *Client) (any, error) { return c.GetPublicKey(ctx, testTag, 2) }},
		)
	}
	return append(rows,
		op{id: "createKey", method: "POST", path: "/kms/v3/keys",
			body:   `{"keyName":"orders","keyType":"AES256","protectionType":"BASIC","memo":"m","rotation":{"enabled":true,"periodDays":30}}`,
			status: 201, answer: keyJSON("ENABLED", `"m"`, "null"), want: wantKey(Enabled, ptr("m"), nil),
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKey(ctx, CreateKeyRequest{KeyName: "orders", KeyType: AES256, ProtectionType: Basic,
					Memo: "m", Rotation: RotationSettings{Enabled: true, PeriodDays: 30}})
			}},
		op{id: "listKeys", method: "GET", path: "/kms/v3/keys", query: "pageNo=2&pageSize=50",
			answer: `{"keys":[` + keyJSON("ENABLED", "null", "null") + `],"pageNo":2,"pageSize":50,"totalCount":101}`,
			want:   &KeyList{Keys: []Key{*wantKey(Enabled, nil, nil)}, PageNo: 2, PageSize: 50, TotalCount: 101},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListKeys(ctx, Page{PageNo: 2, PageSize: 50})
			}},
		op{id: "getKey", method: "GET", path: keyURL, answer: keyJSON("DISABLED", "null", "null"),
			want: wantKey(Disabled, nil, nil),
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKey(ctx, testTag) }},
		op{id: "updateKey", method: "PATCH", path: keyURL, patch: true,
			body:   `{"keyName":"orders","memo":null,"status":"DISABLED"}`,
			answer: keyJSON("DISABLED", "null", "null"), want: wantKey(Disabled, nil, nil),
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateKey(ctx, testTag, UpdateKeyRequest{KeyName: "orders", ClearMemo: true, Status: Disabled})
			}},
		op{id: "deleteKey", method: "DELETE", path: keyURL, status: 204, want: nil,
			call: func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteKey(ctx, testTag) }},
		op{id: "requestKeyDeletion", method: "POST", path: keyURL + "/request-deletion",
			answer: keyJSON("REVOKED", "null", `"`+t1+`"`), want: wantKey(Revoked, nil, &time1),
			call: func(ctx context.Context, c *Client) (any, error) { return c.RequestKeyDeletion(ctx, testTag) }},
		op{id: "cancelKeyDeletion", method: "POST", path: keyURL + "/cancel-deletion",
			answer: keyJSON("DISABLED", "null", "null"), want: wantKey(Disabled, nil, nil),
			call: func(ctx context.Context, c *Client) (any, error) { return c.CancelKeyDeletion(ctx, testTag) }},
		op{id: "getKeyRotation", method: "GET", path: keyURL + "/rotation",
			answer: `{"enabled":false,"periodDays":0,"nextRotationDateTime":null}`, want: &Rotation{},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKeyRotation(ctx, testTag) }},
		op{id: "updateKeyRotation", method: "PATCH", path: keyURL + "/rotation", patch: true,
			body:   `{"enabled":true,"periodDays":730}`,
			answer: `{"enabled":true,"periodDays":730,"nextRotationDateTime":"` + t1 + `"}`,
			want:   &Rotation{Enabled: true, PeriodDays: 730, NextRotationDateTime: &time1},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateKeyRotation(ctx, testTag, UpdateKeyRotationRequest{Enabled: ptr(true), PeriodDays: ptr(730)})
			}},
		op{id: "createKeyVersion", method: "POST", path: keyURL + "/versions", status: 201,
			answer: versionJSON, want: wantVersion,
			call: func(ctx context.Context, c *Client) (any, error) { return c.CreateKeyVersion(ctx, testTag) }},
		op{id: "listKeyVersions", method: "GET", path: keyURL + "/versions", query: "pageSize=1",
			answer: `{"versions":[` + versionJSON + `],"pageNo":0,"pageSize":1,"totalCount":2}`,
			want:   &VersionList{Versions: []Version{*wantVersion}, PageSize: 1, TotalCount: 2},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListKeyVersions(ctx, testTag, Page{PageSize: 1})
			}},
		op{id: "getKeyVersion", method: "GET", path: keyURL + "/versions/2", answer: versionJSON, want: wantVersion,
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKeyVersion(ctx, testTag, 2) }},
		op{id: "updateKeyVersion", method: "PATCH", path: keyURL + "/versions/1", patch: true,
			body: `{"status":"DISABLED"}`, answer: versionJSON, want: wantVersion,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateKeyVersion(ctx, testTag, 1, UpdateKeyVersionRequest{Status: Disabled})
			}},
		op{id: "getKeyAcl", method: "GET", path: keyURL + "/acl", answer: aclJSON, want: wantACL,
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKeyAcl(ctx, testTag) }},
		op{id: "updateKeyAcl", method: "PATCH", path: keyURL + "/acl", patch: true, body: `{"enabled":true}`,
			answer: aclJSON, want: wantACL,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateKeyAcl(ctx, testTag, UpdateKeyAclRequest{Enabled: ptr(true)})
			}},
		op{id: "addKeyAclAllowedIps", method: "POST", path: keyURL + "/acl/add-allowed-ips",
			body: `{"allowedIps":["10.0.0.1","10.0.0.0/24"]}`, answer: aclJSON, want: wantACL,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.AddKeyAclAllowedIps(ctx, testTag, []string{"10.0.0.1", "10.0.0.0/24"})
			}},
		op{id: "removeKeyAclAllowedIps", method: "POST", path: keyURL + "/acl/remove-allowed-ips",
			body: `{"allowedIps":["10.9.9.9"]}`, answer: aclJSON, want: wantACL,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RemoveKeyAclAllowedIps(ctx, testTag, []string{"10.9.9.9"})
			}},
		op{id: "getKeyTokenGenerator", method: "GET", path: keyURL + "/token-generator",
			answer: `{"status":"DISABLED"}`, want: &TokenGenerator{Status: Disabled},
			call: func(ctx context.Context, c *Client) (any, error) { return c.GetKeyTokenGenerator(ctx, testTag) }},
		op{id: "activateKeyTokenGenerator", method: "POST", path: keyURL + "/activate-token-generator",
			answer: genJSON, want: wantGen,
			call: func(ctx context.Context, c *Client) (any, error) { return c.ActivateKeyTokenGenerator(ctx, testTag) }},
		op{id: "rotateKeyTokenGenerator", method: "POST", path: keyURL + "/rotate-token-generator",
			answer: genJSON, want: wantGen,
			call: func(ctx context.Context, c *Client) (any, error) { return c.RotateKeyTokenGenerator(ctx, testTag) }},
		op{id: "deactivateKeyTokenGenerator", method: "POST", path: keyURL + "/deactivate-token-generator",
			answer: `{"status":"DISABLED"}`, want: &TokenGenerator{Status: Disabled},
			call: func(ctx context.Context, c *Client) (any, error) { return c.DeactivateKeyTokenGenerator(ctx, testTag) }},
		op{id: "issueKeyTokens", method: "POST", path: keyURL + "/issue-tokens",
			body:   `{"accessTokenMinutes":60,"refreshTokenUnlimited":true}`,
			answer: tokensJSON, want: wantTokens,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.IssueKeyTokens(ctx, testTag, IssueTokensRequest{AccessTokenMinutes: 60, RefreshTokenUnlimited: true})
			}},
		op{id: "reissueKeyTokens", token: true, method: "POST", path: tokURL + "/reissue-tokens", body: `{}`,
			answer: tokensJSON, want: wantTokens,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReissueKeyTokens(ctx, testTag, IssueTokensRequest{})
			}},
		op{id: "issueKeyAccessToken", token: true, method: "POST", path: tokURL + "/issue-access-token",
			body:   `{"accessTokenMinutes":1051200}`,
			answer: `{"accessToken":"g.h.i","accessTokenExpireDateTime":"` + t1 + `"}`,
			want:   &AccessToken{AccessToken: "g.h.i", AccessTokenExpireDateTime: &time1},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.IssueKeyAccessToken(ctx, testTag, IssueAccessTokenRequest{AccessTokenMinutes: 1051200})
			}},
		op{id: "listKeyActivities", method: "GET", path: keyURL + "/activities",
			query: "actionCode=Encrypt&actionCode=BatchEncrypt&fromDateTime=2026-11-24T13%3A51%3A53.123Z&pageNo=1&" +
				"requestorIp=10.0.0.1&resultCode=SUCCESS&toDateTime=2026-11-27T13%3A51%3A53.123Z",
			answer: `{"activities":[{"activityDateTime":"` + t0 + `","actionCode":"Encrypt","resultCode":"SUCCESS",` +
				`"requestType":"API","requestorId":"AKIDTEST","requestorIp":"10.0.0.1","keyVersion":2,"message":""}],` +
				`"pageNo":1,"pageSize":20,"totalCount":21}`,
			want: &ActivityList{Activities: []Activity{{ActivityDateTime: time0, ActionCode: "Encrypt", ResultCode: "SUCCESS",
				RequestType: "API", RequestorID: "AKIDTEST", RequestorIP: "10.0.0.1", KeyVersion: ptr(2)}},
				PageNo: 1, PageSize: 20, TotalCount: 21},
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListKeyActivities(ctx, testTag, ActivitiesRequest{Page: Page{PageNo: 1},
					ActionCode: []string{"Encrypt", "BatchEncrypt"}, ResultCode: []string{"SUCCESS"},
					RequestorIP: []string{"10.0.0.1"}, From: time0.In(time.FixedZone("KST", 9*3600)), To: time1})
			}},
	)
}

// TestOperations calls every operation once against the fake and checks
// the request the server saw (method, path, query, authentication, content
// type, exact body) and the decoded answer.
func TestOperations(t *testing.T) {
	t.Parallel()
	rows := ops()
	ids := map[string]bool{}
	for _, o := range rows {
		ids[o.id] = true
	}
	if len(rows) != 45 || len(ids) != 45 {
		t.Fatalf("%d rows, %d operations; want 45", len(rows), len(ids))
	}
	for _, o := range rows {
		t.Run(o.id, func(t *testing.T) {
			t.Parallel()
			status := o.status
			if status == 0 {
				status = http.StatusOK
			}
			f := newFake(t, answer{status: status, body: o.answer, header: map[string]string{HeaderRequestID: "rid-1"}})
			c := f.account(t)
			if o.token {
				c = f.token(t)
			}
			got, err := o.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != o.method || r.path != o.path || r.query != o.query {
				t.Errorf("request %s %s?%s, want %s %s?%s", r.method, r.path, r.query, o.method, o.path, o.query)
			}
			if !bytes.Equal(r.body, []byte(o.body)) {
				t.Errorf("body %s\nwant %s", r.body, o.body)
			}
			wantCT := ""
			switch {
			case o.patch:
				wantCT = "application/merge-patch+json"
			case o.body != "":
				wantCT = "application/json"
			}
			if r.contentType != wantCT {
				t.Errorf("Content-Type %q, want %q", r.contentType, wantCT)
			}
			if o.token != (r.header.Get(HeaderToken) != "") {
				t.Errorf("token header %q on a token=%v route", r.header.Get(HeaderToken), o.token)
			}
			if v := reflect.ValueOf(got); o.want == nil && got != nil && !(v.Kind() == reflect.Pointer && v.IsNil()) {
				t.Errorf("got %#v, want nothing", got)
			} else if o.want != nil && !reflect.DeepEqual(got, o.want) {
				t.Errorf("got  %s\nwant %s", show(got), show(o.want))
			}
		})
	}
}

// show prints v with pointers followed, for a failure message.
func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%#v", v)
}
