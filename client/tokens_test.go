package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestTokenRoutes is TestRoutes for the IP ACL, token generator and token
// routes, and for the crypto methods called with a token client.
func TestTokenRoutes(t *testing.T) {
	t.Parallel()
	gid := "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0"
	runRoutes(t, []routeCase{
		{
			name:   "EnableACL",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.EnableACL(ctx, testTag) },
			method: "POST", uri: k + "/acl/enable",
			data: `{"keyTag":"t","isAclEnabled":true}`,
			want: &ACLState{KeyTag: "t", IsACLEnabled: true},
		},
		{
			name:   "DisableACL",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.DisableACL(ctx, testTag) },
			method: "POST", uri: k + "/acl/disable",
			data: `{"keyTag":"t","isAclEnabled":false}`,
			want: &ACLState{KeyTag: "t"},
		},
		{
			name:   "GetACL",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetACL(ctx, testTag) },
			method: "GET", uri: k + "/acl",
			data: `{"keyTag":"t","isAclEnabled":true,"allowedIpList":["10.0.0.1","192.168.1.20"]}`,
			want: &ACL{KeyTag: "t", IsACLEnabled: true, AllowedIPList: []string{"10.0.0.1", "192.168.1.20"}},
		},
		{
			name:   "GetACL empty",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetACL(ctx, testTag) },
			method: "GET", uri: k + "/acl",
			data: `{"keyTag":"t","isAclEnabled":false,"allowedIpList":[]}`,
			want: &ACL{KeyTag: "t", AllowedIPList: []string{}},
		},
		{
			name: "AddACL",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.AddACL(ctx, testTag, []string{"10.0.0.1", "10.0.0.2"})
			},
			method: "POST", uri: k + "/acl", body: `{"ipList":["10.0.0.1","10.0.0.2"]}`,
			data: `{"keyTag":"t","allowedIpList":["192.168.1.20","10.0.0.1","10.0.0.2"]}`,
			want: &ACLChange{KeyTag: "t", AllowedIPList: []string{"192.168.1.20", "10.0.0.1", "10.0.0.2"}},
		},
		{
			name:   "AddACL nil list",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.AddACL(ctx, testTag, nil) },
			method: "POST", uri: k + "/acl", body: `{"ipList":[]}`,
			data: `{"keyTag":"t","allowedIpList":[]}`,
			want: &ACLChange{KeyTag: "t", AllowedIPList: []string{}},
		},
		{
			name: "DeleteACL",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.DeleteACL(ctx, testTag, []string{"10.0.0.1"})
			},
			method: "DELETE", uri: k + "/acl", body: `{"ipList":["10.0.0.1"]}`,
			data: `{"keyTag":"t","allowedIpList":[]}`,
			want: &ACLChange{KeyTag: "t", AllowedIPList: []string{}},
		},
		{
			name:   "CreateTokenGenerator",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.CreateTokenGenerator(ctx, testTag) },
			method: "POST", uri: k + "/token-generator", data: `null`, wantNone: true,
		},
		{
			name:   "ReplaceTokenGenerator",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.ReplaceTokenGenerator(ctx, testTag) },
			method: "PUT", uri: k + "/token-generator", data: `null`, wantNone: true,
		},
		{
			name:   "DeleteTokenGenerator",
			call:   func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteTokenGenerator(ctx, testTag) },
			method: "DELETE", uri: k + "/token-generator", data: `null`, wantNone: true,
		},
		{
			name:   "GetTokenGenerator active",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetTokenGenerator(ctx, testTag) },
			method: "GET", uri: k + "/token-generator",
			data: `{"tokenGeneratorId":"` + gid + `","status":"ACTIVE","enabledDate":1733452211270,"disabledDate":null,"issuedTokenCount":4}`,
			want: &TokenGenerator{TokenGeneratorID: &gid, Status: "ACTIVE", EnabledDate: ptr(1733452211270), IssuedTokenCount: 4},
		},
		{
			name:   "GetTokenGenerator never created",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetTokenGenerator(ctx, testTag) },
			method: "GET", uri: k + "/token-generator",
			data: `{"tokenGeneratorId":null,"status":"INACTIVE","enabledDate":null,"disabledDate":null,"issuedTokenCount":0}`,
			want: &TokenGenerator{Status: "INACTIVE"},
		},
		{
			name:   "CreateTokenSet hours",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateTokenSet(ctx, testTag, 72, 2160) },
			method: "POST", uri: k + "/token-set", body: `{"accessTokenHours":72,"refreshTokenHours":2160}`,
			data: `{"refreshToken":"R","accessToken":"A"}`,
			want: &TokenSet{RefreshToken: "R", AccessToken: "A"},
		},
		{
			name:   "CreateTokenSet defaults",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.CreateTokenSet(ctx, testTag, 0, 0) },
			method: "POST", uri: k + "/token-set", body: `{}`,
			data: `{"refreshToken":"R","accessToken":"A"}`,
			want: &TokenSet{RefreshToken: "R", AccessToken: "A"},
		},
		{
			name: "CreateTokenSet unlimited",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateTokenSet(ctx, testTag, 1, Unlimited)
			},
			method: "POST", uri: k + "/token-set", body: `{"accessTokenHours":1,"refreshTokenHours":"UL"}`,
			data: `{"refreshToken":"R","accessToken":"A"}`,
			want: &TokenSet{RefreshToken: "R", AccessToken: "A"},
		},
		{
			name: "RenewTokenSet", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.RenewTokenSet(ctx, testTag, Unlimited, 0)
			},
			method: "PUT", uri: k + "/token-set", body: `{"accessTokenHours":"UL"}`,
			data: `{"refreshToken":"R2","accessToken":"A2"}`,
			want: &TokenSet{RefreshToken: "R2", AccessToken: "A2"},
		},
		{
			name: "CreateAccessToken", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateAccessToken(ctx, testTag, 17520)
			},
			method: "POST", uri: k + "/access-token", body: `{"accessTokenHours":17520}`,
			data: `{"accessToken":"A3"}`, want: "A3",
		},
		{
			name: "CreateAccessToken unlimited", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateAccessToken(ctx, testTag, Unlimited)
			},
			method: "POST", uri: k + "/access-token", body: `{"accessTokenHours":"UL"}`,
			data: `{"accessToken":"A4"}`, want: "A4",
		},
		{
			name: "CreateAccessToken default", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateAccessToken(ctx, testTag, 0)
			},
			method: "POST", uri: k + "/access-token", body: `{}`,
			data: `{"accessToken":"A5"}`, want: "A5",
		},
		// The crypto methods work unchanged with a token client.
		{
			name: "token Encrypt", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Encrypt(ctx, testTag, []byte("hello"), []byte("ctx"))
			},
			method: "POST", uri: k + "/encrypt", body: `{"plaintext":"aGVsbG8=","context":"Y3R4"}`,
			data: `{"ciphertext":"ncpkms:v1:abc"}`, want: "ncpkms:v1:abc",
		},
		{
			name: "token EncryptMany", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.EncryptMany(ctx, testTag, [][]byte{[]byte("a"), []byte("b")}, nil)
			},
			method: "POST", uri: k + "/encrypt", body: `{"plaintext":["YQ==","Yg=="]}`,
			data: `{"ciphertext":["ncpkms:v1:a","ncpkms:v1:b"]}`, want: []string{"ncpkms:v1:a", "ncpkms:v1:b"},
		},
		{
			name: "token Decrypt", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Decrypt(ctx, testTag, "ncpkms:v1:abc", nil)
			},
			method: "POST", uri: k + "/decrypt", body: `{"ciphertext":"ncpkms:v1:abc"}`,
			data: `{"plaintext":"aGVsbG8="}`, want: []byte("hello"),
		},
		{
			name: "token DecryptMany", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.DecryptMany(ctx, testTag, []string{"ncpkms:v1:a"}, nil)
			},
			method: "POST", uri: k + "/decrypt", body: `{"ciphertext":["ncpkms:v1:a"]}`,
			data: `{"plaintext":["YQ=="]}`, want: [][]byte{[]byte("a")},
		},
		{
			name: "token ReEncrypt", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReEncrypt(ctx, testTag, "ncpkms:v1:abc", nil)
			},
			method: "POST", uri: k + "/re-encrypt", body: `{"ciphertext":"ncpkms:v1:abc"}`,
			data: `{"newCiphertext":"ncpkms:v2:def"}`, want: "ncpkms:v2:def",
		},
		{
			name: "token ReEncryptMany", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ReEncryptMany(ctx, testTag, []string{"ncpkms:v1:a"}, nil)
			},
			method: "POST", uri: k + "/re-encrypt", body: `{"ciphertext":["ncpkms:v1:a"]}`,
			data: `{"newCiphertext":["ncpkms:v2:a"]}`, want: []string{"ncpkms:v2:a"},
		},
		{
			name: "token CreateCustomKey", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateCustomKey(ctx, testTag, CustomKeyRequest{Bits: 512})
			},
			method: "POST", uri: k + "/create-custom-key", body: `{"requestPlainKey":false,"bits":512}`,
			data: `{"ciphertext":"ncpkms:v1:xyz","key_version":1}`,
			want: &CustomKey{Ciphertext: "ncpkms:v1:xyz", KeyVersion: 1},
		},
		{
			name:   "token Sign",
			token:  true,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Sign(ctx, testTag, []byte("msg")) },
			method: "POST", uri: k + "/sign", body: `{"data":"bXNn"}`,
			data: `{"signature":"ncpkms:v1:c2ln"}`, want: "ncpkms:v1:c2ln",
		},
		{
			name: "token Verify", token: true,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Verify(ctx, testTag, []byte("msg"), "ncpkms:v1:c2ln")
			},
			method: "POST", uri: k + "/verify", body: `{"data":"bXNn","signature":"ncpkms:v1:c2ln"}`,
			data: `{"valid":true}`, want: true,
		},
		{
			name:   "token PublicKey",
			token:  true,
			call:   func(ctx context.Context, c *Client) (any, error) { return c.PublicKey(ctx, testTag, 2) },
			method: "POST", uri: k + "/get-pub-key", body: `{"keyVersion":2}`,
			data: `{"publicKey":"PEM"}`, want: "PEM",
		},
	})
}

func TestTokenHoursJSON(t *testing.T) {
	t.Parallel()
	for h, want := range map[TokenHours]string{1: `1`, 72: `72`, 17520: `17520`, Unlimited: `"UL"`} {
		if got, err := json.Marshal(h); err != nil || string(got) != want {
			t.Errorf("json.Marshal(TokenHours(%d)) = %s, %v; want %s", int(h), got, err, want)
		}
	}
	if got, err := json.Marshal(TokenHours(-2)); err == nil {
		t.Errorf("json.Marshal(TokenHours(-2)) = %s, want an error", got)
	}
}

// TestInvalidTokenHours checks that a negative lifetime other than
// Unlimited is refused before anything is sent.
func TestInvalidTokenHours(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"refreshToken":"R","accessToken":"A"}`))
	c, tc := f.client(t), f.tokenClient(t)
	ctx := t.Context()
	if s, err := c.CreateTokenSet(ctx, testTag, -2, 0); err == nil {
		t.Errorf("CreateTokenSet(-2, 0) = %v, want an error", s)
	}
	if s, err := tc.RenewTokenSet(ctx, testTag, 0, -72); err == nil {
		t.Errorf("RenewTokenSet(0, -72) = %v, want an error", s)
	}
	if a, err := tc.CreateAccessToken(ctx, testTag, -3); err == nil || a != "" {
		t.Errorf("CreateAccessToken(-3) = %q, %v; want an error", a, err)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

// TestTokenNeverLeaks checks that a token client's token appears in no
// error text, even when the server echoes it, and not when the client or a
// TokenSet is printed.
func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()
	echo := []struct {
		status int
		body   string
	}{
		{401, `{"error":{"errorCode":"200","message":"Authentication Failed: ` + testToken + `","details":"token ` + testToken + ` expired"}}`},
		{403, `{"code":"FORBIDDEN","msg":"` + strings.Repeat("x", 280) + testToken + `","data":null}`},
		{401, `{"code":"` + testToken + `","msg":"bad token"}`},
		{200, `{"code":"UNAUTHORIZED","msg":"token ` + testToken + `"}`},
		{502, testToken},
	}
	n := 0
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		a := echo[n%len(echo)]
		n++
		writeJSON(w, a.status, a.body)
	})
	c := f.tokenClient(t)
	for range echo {
		_, err := c.Encrypt(t.Context(), testTag, []byte("p"), nil)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Encrypt = %v, want an *Error", err)
		}
		if text := fmt.Sprintf("%s %v %+v %#v", err, err, err, e); strings.Contains(text, testToken) ||
			strings.Contains(text, testToken[:40]) {
			t.Errorf("error text carries the token: %s", text)
		}
	}
	for i, r := range f.requests() {
		if r.AuthErr != nil || r.Token != testToken {
			t.Errorf("request %d: token %q, auth error %v", i, r.Token, r.AuthErr)
		}
	}
	set := TokenSet{RefreshToken: testToken, AccessToken: testToken}
	if printed := fmt.Sprintf("%v %+v %#v %s %v", c, c, c, &set, set); strings.Contains(printed, testToken) {
		t.Errorf("printing shows the token: %s", printed)
	}
	if printed := fmt.Sprintf("%#v", set); strings.Contains(printed, testToken) {
		t.Errorf("printing shows the token: %s", printed)
	}
}

func TestNewWithToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ base, token string }{
		{"http://host", ""},
		{"http://host", "a b"},
		{"http://host", "secret-part\r\nX-Injected: 1"},
		{"http://host", "tok\x00en"},
		{"http://host", "tökën"},
		{"ftp://host", "tok"},
		{"http://host?x=1", "tok"},
	} {
		_, err := NewWithToken(tc.base, tc.token)
		if err == nil {
			t.Errorf("NewWithToken(%q, %q) succeeded, want an error", tc.base, tc.token)
		} else if tc.token != "" && strings.Contains(err.Error(), tc.token) {
			t.Errorf("NewWithToken error %q shows the token", err)
		}
	}
	if _, err := NewWithToken("http://host", "tok", WithHTTPClient(nil)); err == nil {
		t.Error("NewWithToken with a nil HTTP client succeeded")
	}
}

// TestAccountAndTokenClientsShareOnePath checks that the same method sends
// the same request but for authentication, whichever way the client
// authenticates.
func TestAccountAndTokenClientsShareOnePath(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"signature":"ncpkms:v1:c2ln"}`))
	for _, c := range []*Client{f.client(t), f.tokenClient(t)} {
		if _, err := c.Sign(t.Context(), testTag, []byte("msg")); err != nil {
			t.Fatal(err)
		}
	}
	r := f.requests()
	if r[0].AuthErr != nil || r[1].AuthErr != nil {
		t.Fatalf("auth errors: %v, %v", r[0].AuthErr, r[1].AuthErr)
	}
	if r[0].Token != "" || r[0].Timestamp == "" || r[1].Token != testToken || r[1].Timestamp != "" {
		t.Errorf("account request: token %q timestamp %q; token request: token %q timestamp %q",
			r[0].Token, r[0].Timestamp, r[1].Token, r[1].Timestamp)
	}
	if r[0].Method != r[1].Method || r[0].URI != r[1].URI || string(r[0].Body) != string(r[1].Body) {
		t.Errorf("requests differ: %s %s %s / %s %s %s", r[0].Method, r[0].URI, r[0].Body, r[1].Method, r[1].URI, r[1].Body)
	}
}
