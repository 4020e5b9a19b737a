package api_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMalformedInput sends bad input to every route and expects a 4xx with
// the right code (decisions.md D3), never a 500.
func TestMalformedInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	aes := data(t, e.call("setup_aes", "POST", "/kms/v1/keys", `{"keyName":"aes","keyType":"AES256"}`), "keyTag")
	conv := data(t, e.call("setup_conv", "POST", "/kms/v1/keys", `{"keyName":"conv","keyType":"AES256","isConvergent":true}`), "keyTag")
	rsa := data(t, e.call("setup_rsa", "POST", "/kms/v1/keys", `{"keyName":"rsa","keyType":"RSA2048"}`), "keyTag")
	ec := data(t, e.call("setup_ec", "POST", "/kms/v1/keys", `{"keyName":"ecc","keyType":"ECDSA"}`), "keyTag")
	a, r, c, x := "/kms/v1/keys/"+aes, "/kms/v1/keys/"+rsa, "/kms/v1/keys/"+conv, "/kms/v1/keys/"+ec
	big := `{"plaintext":"` + strings.Repeat("A", 300<<10) + `"}`
	type tc struct {
		name, method, path, body string
		status                   int
		code                     string
	}
	const bad, nf, st, conflict = "INVALID_REQUEST", "NOT_FOUND", "UNPROCESSABLE_ENTITY", "CONFLICT"
	cases := []tc{
		// create key
		{"create bad json", "POST", "/kms/v1/keys", `{"keyName":`, 400, bad},
		{"create not an object", "POST", "/kms/v1/keys", `["x"]`, 400, bad},
		{"create trailing data", "POST", "/kms/v1/keys", `{"keyName":"abc","keyType":"AES256"} {}`, 400, bad},
		{"create empty body", "POST", "/kms/v1/keys", ``, 400, bad},
		{"create missing type", "POST", "/kms/v1/keys", `{"keyName":"abc"}`, 400, bad},
		{"create unknown type", "POST", "/kms/v1/keys", `{"keyName":"abc","keyType":"AES128"}`, 400, bad},
		{"create name too short", "POST", "/kms/v1/keys", `{"keyName":"ab","keyType":"AES256"}`, 400, bad},
		{"create name with space", "POST", "/kms/v1/keys", `{"keyName":"ab cd","keyType":"AES256"}`, 400, bad},
		{"create name digit first", "POST", "/kms/v1/keys", `{"keyName":"1abc","keyType":"AES256"}`, 400, bad},
		{"create name wrong type", "POST", "/kms/v1/keys", `{"keyName":12345,"keyType":"AES256"}`, 400, bad},
		{"create period string", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","rotationPeriod":"90"}`, 400, bad},
		{"create period 731", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","rotationPeriod":731}`, 400, bad},
		{"create period negative", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","rotationPeriod":-1}`, 400, bad},
		{"create period float", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","rotationPeriod":1.5}`, 400, bad},
		{"create period huge", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","rotationPeriod":99999999999999999999}`, 400, bad},
		{"create convergent RSA", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"RSA2048","isConvergent":true}`, 400, bad},
		{"create bad protection", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","protectionType":"HSM"}`, 400, bad},
		{"create memo 101", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","memo":"` + strings.Repeat("m", 101) + `"}`, 400, bad},
		{"create bool as string", "POST", "/kms/v1/keys", `{"keyName":"abcd","keyType":"AES256","isAutoRotation":"true"}`, 400, bad},
		{"create duplicate name", "POST", "/kms/v1/keys", `{"keyName":"AES","keyType":"AES256"}`, 409, conflict},
		// list
		{"list page 0", "GET", "/kms/v1/keys?pageNo=0", ``, 400, bad},
		{"list size 201", "GET", "/kms/v1/keys?pageSize=201", ``, 400, bad},
		{"list size 0", "GET", "/kms/v1/keys?pageSize=0", ``, 400, bad},
		{"list page text", "GET", "/kms/v1/keys?pageNo=one", ``, 400, bad},
		{"list page hex", "GET", "/kms/v1/keys?pageNo=0x10", ``, 400, bad},
		{"list page negative", "GET", "/kms/v1/keys?pageNo=-1", ``, 400, bad},
		// unknown keys on every key route
		{"info unknown", "GET", "/kms/v1/keys/" + strings.Repeat("b", 64), ``, 404, nf},
		{"info not hex", "GET", "/kms/v1/keys/not-a-tag", ``, 404, nf},
		{"enable unknown", "POST", "/kms/v1/keys/zz/enable", ``, 404, nf},
		{"encrypt unknown", "POST", "/kms/v1/keys/zz/encrypt", `{"plaintext":"AA=="}`, 404, nf},
		{"encrypt empty tag", "POST", "/kms/v1/keys//encrypt", `{"plaintext":"AA=="}`, 404, ""},
		// name and memo
		{"name missing", "PUT", a + "/name", `{}`, 400, bad},
		{"name bad", "PUT", a + "/name", `{"keyName":"x"}`, 400, bad},
		{"name null", "PUT", a + "/name", `{"keyName":null}`, 400, bad},
		{"name taken", "PUT", a + "/name", `{"keyName":"RSA"}`, 409, conflict},
		{"memo missing", "PUT", a + "/memo", `{}`, 400, bad},
		{"memo number", "PUT", a + "/memo", `{"memo":5}`, 400, bad},
		{"memo too long", "PUT", a + "/memo", `{"memo":"` + strings.Repeat("é", 101) + `"}`, 400, bad},
		// rotation settings
		{"period missing", "PUT", a + "/rotation-period", `{}`, 400, bad},
		{"period zero", "PUT", a + "/rotation-period", `{"rotationPeriod":0}`, 400, bad},
		{"period while auto rotation off", "PUT", a + "/rotation-period", `{"rotationPeriod":10}`, 422, st},
		// versions
		{"version text", "POST", a + "/versions/one/enable", ``, 400, bad},
		{"version zero", "POST", a + "/versions/0/enable", ``, 400, bad},
		{"version signed", "POST", a + "/versions/+1/enable", ``, 400, bad},
		{"version leading zero", "POST", a + "/versions/01/enable", ``, 400, bad},
		{"version huge", "POST", a + "/versions/99999999999/enable", ``, 400, bad},
		{"version unknown", "POST", a + "/versions/7/enable", ``, 404, nf},
		{"disable current version", "POST", a + "/versions/1/disable", ``, 422, st},
		// encrypt
		{"encrypt bad json", "POST", a + "/encrypt", `{"plaintext":`, 400, bad},
		{"encrypt missing", "POST", a + "/encrypt", `{}`, 400, bad},
		{"encrypt null", "POST", a + "/encrypt", `{"plaintext":null}`, 400, bad},
		{"encrypt number", "POST", a + "/encrypt", `{"plaintext":5}`, 400, bad},
		{"encrypt array of numbers", "POST", a + "/encrypt", `{"plaintext":[1,2]}`, 400, bad},
		{"encrypt empty array", "POST", a + "/encrypt", `{"plaintext":[]}`, 400, bad},
		{"encrypt bad base64", "POST", a + "/encrypt", `{"plaintext":"***"}`, 400, bad},
		{"encrypt unpadded base64", "POST", a + "/encrypt", `{"plaintext":"AAA"}`, 400, bad},
		{"encrypt url base64", "POST", a + "/encrypt", `{"plaintext":"__8="}`, 400, bad},
		{"encrypt too large", "POST", a + "/encrypt", big, 413, ""},
		{"encrypt rsa over 190", "POST", r + "/encrypt", `{"plaintext":"` + b64(191) + `"}`, 400, bad},
		{"encrypt ecdsa", "POST", x + "/encrypt", `{"plaintext":"AA=="}`, 400, bad},
		{"encrypt convergent no context", "POST", c + "/encrypt", `{"plaintext":"AA=="}`, 400, bad},
		{"encrypt convergent bad context", "POST", c + "/encrypt", `{"plaintext":"AA==","context":"%%"}`, 400, bad},
		{"encrypt convergent long context", "POST", c + "/encrypt", `{"plaintext":"AA==","context":"` + b64(51) + `"}`, 400, bad},
		{"encrypt context number", "POST", a + "/encrypt", `{"plaintext":"AA==","context":5}`, 400, bad},
		// decrypt and re-encrypt
		{"decrypt missing", "POST", a + "/decrypt", `{}`, 400, bad},
		{"decrypt no prefix", "POST", a + "/decrypt", `{"ciphertext":"AAAA"}`, 400, bad},
		{"decrypt wrong prefix", "POST", a + "/decrypt", `{"ciphertext":"vault:v1:AAAA"}`, 400, bad},
		{"decrypt v0", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v0:AAAA"}`, 400, bad},
		{"decrypt leading zero", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v01:AAAA"}`, 400, bad},
		{"decrypt negative", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v-1:AAAA"}`, 400, bad},
		{"decrypt bad base64", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v1:A*AA"}`, 400, bad},
		{"decrypt empty body", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v1:"}`, 400, bad},
		{"decrypt short", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v1:AAAA"}`, 400, bad},
		{"decrypt unknown version", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v5:AAAA"}`, 404, nf},
		{"decrypt rsa wrong size", "POST", r + "/decrypt", `{"ciphertext":"ncpkms:v1:AAAA"}`, 400, bad},
		{"decrypt huge version", "POST", a + "/decrypt", `{"ciphertext":"ncpkms:v99999999999999999999:AAAA"}`, 400, bad},
		{"re-encrypt missing", "POST", a + "/re-encrypt", `{}`, 400, bad},
		{"re-encrypt garbage", "POST", a + "/re-encrypt", `{"ciphertext":["ncpkms:v1:AAAA"]}`, 400, bad},
		// custom key
		{"custom key bits 64", "POST", a + "/create-custom-key", `{"bits":64}`, 400, bad},
		{"custom key bits text", "POST", a + "/create-custom-key", `{"bits":"256"}`, 400, bad},
		{"custom key plain text", "POST", a + "/create-custom-key", `{"requestPlainKey":"yes"}`, 400, bad},
		{"custom key ecdsa", "POST", x + "/create-custom-key", `{}`, 400, bad},
		// sign, verify, public key
		{"sign missing data", "POST", r + "/sign", `{}`, 400, bad},
		{"sign bad base64", "POST", r + "/sign", `{"data":"!!"}`, 400, bad},
		{"sign over 8 KiB", "POST", r + "/sign", `{"data":"` + b64(8193) + `"}`, 400, bad},
		{"sign aes", "POST", a + "/sign", `{"data":"AA=="}`, 400, bad},
		{"verify missing signature", "POST", r + "/verify", `{"data":"AA=="}`, 400, bad},
		{"verify bad prefix", "POST", r + "/verify", `{"data":"AA==","signature":"sig"}`, 400, bad},
		{"verify ecdsa not der", "POST", x + "/verify", `{"data":"AA==","signature":"ncpkms:v1:AAAA"}`, 400, bad},
		{"verify unknown version", "POST", x + "/verify", `{"data":"AA==","signature":"ncpkms:v3:AAAA"}`, 404, nf},
		{"public key aes", "POST", a + "/get-pub-key", `{}`, 400, bad},
		{"public key negative", "POST", r + "/get-pub-key", `{"keyVersion":-1}`, 400, bad},
		{"public key text", "POST", r + "/get-pub-key", `{"keyVersion":"1"}`, 400, bad},
		{"public key unknown version", "POST", r + "/get-pub-key", `{"keyVersion":2}`, 404, nf},
		// state
		{"delete enabled key", "DELETE", a, ``, 422, st},
		{"cancel deletion of enabled key", "POST", a + "/cancel-deletion", ``, 422, st},
		// API 1.0 and access keys
		{"v1 decrypt garbage", "POST", "/keys/v1/" + aes + "/decrypt", `{"ciphertext":"x"}`, 400, bad},
		{"v1 unknown action", "POST", "/keys/v1/" + aes + "/rotate", ``, 404, ""},
		{"access key keystore 0", "POST", "/nkms/v1/access-keys", `{"keystoreId":0}`, 400, bad},
		{"access key keystore text", "POST", "/nkms/v1/access-keys", `{"keystoreId":"2"}`, 400, bad},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.raw(tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
			if tc.code == "" {
				return
			}
			var b struct {
				Code string  `json:"code"`
				Msg  string  `json:"msg"`
				Data *string `json:"data"`
			}
			if err := json.Unmarshal(body, &b); err != nil || b.Code != tc.code || b.Msg == "" || b.Data != nil {
				t.Fatalf("got body %s, want code %s with a msg and null data", body, tc.code)
			}
		})
	}
}

// b64 is the Base64 of n zero bytes.
func b64(n int) string {
	return strings.Repeat("AAAA", n/3) + map[int]string{0: "", 1: "AA==", 2: "AAA="}[n%3]
}
