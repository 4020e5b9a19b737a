package api_test

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/sigv2"
)

// TestSecretsNeverLeak is a property test: whatever mix of valid, tampered,
// misplaced and foreign credentials a request carries, on whatever route, no
// access-key secret and no token (nor its signature part) appears in an
// answer body or a log line.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, b := e.raw("POST", "/kms/v1/keys", `{"keyName":"leaky","keyType":"AES256"}`)
	tag := data(t, b, "keyTag")
	k := "/kms/v1/keys/" + tag
	e.raw("POST", k+"/token-generator", "")
	_, set := e.raw("POST", k+"/token-set", `{}`)
	access, refresh := data(t, set, "accessToken"), data(t, set, "refreshToken")
	_, extra := e.raw("POST", "/nkms/v1/access-keys", `{"keystoreId":1,"role":"crypto"}`)
	extraSecret := data(t, extra, "secretKey")

	secrets := []string{e.creds[1].SecretKey, e.creds[2].SecretKey, extraSecret, access, refresh}
	for _, tok := range []string{access, refresh} {
		secrets = append(secrets, tok[strings.LastIndex(tok, ".")+1:])
	}
	for _, s := range append([]string(nil), secrets[:3]...) {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(s)))
	}

	routes := []struct{ method, path string }{
		{"POST", k + "/encrypt"}, {"POST", k + "/decrypt"}, {"POST", k + "/sign"}, {"PUT", k + "/token-set"},
		{"POST", k + "/access-token"}, {"GET", k}, {"GET", "/kms/v1/keys?pageNo=1"}, {"POST", "/nkms/v1/access-keys"},
		{"DELETE", k + "/acl"}, {"POST", "/keys/v1/" + tag + "/encrypt"}, {"GET", k + "/activities"},
	}
	bodies := []string{``, `{"plaintext":"AA=="}`, `{"ciphertext":"` + access + `"}`, `{"data":"` + refresh + `"}`,
		`{"plaintext":"` + e.creds[1].SecretKey + `"}`, `{"keystoreId":"` + extraSecret + `"}`, `{`}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	mutate := func(s string) string {
		if s == "" || rng.IntN(2) == 0 {
			return s
		}
		i := rng.IntN(len(s))
		return s[:i] + "x" + s[i+1:]
	}
	for i := range 400 {
		rt := routes[rng.IntN(len(routes))]
		status, body := e.rawWith(rt.method, rt.path, pick(bodies), func(r *http.Request) {
			switch rng.IntN(5) {
			case 0: // a token, maybe tampered, maybe of the wrong type
				r.Header.Set("x-ncp-ocapi-token", mutate(pick([]string{access, refresh})))
			case 1: // a valid signature
				sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
			case 2: // a signature under the wrong secret, with the secret sent as the signature
				sigv2.SignRequest(r, e.creds[2].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
				r.Header.Set(sigv2.HeaderSignatureV1, e.creds[2].SecretKey)
			case 3: // secrets in the wrong headers
				r.Header.Set(sigv2.HeaderAccessKey, mutate(extraSecret))
				r.Header.Set(sigv2.HeaderTimestamp, access)
			default: // both a signature and a token
				sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
				r.Header.Set("x-ncp-ocapi-token", access)
			}
		})
		if status >= 500 {
			t.Fatalf("request %d %s %s: %d %s", i, rt.method, rt.path, status, body)
		}
		// A body may echo data the caller sent on purpose (a decrypted plaintext), never a credential.
		if status >= 400 {
			for _, s := range secrets {
				if strings.Contains(string(body), s) {
					t.Fatalf("request %d %s %s: error body contains a secret: %s", i, rt.method, rt.path, body)
				}
			}
		}
	}
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("the log contains a secret (%d chars)", len(s))
		}
	}
}
