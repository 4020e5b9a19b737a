package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// API 3.0 crypto (ncp-kms-api-v3.md §3.6, decisions.md D9) through HTTP:
// every operation on its account route (signature v2) and its token route
// (an access token issued through the 2.0 token-set route).

// v3Key is a key of the 3.0 crypto tests with an access token of its own.
type v3Key struct {
	tag, token string
}

// v3Keys makes an AES256, a convergent AES256, an RSA2048 and an ECDSA key in
// keystore 1, each with an activated token generator and an access token.
type v3Keys struct {
	e                     *env
	aes, conv, rsa, ecdsa v3Key
}

func newV3Keys(t testing.TB) *v3Keys {
	t.Helper()
	e := newEnv(t)
	c := e.client(1)
	ctx := context.Background()
	mk := func(name, typ string, convergent bool) v3Key {
		t.Helper()
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: typ, IsConvergent: convergent})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreateTokenGenerator(ctx, k.KeyTag); err != nil {
			t.Fatal(err)
		}
		set, err := c.CreateTokenSet(ctx, k.KeyTag, 24, 24)
		if err != nil {
			t.Fatal(err)
		}
		return v3Key{tag: k.KeyTag, token: set.AccessToken}
	}
	return &v3Keys{e: e, aes: mk("aes", "AES256", false), conv: mk("conv", "AES256", true),
		rsa: mk("rsa", "RSA2048", false), ecdsa: mk("ecdsa", "ECDSA", false)}
}

// call sends a 3.0 crypto request for op of key k: on the account route, or
// with token on the token route with the key's access token.
func (ks *v3Keys) call(k v3Key, token bool, method, op, body string) (int, []byte) {
	if !token {
		return ks.e.raw(method, "/kms/v3/keys/"+k.tag+"/"+op, body)
	}
	return ks.e.rawWith(method, "/kms/v3/token/keys/"+k.tag+"/"+op, body, func(r *http.Request) {
		r.Header.Set("x-ncp-ocapi-token", k.token)
	})
}

// ok calls and fails the test unless the answer is 200; it returns the body
// decoded into a map.
func (ks *v3Keys) ok(t *testing.T, k v3Key, token bool, method, op, body string) map[string]any {
	t.Helper()
	status, b := ks.call(k, token, method, op, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s %s: %d %s", method, op, body, status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v in %s", op, err, b)
	}
	return m
}

func b64s(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// v3ErrorCode returns the errorCode and fieldErrors' fields of a 3.0 error body.
func v3ErrorCode(t *testing.T, b []byte) (string, []string) {
	t.Helper()
	var body struct {
		Error struct {
			ErrorCode   string `json:"errorCode"`
			FieldErrors []struct {
				Field string `json:"field"`
			} `json:"fieldErrors"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Error.ErrorCode == "" {
		t.Fatalf("not a 3.0 error body: %s", b)
	}
	var fields []string
	for _, f := range body.Error.FieldErrors {
		fields = append(fields, f.Field)
	}
	return body.Error.ErrorCode, fields
}

// TestV3CryptoOperations: the 20 crypto operations (10 on each prefix)
// answer 200 with D9's bodies (golden files, the same on both prefixes),
// and what they make round-trips.
func TestV3CryptoOperations(t *testing.T) {
	ks := newV3Keys(t)
	for _, token := range []bool{false, true} {
		name := map[bool]string{false: "account", true: "token"}[token]
		t.Run(name, func(t *testing.T) {
			msg := b64s("Hello KMS")
			// AES: encrypt, decrypt, re-encrypt, the batches, custom key.
			status, b := ks.call(ks.aes, token, "POST", "encrypt", `{"plaintext":"`+msg+`"}`)
			golden(t, "v3_encrypt", status, b)
			var ct struct{ Ciphertext string }
			json.Unmarshal(b, &ct)

			status, b = ks.call(ks.aes, token, "POST", "decrypt", `{"ciphertext":"`+ct.Ciphertext+`"}`)
			if !bytes.Contains(b, []byte(`"plaintext":"`+msg+`"`)) {
				t.Errorf("decrypt: %d %s, want plaintext %s", status, b, msg)
			}
			golden(t, "v3_decrypt", status, b)

			status, b = ks.call(ks.aes, token, "POST", "re-encrypt", `{"ciphertext":"`+ct.Ciphertext+`"}`)
			golden(t, "v3_re_encrypt", status, b)

			status, b = ks.call(ks.aes, token, "POST", "batch-encrypt",
				`{"requests":[{"plaintext":"`+msg+`"},{"plaintext":"`+b64s("second")+`","context":"ignored"}]}`)
			golden(t, "v3_batch_encrypt", status, b)
			var be struct {
				Results map[string]struct{ Ciphertext string }
			}
			json.Unmarshal(b, &be)
			items := `{"requests":[{"ciphertext":"` + be.Results["0"].Ciphertext + `"},{"ciphertext":"` + be.Results["1"].Ciphertext + `"}]}`

			status, b = ks.call(ks.aes, token, "POST", "batch-decrypt", items)
			if !bytes.Contains(b, []byte(`"1":{"plaintext":"`+b64s("second")+`"}`)) {
				t.Errorf("batch-decrypt: %d %s", status, b)
			}
			golden(t, "v3_batch_decrypt", status, b)

			status, b = ks.call(ks.aes, token, "POST", "batch-re-encrypt", items)
			golden(t, "v3_batch_re_encrypt", status, b)

			status, b = ks.call(ks.aes, token, "POST", "issue-custom-key", `{"requestPlainKey":true,"bits":512}`)
			golden(t, "v3_issue_custom_key", status, b)
			var ck struct{ Ciphertext, Plaintext string }
			json.Unmarshal(b, &ck)
			dk := ks.ok(t, ks.aes, token, "POST", "decrypt", `{"ciphertext":"`+ck.Ciphertext+`"}`)
			if raw, _ := base64.StdEncoding.DecodeString(ck.Plaintext); dk["plaintext"] != ck.Plaintext || len(raw) != 64 {
				t.Errorf("custom key: plaintext %q (%d bytes), decrypts to %v", ck.Plaintext, len(raw), dk["plaintext"])
			}
			status, b = ks.call(ks.aes, token, "POST", "issue-custom-key", "")
			golden(t, "v3_issue_custom_key_no_body", status, b)

			// RSA and ECDSA: sign, verify, public key.
			for _, k := range []v3Key{ks.rsa, ks.ecdsa} {
				status, b = ks.call(k, token, "POST", "sign", `{"data":"`+msg+`"}`)
				golden(t, "v3_sign", status, b)
				var sig struct{ Signature string }
				json.Unmarshal(b, &sig)
				status, b = ks.call(k, token, "POST", "verify", `{"data":"`+msg+`","signature":"`+sig.Signature+`"}`)
				golden(t, "v3_verify", status, b)
				if v := ks.ok(t, k, token, "POST", "verify", `{"data":"`+b64s("other")+`","signature":"`+sig.Signature+`"}`); v["valid"] != false {
					t.Errorf("verify of another message: %v, want valid false", v)
				}
				status, b = ks.call(k, token, "GET", "versions/1/public-key", "")
				golden(t, "v3_public_key", status, b)
			}
		})
	}
}

// TestV3CryptoRefusals: strict input and the D9 codes of the 3.0 crypto
// routes, on both prefixes.
func TestV3CryptoRefusals(t *testing.T) {
	ks := newV3Keys(t)
	msg := b64s("m")
	ct := ks.ok(t, ks.aes, false, "POST", "encrypt", `{"plaintext":"`+msg+`"}`)["ciphertext"].(string)
	body := strings.SplitN(ct, ":", 3)[2]
	sig := ks.ok(t, ks.ecdsa, false, "POST", "sign", `{"data":"`+msg+`"}`)["signature"].(string)
	sigBody := strings.SplitN(sig, ":", 3)[2]
	type refusal struct {
		name       string
		k          v3Key
		method, op string
		body       string
		status     int
		code       string
		field      string // "" when no fieldErrors are expected
	}
	cases := []refusal{
		{"array plaintext", ks.aes, "POST", "encrypt", `{"plaintext":["` + msg + `"]}`, 400, "InvalidParameter", "plaintext"},
		{"array ciphertext", ks.aes, "POST", "decrypt", `{"ciphertext":["` + ct + `"]}`, 400, "InvalidParameter", "ciphertext"},
		{"array re-encrypt", ks.aes, "POST", "re-encrypt", `{"ciphertext":["` + ct + `"]}`, 400, "InvalidParameter", "ciphertext"},
		{"array data", ks.rsa, "POST", "sign", `{"data":["` + msg + `"]}`, 400, "InvalidParameter", "data"},
		{"number context, plain key", ks.aes, "POST", "encrypt", `{"plaintext":"` + msg + `","context":5}`, 400, "InvalidParameter", "context"},
		{"number context, custom key", ks.aes, "POST", "issue-custom-key", `{"context":5}`, 400, "InvalidParameter", "context"},
		{"missing plaintext", ks.aes, "POST", "encrypt", `{}`, 400, "InvalidParameter", "plaintext"},
		{"empty plaintext", ks.aes, "POST", "encrypt", `{"plaintext":""}`, 400, "InvalidParameter", "plaintext"},
		{"unpadded Base64", ks.aes, "POST", "encrypt", `{"plaintext":"bQ"}`, 400, "InvalidParameter", "plaintext"},
		{"Base64 with a newline", ks.aes, "POST", "encrypt", `{"plaintext":"SGVs\nbG8="}`, 400, "InvalidParameter", "plaintext"},
		{"plaintext too large", ks.rsa, "POST", "encrypt", `{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, 191)) + `"}`, 400, "InvalidParameter", ""},
		{"bits 128.0", ks.aes, "POST", "issue-custom-key", `{"bits":128.0}`, 400, "InvalidParameter", "bits"},
		{`bits "128"`, ks.aes, "POST", "issue-custom-key", `{"bits":"128"}`, 400, "InvalidParameter", "bits"},
		{"bits 0", ks.aes, "POST", "issue-custom-key", `{"bits":0}`, 400, "InvalidParameter", "bits"},
		{"bits 64", ks.aes, "POST", "issue-custom-key", `{"bits":64}`, 400, "InvalidParameter", "bits"},
		{"requestPlainKey string", ks.aes, "POST", "issue-custom-key", `{"requestPlainKey":"true"}`, 400, "InvalidParameter", "requestPlainKey"},
		{"convergent custom key without body", ks.conv, "POST", "issue-custom-key", ``, 400, "InvalidParameter", ""},
		{"convergent encrypt without context", ks.conv, "POST", "encrypt", `{"plaintext":"` + msg + `"}`, 400, "InvalidParameter", ""},
		{"malformed ciphertext", ks.aes, "POST", "decrypt", `{"ciphertext":"ncpkms:v1:***"}`, 400, "InvalidParameter", "ciphertext"},
		{"decrypt unknown version", ks.aes, "POST", "decrypt", `{"ciphertext":"ncpkms:v9:` + body + `"}`, 400, "InvalidParameter", ""},
		{"re-encrypt unknown version", ks.aes, "POST", "re-encrypt", `{"ciphertext":"ncpkms:v9:` + body + `"}`, 400, "InvalidParameter", ""},
		{"tampered ciphertext", ks.aes, "POST", "decrypt", `{"ciphertext":"ncpkms:v1:AAAA` + body[4:] + `"}`, 400, "InvalidParameter", ""},
		{"verify unknown version", ks.ecdsa, "POST", "verify", `{"data":"` + msg + `","signature":"ncpkms:v9:` + sigBody + `"}`, 404, "ResourceNotFound", ""},
		{"verify unknown version, not DER", ks.ecdsa, "POST", "verify", `{"data":"` + msg + `","signature":"ncpkms:v9:AAAA"}`, 404, "ResourceNotFound", ""},
		{"verify ECDSA not DER", ks.ecdsa, "POST", "verify", `{"data":"` + msg + `","signature":"ncpkms:v1:AAAA"}`, 400, "InvalidParameter", ""},
		{"verify malformed signature", ks.ecdsa, "POST", "verify", `{"data":"` + msg + `","signature":"v1:AAAA"}`, 400, "InvalidParameter", "signature"},
		{"public key unknown version", ks.rsa, "GET", "versions/9/public-key", ``, 404, "ResourceNotFound", ""},
		{"public key version 0x1", ks.rsa, "GET", "versions/0x1/public-key", ``, 400, "InvalidParameter", ""},
		{"sign with AES", ks.aes, "POST", "sign", `{"data":"` + msg + `"}`, 400, "InvalidParameter", ""},
		{"encrypt with ECDSA", ks.ecdsa, "POST", "encrypt", `{"plaintext":"` + msg + `"}`, 400, "InvalidParameter", ""},
		{"not JSON", ks.aes, "POST", "encrypt", `plaintext=bQ==`, 400, "InvalidParameter", ""},
	}
	for _, token := range []bool{false, true} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/token=%v", c.name, token), func(t *testing.T) {
				status, b := ks.call(c.k, token, c.method, c.op, c.body)
				if status != c.status {
					t.Fatalf("%d %s, want %d %s", status, b, c.status, c.code)
				}
				code, fields := v3ErrorCode(t, b)
				if code != c.code {
					t.Errorf("errorCode %s, want %s (%s)", code, c.code, b)
				}
				if c.field != "" && (len(fields) != 1 || fields[0] != c.field) {
					t.Errorf("fieldErrors %v, want [%s] (%s)", fields, c.field, b)
				}
			})
		}
	}
	// RSA: a signature of the wrong length is valid false, not an error.
	if v := ks.ok(t, ks.rsa, false, "POST", "verify", `{"data":"`+msg+`","signature":"ncpkms:v1:AAAA"}`); v["valid"] != false {
		t.Errorf("RSA verify of a short signature: %v, want valid false", v)
	}
	// A text/plain body is 415.
	status, b := ks.e.rawWith("POST", "/kms/v3/keys/"+ks.aes.tag+"/encrypt", `{"plaintext":"bQ=="}`, func(r *http.Request) {
		r.Header.Set("Content-Type", "text/plain")
		signRaw(ks.e, r)
	})
	if status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %s, want 415", status, b)
	}
}

// TestV3TokenRouteTagCase: a token route answers 401 when the keyTag is not
// the lower-case tag as issued, before the token is looked at; the same
// token works with the tag as issued.
func TestV3TokenRouteTagCase(t *testing.T) {
	ks := newV3Keys(t)
	for _, op := range []struct{ method, path, body string }{
		{"POST", "encrypt", `{"plaintext":"bQ=="}`},
		{"POST", "batch-encrypt", `{"requests":[{"plaintext":"bQ=="}]}`},
		{"GET", "versions/1/public-key", ""},
	} {
		k := ks.aes
		if op.method == "GET" {
			k = ks.rsa
		}
		status, b := ks.e.rawWith(op.method, "/kms/v3/token/keys/"+strings.ToUpper(k.tag)+"/"+op.path, op.body, func(r *http.Request) {
			r.Header.Set("x-ncp-ocapi-token", k.token)
		})
		if status != http.StatusUnauthorized {
			t.Errorf("%s with an upper-case tag: %d %s, want 401", op.path, status, b)
		}
		if status, b := ks.call(k, true, op.method, op.path, op.body); status != http.StatusOK {
			t.Errorf("%s with the tag as issued: %d %s, want 200", op.path, status, b)
		}
	}
	// Every token route checks the tag first, whatever the body.
	for _, op := range []string{"encrypt", "decrypt", "re-encrypt", "batch-encrypt", "batch-decrypt", "batch-re-encrypt",
		"sign", "verify", "issue-custom-key"} {
		tag := ks.aes.tag
		mixed := strings.ToUpper(tag[:1]) + tag[1:]
		if mixed == tag {
			mixed = "A" + tag[1:]
		}
		status, b := ks.e.rawWith("POST", "/kms/v3/token/keys/"+mixed+"/"+op, "{}", func(r *http.Request) {
			r.Header.Set("x-ncp-ocapi-token", ks.aes.token)
		})
		if status != http.StatusUnauthorized {
			t.Errorf("%s with a tag not as issued: %d %s, want 401", op, status, b)
		}
	}
	// A token of one key does not open another key's token route.
	status, b := ks.e.rawWith("POST", "/kms/v3/token/keys/"+ks.rsa.tag+"/encrypt", `{"plaintext":"bQ=="}`, func(r *http.Request) {
		r.Header.Set("x-ncp-ocapi-token", ks.aes.token)
	})
	if status != http.StatusUnauthorized {
		t.Errorf("another key's token: %d %s, want 401", status, b)
	}
}

// TestV3CryptoCrossAPI: ciphertexts and signatures cross API 2.0 and 3.0 in
// both directions, single and batch, account and token.
func TestV3CryptoCrossAPI(t *testing.T) {
	ks := newV3Keys(t)
	c := ks.e.client(1)
	ctx := context.Background()
	ctx2 := b64s("ctx")

	// 2.0 → 3.0
	ct2, err := c.Encrypt(ctx, ks.conv.tag, []byte("from 2.0"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []bool{false, true} {
		got := ks.ok(t, ks.conv, token, "POST", "decrypt", `{"ciphertext":"`+ct2+`","context":"`+ctx2+`"}`)
		if got["plaintext"] != b64s("from 2.0") {
			t.Errorf("3.0 decrypt of a 2.0 ciphertext: %v", got)
		}
		got = ks.ok(t, ks.conv, token, "POST", "batch-decrypt", `{"requests":[{"ciphertext":"`+ct2+`","context":"`+ctx2+`"}]}`)
		if r := got["results"].(map[string]any)["0"].(map[string]any); r["plaintext"] != b64s("from 2.0") {
			t.Errorf("3.0 batch-decrypt of a 2.0 ciphertext: %v", got)
		}
	}
	// Convergent: the same plaintext and context give the same ciphertext on both.
	ct3 := ks.ok(t, ks.conv, false, "POST", "encrypt", `{"plaintext":"`+b64s("from 2.0")+`","context":"`+ctx2+`"}`)["ciphertext"]
	if ct3 != ct2 {
		t.Errorf("convergent ciphertext differs between the APIs: %v and %s", ct3, ct2)
	}

	// 3.0 → 2.0
	for _, token := range []bool{false, true} {
		ct := ks.ok(t, ks.aes, token, "POST", "encrypt", `{"plaintext":"`+b64s("from 3.0")+`"}`)["ciphertext"].(string)
		if p, err := c.Decrypt(ctx, ks.aes.tag, ct, nil); err != nil || string(p) != "from 3.0" {
			t.Errorf("2.0 decrypt of a 3.0 ciphertext: %q, %v", p, err)
		}
		res := ks.ok(t, ks.aes, token, "POST", "batch-encrypt", `{"requests":[{"plaintext":"`+b64s("a")+`"},{"plaintext":"`+b64s("b")+`"}]}`)["results"].(map[string]any)
		cts := []string{res["0"].(map[string]any)["ciphertext"].(string), res["1"].(map[string]any)["ciphertext"].(string)}
		if ps, err := c.DecryptMany(ctx, ks.aes.tag, cts, nil); err != nil || string(ps[0]) != "a" || string(ps[1]) != "b" {
			t.Errorf("2.0 decrypt of 3.0 batch ciphertexts: %q, %v", ps, err)
		}
		ck := ks.ok(t, ks.aes, token, "POST", "issue-custom-key", `{"requestPlainKey":true}`)
		if p, err := c.Decrypt(ctx, ks.aes.tag, ck["ciphertext"].(string), nil); err != nil || base64.StdEncoding.EncodeToString(p) != ck["plaintext"] {
			t.Errorf("2.0 decrypt of a 3.0 custom key: %v", err)
		}
	}

	// Signatures, both ways, both key types.
	for _, k := range []v3Key{ks.rsa, ks.ecdsa} {
		sig2, err := c.Sign(ctx, k.tag, []byte("signed"))
		if err != nil {
			t.Fatal(err)
		}
		for _, token := range []bool{false, true} {
			if v := ks.ok(t, k, token, "POST", "verify", `{"data":"`+b64s("signed")+`","signature":"`+sig2+`"}`); v["valid"] != true {
				t.Errorf("3.0 verify of a 2.0 signature: %v", v)
			}
			sig3 := ks.ok(t, k, token, "POST", "sign", `{"data":"`+b64s("signed")+`"}`)["signature"].(string)
			if ok, err := c.Verify(ctx, k.tag, []byte("signed"), sig3); err != nil || !ok {
				t.Errorf("2.0 verify of a 3.0 signature: %v, %v", ok, err)
			}
		}
		pem2, err := c.PublicKey(ctx, k.tag, 1)
		if err != nil {
			t.Fatal(err)
		}
		if pk := ks.ok(t, k, false, "GET", "versions/1/public-key", ""); pk["publicKey"] != pem2 || pk["version"] != 1.0 {
			t.Errorf("3.0 public key differs from 2.0's: %v", pk)
		}
	}

	// A rotation through 2.0: 3.0 encrypts with version 2 and still
	// decrypts version 1; re-encrypt moves a version-1 ciphertext to 2.
	old := ks.ok(t, ks.aes, false, "POST", "encrypt", `{"plaintext":"`+b64s("old")+`"}`)["ciphertext"].(string)
	if _, err := c.Rotate(ctx, ks.aes.tag); err != nil {
		t.Fatal(err)
	}
	if ct := ks.ok(t, ks.aes, false, "POST", "encrypt", `{"plaintext":"`+b64s("new")+`"}`)["ciphertext"].(string); !strings.HasPrefix(ct, "ncpkms:v2:") {
		t.Errorf("after a 2.0 rotation 3.0 encrypts as %s, want v2", ct)
	}
	re := ks.ok(t, ks.aes, true, "POST", "re-encrypt", `{"ciphertext":"`+old+`"}`)["ciphertext"].(string)
	if p, err := c.Decrypt(ctx, ks.aes.tag, re, nil); !strings.HasPrefix(re, "ncpkms:v2:") || err != nil || string(p) != "old" {
		t.Errorf("re-encrypt after rotation: %s → %q, %v", re, p, err)
	}
}

// signRaw signs r with keystore 1's access key (for rawWith callers that set
// their own headers).
func signRaw(e *env, r *http.Request) {
	sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
}
