package api_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/nkms/nkms/api"
)

// withToken sends the key token in x-ncp-ocapi-token and nothing else.
func withToken(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("x-ncp-ocapi-token", tok) }
}

// TestTokenAndACLRoutesGolden walks rows 25-36 of ncp-kms-api.md §5 and the
// token variants of the crypto routes, and pins each answer.
func TestTokenAndACLRoutesGolden(t *testing.T) {
	e := newEnv(t)
	tag := data(t, e.call("setup_token_key", "POST", "/kms/v1/keys", `{"keyName":"tokens","keyType":"ECDSA"}`), "keyTag")
	k := "/kms/v1/keys/" + tag
	e.call("token_generator_none", "GET", k+"/token-generator", "")
	status, b := e.raw("POST", k+"/token-set", `{}`)
	golden(t, "error_422_token_set_without_generator", status, b)
	e.call("token_generator_create", "POST", k+"/token-generator", "")
	status, b = e.raw("POST", k+"/token-generator", "")
	golden(t, "error_422_token_generator_exists", status, b)
	set := e.call("token_set", "POST", k+"/token-set", `{"accessTokenHours":1,"refreshTokenHours":"UL"}`)
	access, refresh := data(t, set, "accessToken"), data(t, set, "refreshToken")
	e.call("token_generator", "GET", k+"/token-generator", "")

	status, b = e.rawWith("POST", k+"/sign", `{"data":"aGVsbG8="}`, withToken(access))
	golden(t, "token_sign", status, b)
	sig := data(t, b, "signature")
	status, b = e.rawWith("POST", k+"/verify", `{"data":"aGVsbG8=","signature":"`+sig+`"}`, withToken(access))
	golden(t, "token_verify", status, b)
	status, b = e.rawWith("POST", k+"/get-pub-key", `{}`, withToken(access))
	golden(t, "token_get_pub_key", status, b)
	status, b = e.rawWith("PUT", k+"/token-set", `{"accessTokenHours":72}`, withToken(refresh))
	golden(t, "token_set_renew", status, b)
	status, b = e.rawWith("POST", k+"/access-token", `{"accessTokenHours":"UL"}`, withToken(refresh))
	golden(t, "access_token", status, b)

	status, b = e.rawWith("POST", k+"/sign", `{"data":"aGVsbG8="}`, withToken(refresh))
	golden(t, "error_401_refresh_as_access", status, b)
	status, b = e.rawWith("POST", k+"/access-token", `{}`, withToken(access))
	golden(t, "error_401_access_as_refresh", status, b)
	status, b = e.raw("POST", k+"/access-token", `{}`)
	golden(t, "error_401_refresh_route_signed", status, b)
	status, b = e.rawWith("GET", k, "", withToken(access))
	golden(t, "error_401_token_on_account_route", status, b)
	status, b = e.raw("POST", k+"/token-set", `{"accessTokenHours":0}`)
	golden(t, "error_400_token_hours", status, b)

	e.call("acl_empty", "GET", k+"/acl", "")
	e.call("acl_enable", "POST", k+"/acl/enable", "")
	status, b = e.rawWith("POST", k+"/sign", `{"data":"aGVsbG8="}`, withToken(access))
	golden(t, "error_403_acl", status, b)
	if status, b := e.raw("POST", k+"/sign", `{"data":"aGVsbG8="}`); status != 200 {
		t.Fatalf("account call under an enabled ACL: %d %s", status, b)
	}
	e.call("acl_add", "POST", k+"/acl", `{"ipList":["127.0.0.1","10.0.0.0/8"]}`)
	e.call("acl_add_old_name", "POST", k+"/acl", `{"IpList":["192.0.2.1"]}`)
	status, b = e.raw("POST", k+"/acl", `{"ipList":["::1"]}`)
	golden(t, "error_400_acl_ipv6", status, b)
	e.call("acl_list", "GET", k+"/acl", "")
	if status, b := e.rawWith("POST", k+"/sign", `{"data":"aGVsbG8="}`, withToken(access)); status != 200 {
		t.Fatalf("token call from a listed address: %d %s", status, b)
	}
	e.call("acl_delete", "DELETE", k+"/acl", `{"ipList":["127.0.0.1"]}`)
	e.call("acl_disable", "POST", k+"/acl/disable", "")

	e.call("token_generator_replace", "PUT", k+"/token-generator", "")
	status, b = e.rawWith("POST", k+"/sign", `{"data":"aGVsbG8="}`, withToken(access))
	golden(t, "error_401_token_replaced_generator", status, b)
	e.call("token_generator_delete", "DELETE", k+"/token-generator", "")
	e.call("token_generator_deleted", "GET", k+"/token-generator", "")
}

// TestTrustedProxies: X-Forwarded-For counts only when the peer is a trusted proxy.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tag := data(t, e.call("setup_proxy_key", "POST", "/kms/v1/keys", `{"keyName":"proxied","keyType":"AES256"}`), "keyTag")
	k := "/kms/v1/keys/" + tag
	e.raw("POST", k+"/token-generator", "")
	_, set := e.raw("POST", k+"/token-set", `{}`)
	access := data(t, set, "accessToken")
	e.raw("POST", k+"/acl", `{"ipList":["203.0.113.5"]}`)
	e.raw("POST", k+"/acl/enable", "")
	from := func(xff string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("x-ncp-ocapi-token", access)
			if xff != "" {
				r.Header.Set("X-Forwarded-For", xff)
			}
		}
	}
	encrypt := func(xff string) int {
		status, _ := e.rawWith("POST", k+"/encrypt", `{"plaintext":"AA=="}`, from(xff))
		return status
	}
	// Untrusted peer (the default): X-Forwarded-For is ignored.
	if got := encrypt("203.0.113.5"); got != 403 {
		t.Fatalf("untrusted peer with a forged X-Forwarded-For: got %d, want 403", got)
	}
	e.srv.Config.Handler = api.New(e.svc, api.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}})
	for xff, want := range map[string]int{
		"203.0.113.5":               200,
		"198.51.100.1, 203.0.113.5": 200, // the left part could be forged; the last untrusted hop counts
		"203.0.113.5, 198.51.100.1": 403,
		"203.0.113.5, 10.1.1.1":     200, // 10.1.1.1 is a trusted inner proxy
		"":                          403, // the proxy itself is not listed
		"not-an-ip":                 403,
		strings.Repeat("203.0.113.5,", 99) + "203.0.113.5": 200,
		"203.0.113.5,": 403, // an empty last hop is malformed: trust nothing
	} {
		if got := encrypt(xff); got != want {
			t.Errorf("X-Forwarded-For %q: got %d, want %d", xff, got, want)
		}
	}
}
