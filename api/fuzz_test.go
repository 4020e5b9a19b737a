package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/sigv2"
)

// FuzzRequestBodies sends arbitrary bodies to every route with a body, signed,
// and requires an answer below 500: no input may produce a 500 or a panic.
func FuzzRequestBodies(f *testing.F) {
	e := newEnv(f)
	_, a := e.raw("POST", "/kms/v1/keys", `{"keyName":"aes","keyType":"AES256"}`)
	_, x := e.raw("POST", "/kms/v1/keys", `{"keyName":"ecc","keyType":"ECDSA"}`)
	aes, ec := data(f, a, "keyTag"), data(f, x, "keyTag")
	e.raw("POST", "/kms/v1/keys/"+aes+"/token-generator", "")
	_, ct := e.raw("POST", "/kms/v1/keys/"+aes+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	_, sig := e.raw("POST", "/kms/v1/keys/"+ec+"/sign", `{"data":"aGVsbG8="}`)
	routes := []struct{ method, path string }{
		{"POST", "/kms/v1/keys"},
		{"PUT", "/kms/v1/keys/" + aes + "/name"},
		{"PUT", "/kms/v1/keys/" + aes + "/memo"},
		{"PUT", "/kms/v1/keys/" + aes + "/rotation-period"},
		{"POST", "/kms/v1/keys/" + aes + "/encrypt"},
		{"POST", "/kms/v1/keys/" + aes + "/decrypt"},
		{"POST", "/kms/v1/keys/" + aes + "/re-encrypt"},
		{"POST", "/kms/v1/keys/" + aes + "/create-custom-key"},
		{"POST", "/kms/v1/keys/" + ec + "/sign"},
		{"POST", "/kms/v1/keys/" + ec + "/verify"},
		{"POST", "/kms/v1/keys/" + ec + "/get-pub-key"},
		{"POST", "/keys/v2/" + aes + "/decrypt"},
		{"POST", "/nkms/v1/access-keys"},
		{"POST", "/kms/v1/keys/" + aes + "/acl"},
		{"DELETE", "/kms/v1/keys/" + aes + "/acl"},
		{"POST", "/kms/v1/keys/" + aes + "/token-set"},
	}
	seeds := []string{
		`{"keyName":"fuzzed","keyType":"AES256","isAutoRotation":true,"rotationPeriod":7}`,
		`{"keyName":"other"}`, `{"memo":"m"}`, `{"rotationPeriod":30}`,
		`{"plaintext":["aGVsbG8=","AA=="]}`, string(ct), `{"ciphertext":"ncpkms:v1:AAAA"}`,
		`{"bits":512,"requestPlainKey":true}`, `{"data":"aGVsbG8="}`, string(sig),
		`{"data":"aGVsbG8=","signature":"ncpkms:v1:MEUCIQ=="}`, `{"keyVersion":1}`, `{"keystoreId":4}`,
		``, `null`, `[]`, `{"plaintext":null}`,
		`{"ipList":["203.0.113.1","10.0.0.0/8"]}`, `{"accessTokenHours":"UL","refreshTokenHours":1}`,
	}
	for i := range routes {
		for _, s := range seeds {
			f.Add(uint8(i), s)
		}
	}
	srv := api.New(e.svc, api.Config{})
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		rt := routes[int(route)%len(routes)]
		r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(body))
		sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code >= http.StatusInternalServerError {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
		}
	})
}
