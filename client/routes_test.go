package client

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// k is the path of the test key.
const k = "/kms/v1/keys/" + testTag

// routeCase is one call of a typed method: what it must send, and what it
// must make of the answer's data.
type routeCase struct {
	name     string
	call     func(context.Context, *Client) (any, error)
	token    bool // call with a token client (fake.tokenClient) instead of an account client
	method   string
	uri      string
	body     string // "" = no body
	data     string // JSON of the answer's data
	want     any
	wantNone bool // the method returns only an error
}

// TestRoutes checks, for every typed method, the method, request URI and
// body sent, that the request verifies as the server will verify it, and
// how the answer's data is decoded.
func TestRoutes(t *testing.T) {
	t.Parallel()
	runRoutes(t, []routeCase{
		{
			name: "CreateKey",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKey(ctx, CreateKeyRequest{KeyName: "orders", KeyType: "AES256", ProtectionType: "BASIC",
					IsAutoRotation: true, RotationPeriod: 30, Memo: "m", IsConvergent: true})
			},
			method: "POST", uri: "/kms/v1/keys",
			body: `{"keyName":"orders","keyType":"AES256","protectionType":"BASIC","isAutoRotation":true,"rotationPeriod":30,"memo":"m","isConvergent":true}`,
			data: `{"keyId":7,"keyTag":"` + testTag + `","keyName":"orders","keyType":"AES256","status":"ENABLE","keystoreId":1,
				"protectionType":"BASIC","memo":"m","isConvergent":true,"isAutoRotation":true,"rotationPeriod":30,
				"nextRotationDate":1736044211270,"registerDate":1733452211270}`,
			want: &Key{KeyID: 7, KeyTag: testTag, KeyName: "orders", KeyType: "AES256", Status: "ENABLE", KeystoreID: 1,
				ProtectionType: "BASIC", Memo: "m", IsConvergent: true, IsAutoRotation: true, RotationPeriod: 30,
				NextRotationDate: ptr(1736044211270), RegisterDate: 1733452211270},
		},
		{
			name: "CreateKey minimal",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateKey(ctx, CreateKeyRequest{KeyName: "sig", KeyType: "ECDSA"})
			},
			method: "POST", uri: "/kms/v1/keys",
			body: `{"keyName":"sig","keyType":"ECDSA","isAutoRotation":false}`,
			data: `{"keyId":8,"keyTag":"t","keyName":"sig","keyType":"ECDSA","status":"ENABLE","keystoreId":1,"protectionType":"BASIC",
				"memo":"","isConvergent":false,"isAutoRotation":false,"rotationPeriod":90,"nextRotationDate":null,"registerDate":5}`,
			want: &Key{KeyID: 8, KeyTag: "t", KeyName: "sig", KeyType: "ECDSA", Status: "ENABLE", KeystoreID: 1,
				ProtectionType: "BASIC", RotationPeriod: 90, RegisterDate: 5},
		},
		{
			name:   "ListKeys with query",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListKeys(ctx, 2, 50) },
			method: "GET", uri: "/kms/v1/keys?pageNo=2&pageSize=50",
			data: `{"keyList":[{"keyId":2,"keyTag":"b","keyName":"bee","keyType":"RSA2048","status":"REVOKE","protectionType":"BASIC",
				"isConvergent":false,"registerDate":20,"destroyDate":30},{"keyId":1,"keyTag":"a","keyName":"ant","keyType":"AES256",
				"status":"ENABLE","protectionType":"COMMON_HSM","isConvergent":true,"registerDate":10,"destroyDate":null}],
				"currentPageNo":2,"totalPageNo":2,"totalCount":52}`,
			want: &KeyList{KeyList: []KeySummary{
				{KeyID: 2, KeyTag: "b", KeyName: "bee", KeyType: "RSA2048", Status: "REVOKE", ProtectionType: "BASIC", RegisterDate: 20, DestroyDate: ptr(30)},
				{KeyID: 1, KeyTag: "a", KeyName: "ant", KeyType: "AES256", Status: "ENABLE", ProtectionType: "COMMON_HSM", IsConvergent: true, RegisterDate: 10},
			}, CurrentPageNo: 2, TotalPageNo: 2, TotalCount: 52},
		},
		{
			name:   "ListKeys defaults",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListKeys(ctx, 0, 0) },
			method: "GET", uri: "/kms/v1/keys",
			data: `{"keyList":[],"currentPageNo":1,"totalPageNo":0,"totalCount":0}`,
			want: &KeyList{KeyList: []KeySummary{}, CurrentPageNo: 1},
		},
		{
			name:   "GetKey",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetKey(ctx, testTag) },
			method: "GET", uri: k,
			data: `{"keyId":7,"keyTag":"` + testTag + `","keyName":"orders","nrn":"nrn:PUB:KMS::1:Key/` + testTag + `",
				"baseUrl":"http://127.0.0.1:8383","keyType":"AES256","status":"DISABLE","keystoreId":1,"currentVersion":3,
				"protectionType":"BASIC","memo":"","isConvergent":false,"isAutoRotation":false,"rotationPeriod":90,
				"nextRotationDate":null,"registerDate":1733452211270,"destroyDate":null}`,
			want: &Key{KeyID: 7, KeyTag: testTag, KeyName: "orders", Nrn: "nrn:PUB:KMS::1:Key/" + testTag,
				BaseURL: "http://127.0.0.1:8383", KeyType: "AES256", Status: "DISABLE", KeystoreID: 1, CurrentVersion: 3,
				ProtectionType: "BASIC", RotationPeriod: 90, RegisterDate: 1733452211270},
		},
		{
			name:   "EnableKey",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.EnableKey(ctx, testTag) },
			method: "POST", uri: k + "/enable",
			data: `{"keyTag":"` + testTag + `","status":"ENABLE","statusDate":1733452211270}`,
			want: &StatusChange{KeyTag: testTag, Status: "ENABLE", StatusDate: 1733452211270},
		},
		{
			name:   "DisableKey",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DisableKey(ctx, testTag) },
			method: "POST", uri: k + "/disable",
			data: `{"keyTag":"t","status":"DISABLE","statusDate":1}`,
			want: &StatusChange{KeyTag: "t", Status: "DISABLE", StatusDate: 1},
		},
		{
			name:   "UpdateName",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UpdateName(ctx, testTag, "newKeyName") },
			method: "PUT", uri: k + "/name", body: `{"keyName":"newKeyName"}`,
			data: `{"keyTag":"t","keyName":"newKeyName"}`,
			want: &NameChange{KeyTag: "t", KeyName: "newKeyName"},
		},
		{
			name:   "UpdateMemo empty",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UpdateMemo(ctx, testTag, "") },
			method: "PUT", uri: k + "/memo", body: `{"memo":""}`,
			data: `{"keyTag":"t","memo":""}`,
			want: &MemoChange{KeyTag: "t"},
		},
		{
			name:   "Rotate",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Rotate(ctx, testTag) },
			method: "POST", uri: k + "/rotate",
			data: `{"keyTag":"t","version":4,"rotatedDate":1733462407906}`,
			want: &Rotation{KeyTag: "t", Version: 4, RotatedDate: 1733462407906},
		},
		{
			name:   "EnableAutoRotation",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.EnableAutoRotation(ctx, testTag) },
			method: "POST", uri: k + "/enable-auto-rotation",
			data: `{"keyTag":"t","isAutoRotation":true,"rotationPeriod":90,"nextRotationDate":1741228211270}`,
			want: &AutoRotation{KeyTag: "t", IsAutoRotation: true, RotationPeriod: 90, NextRotationDate: ptr(1741228211270)},
		},
		{
			name:   "DisableAutoRotation",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DisableAutoRotation(ctx, testTag) },
			method: "POST", uri: k + "/disable-auto-rotation",
			data: `{"keyTag":"t","isAutoRotation":false}`,
			want: &AutoRotation{KeyTag: "t"},
		},
		{
			name:   "UpdateRotationPeriod",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.UpdateRotationPeriod(ctx, testTag, 90) },
			method: "PUT", uri: k + "/rotation-period", body: `{"rotationPeriod":90}`,
			data: `{"keyTag":"t","rotationPeriod":90,"nextRotationDate":9}`,
			want: &RotationPeriodChange{KeyTag: "t", RotationPeriod: 90, NextRotationDate: ptr(9)},
		},
		{
			name:   "ListVersions",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListVersions(ctx, testTag) },
			method: "GET", uri: k + "/versions",
			data: `{"keyTag":"t","currentVersion":2,"versionList":[{"version":1,"status":"DISABLE","statusDate":3,"rotatedDate":1},
				{"version":2,"status":"ENABLE","statusDate":2,"rotatedDate":2}]}`,
			want: &VersionList{KeyTag: "t", CurrentVersion: 2, VersionList: []Version{
				{Version: 1, Status: "DISABLE", StatusDate: 3, RotatedDate: 1},
				{Version: 2, Status: "ENABLE", StatusDate: 2, RotatedDate: 2}}},
		},
		{
			name:   "EnableVersion",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.EnableVersion(ctx, testTag, 1) },
			method: "POST", uri: k + "/versions/1/enable",
			data: `{"version":1,"status":"ENABLE","statusDate":1733460541703}`,
			want: &VersionStatus{Version: 1, Status: "ENABLE", StatusDate: 1733460541703},
		},
		{
			name:   "DisableVersion",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DisableVersion(ctx, testTag, 12) },
			method: "POST", uri: k + "/versions/12/disable",
			data: `{"version":12,"status":"DISABLE","statusDate":1733461810876}`,
			want: &VersionStatus{Version: 12, Status: "DISABLE", StatusDate: 1733461810876},
		},
		{
			name:   "RequestDeletion",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.RequestDeletion(ctx, testTag) },
			method: "POST", uri: k + "/request-deletion",
			data: `{"keyTag":"t","status":"REVOKE","statusDate":1733468239421}`,
			want: &StatusChange{KeyTag: "t", Status: "REVOKE", StatusDate: 1733468239421},
		},
		{
			name:   "CancelDeletion",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CancelDeletion(ctx, testTag) },
			method: "POST", uri: k + "/cancel-deletion",
			data: `{"keyTag":"t","status":"DISABLE","statusDate":5}`,
			want: &StatusChange{KeyTag: "t", Status: "DISABLE", StatusDate: 5},
		},
		{
			name:   "DeleteKey",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteKey(ctx, testTag) },
			method: "DELETE", uri: k, data: `null`, wantNone: true,
		},
		{
			name:   "PublicKey current",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.PublicKey(ctx, testTag, 0) },
			method: "POST", uri: k + "/get-pub-key", body: `{}`,
			data: `{"publicKey":"-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"}`,
			want: "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n",
		},
		{
			name:   "PublicKey version",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.PublicKey(ctx, testTag, 3) },
			method: "POST", uri: k + "/get-pub-key", body: `{"keyVersion":3}`,
			data: `{"publicKey":"PEM"}`, want: "PEM",
		},
		{
			name: "Encrypt",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Encrypt(ctx, testTag, []byte("hello"), nil)
			},
			method: "POST", uri: k + "/encrypt", body: `{"plaintext":"aGVsbG8="}`,
			data: `{"ciphertext":"ncpkms:v1:abc"}`, want: "ncpkms:v1:abc",
		},
		{
			name: "Encrypt with context",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Encrypt(ctx, testTag, []byte{0xff, 0}, []byte("ctx"))
			},
			method: "POST", uri: k + "/encrypt", body: `{"plaintext":"/wA=","context":"Y3R4"}`,
			data: `{"ciphertext":"ncpkms:v2:abc"}`, want: "ncpkms:v2:abc",
		},
		{
			name: "Decrypt",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Decrypt(ctx, testTag, "ncpkms:v1:abc", []byte("ctx"))
			},
			method: "POST", uri: k + "/decrypt", body: `{"ciphertext":"ncpkms:v1:abc","context":"Y3R4"}`,
			data: `{"plaintext":"aGVsbG8="}`, want: []byte("hello"),
		},
		{
			name: "CreateCustomKey",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateCustomKey(ctx, testTag, CustomKeyRequest{RequestPlainKey: true, Bits: 128, Context: []byte("c")})
			},
			method: "POST", uri: k + "/create-custom-key", body: `{"requestPlainKey":true,"bits":128,"context":"Yw=="}`,
			data: `{"ciphertext":"ncpkms:v2:xyz","plaintext":"AAECAwQFBgcICQoLDA0ODw==","key_version":2}`,
			want: &CustomKey{Ciphertext: "ncpkms:v2:xyz", Plaintext: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, KeyVersion: 2},
		},
		{
			name: "CreateCustomKey defaults",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateCustomKey(ctx, testTag, CustomKeyRequest{})
			},
			method: "POST", uri: k + "/create-custom-key", body: `{"requestPlainKey":false}`,
			data: `{"ciphertext":"ncpkms:v1:xyz","key_version":1}`,
			want: &CustomKey{Ciphertext: "ncpkms:v1:xyz", KeyVersion: 1},
		},
		{
			name: "ReEncrypt",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReEncrypt(ctx, testTag, "ncpkms:v1:abc", nil)
			},
			method: "POST", uri: k + "/re-encrypt", body: `{"ciphertext":"ncpkms:v1:abc"}`,
			data: `{"newCiphertext":"ncpkms:v3:def"}`, want: "ncpkms:v3:def",
		},
		{
			name:   "Sign",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Sign(ctx, testTag, []byte("msg")) },
			method: "POST", uri: k + "/sign", body: `{"data":"bXNn"}`,
			data: `{"signature":"ncpkms:v1:c2ln"}`, want: "ncpkms:v1:c2ln",
		},
		{
			name:   "Sign empty message",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Sign(ctx, testTag, nil) },
			method: "POST", uri: k + "/sign", body: `{"data":""}`,
			data: `{"signature":"ncpkms:v1:c2ln"}`, want: "ncpkms:v1:c2ln",
		},
		{
			name: "Verify",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Verify(ctx, testTag, []byte("msg"), "ncpkms:v1:c2ln")
			},
			method: "POST", uri: k + "/verify", body: `{"data":"bXNn","signature":"ncpkms:v1:c2ln"}`,
			data: `{"valid":true}`, want: true,
		},
		{
			name: "Verify string false",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Verify(ctx, testTag, []byte("msg"), "ncpkms:v1:c2ln")
			},
			method: "POST", uri: k + "/verify", body: `{"data":"bXNn","signature":"ncpkms:v1:c2ln"}`,
			data: `{"valid":"false"}`, want: false,
		},
		{
			name:   "CreateAccessKey",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateAccessKey(ctx, 3, "") },
			method: "POST", uri: "/nkms/v1/access-keys", body: `{"keystoreId":3}`,
			data: `{"accessKey":"AK2","secretKey":"SK2","keystoreId":3,"role":"admin"}`,
			want: &AccessKeyCredentials{AccessKey: "AK2", SecretKey: "SK2", KeystoreID: 3, Role: "admin"},
		},
		{
			name:   "CreateAccessKey with role",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateAccessKey(ctx, 3, "viewer") },
			method: "POST", uri: "/nkms/v1/access-keys", body: `{"keystoreId":3,"role":"viewer"}`,
			data: `{"accessKey":"AK3","secretKey":"SK3","keystoreId":3,"role":"viewer"}`,
			want: &AccessKeyCredentials{AccessKey: "AK3", SecretKey: "SK3", KeystoreID: 3, Role: "viewer"},
		},
		{
			name:   "ListAccessKeys",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListAccessKeys(ctx) },
			method: "GET", uri: "/nkms/v1/access-keys",
			data: `{"accessKeyList":[{"accessKey":"AK2","keystoreId":3,"role":"admin","createdDate":5}]}`,
			want: []AccessKey{{AccessKey: "AK2", KeystoreID: 3, Role: "admin", CreatedDate: 5}},
		},
	})
}

// runRoutes runs each case against its own fake server; see TestRoutes.
func runRoutes(t *testing.T, tests []routeCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, success(tc.data))
			c := f.client(t)
			if tc.token {
				c = f.tokenClient(t)
			}
			got, err := tc.call(t.Context(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !tc.wantNone {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.AuthErr != nil {
				t.Errorf("request did not verify: %v", r.AuthErr)
			}
			switch dump := strings.ToLower(string(r.Dump)); {
			case tc.token && (r.Token != testToken || strings.Contains(dump, "x-ncp-apigw-") || strings.Contains(dump, "x-ncp-iam-")):
				t.Errorf("token request carries token %q and account headers:\n%s\nwant the token alone", r.Token, r.Dump)
			case !tc.token && strings.Contains(dump, headerToken):
				t.Errorf("account request carries a token:\n%s", r.Dump)
			}
			if r.Method != tc.method || r.URI != tc.uri {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.URI, tc.method, tc.uri)
			}
			switch {
			case tc.body == "" && (len(r.Body) != 0 || r.ContentType != ""):
				t.Errorf("body = %q (Content-Type %q), want none", r.Body, r.ContentType)
			case tc.body != "" && r.ContentType != "application/json":
				t.Errorf("Content-Type = %q, want application/json", r.ContentType)
			case tc.body != "" && !jsonEqual(t, r.Body, tc.body):
				t.Errorf("body = %s, want %s", r.Body, tc.body)
			}
			checkRetries(t, tc)
		})
	}
}
