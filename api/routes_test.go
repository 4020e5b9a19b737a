package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// call sends a signed request and pins its answer in testdata/<name>.golden.
func (e *env) call(name, method, path, body string) []byte {
	e.t.Helper()
	status, b := e.raw(method, path, body)
	golden(e.t, name, status, b)
	return b
}

// data decodes field of the "data" object of a success body.
func data(t testing.TB, body []byte, field string) string {
	t.Helper()
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	raw := env.Data[field]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// TestRoutesGolden walks every route of ncp-kms-api.md §5 rows 1-24, the API
// 1.0 routes, /healthz and the access-key route once, and pins each answer.
func TestRoutesGolden(t *testing.T) {
	e := newEnv(t)
	created := e.call("create_key", "POST", "/kms/v1/keys",
		`{"keyName":"orders","keyType":"AES256","protectionType":"BASIC","isAutoRotation":false,"memo":"for orders"}`)
	tag := data(t, created, "keyTag")
	k := "/kms/v1/keys/" + tag
	e.call("key_list", "GET", "/kms/v1/keys?pageNo=1&pageSize=10", "")
	e.call("key_info", "GET", k, "")
	e.clk.Add(time.Second)
	e.call("disable_key", "POST", k+"/disable", "")
	e.call("enable_key", "POST", k+"/enable", "")
	e.call("update_name", "PUT", k+"/name", `{"keyName":"orders-v2"}`)
	e.call("update_memo", "PUT", k+"/memo", `{"memo":"renamed"}`)
	ct := data(t, e.call("encrypt", "POST", k+"/encrypt", `{"plaintext":"aGVsbG8="}`), "ciphertext")
	e.call("rotate", "POST", k+"/rotate", "")
	e.call("enable_auto_rotation", "POST", k+"/enable-auto-rotation", "")
	e.call("rotation_period", "PUT", k+"/rotation-period", `{"rotationPeriod":30}`)
	e.call("disable_auto_rotation", "POST", k+"/disable-auto-rotation", "")
	e.call("versions", "GET", k+"/versions", "")
	e.call("disable_version", "POST", k+"/versions/1/disable", "")
	e.call("enable_version", "POST", k+"/versions/1/enable", "")
	e.call("encrypt_array", "POST", k+"/encrypt", `{"plaintext":["aGVsbG8=","d29ybGQ="]}`)
	e.call("decrypt", "POST", k+"/decrypt", `{"ciphertext":"`+ct+`"}`)
	e.call("decrypt_array", "POST", k+"/decrypt", `{"ciphertext":["`+ct+`","`+ct+`"]}`)
	e.call("re_encrypt", "POST", k+"/re-encrypt", `{"ciphertext":"`+ct+`"}`)
	e.call("create_custom_key", "POST", k+"/create-custom-key", `{"requestPlainKey":true,"bits":128}`)
	e.call("create_custom_key_sealed", "POST", k+"/create-custom-key", `{}`)
	e.call("v1_encrypt", "POST", "/keys/v1/"+tag+"/encrypt", `{"plaintext":"aGVsbG8="}`)
	e.call("v2_decrypt", "POST", "/keys/v2/"+tag+"/decrypt", `{"ciphertext":"`+ct+`"}`)

	rsaTag := data(t, e.call("create_key_rsa", "POST", "/kms/v1/keys", `{"keyName":"signer","keyType":"RSA2048","protectionType":"BASIC","isAutoRotation":true,"rotationPeriod":7}`), "keyTag")
	r := "/kms/v1/keys/" + rsaTag
	e.call("get_pub_key", "POST", r+"/get-pub-key", `{"keyVersion":1}`)
	sig := data(t, e.call("sign", "POST", r+"/sign", `{"data":"bWVzc2FnZQ=="}`), "signature")
	e.call("verify", "POST", r+"/verify", `{"data":"bWVzc2FnZQ==","signature":"`+sig+`"}`)
	e.call("verify_false", "POST", r+"/verify", `{"data":"b3RoZXI=","signature":"`+sig+`"}`)
	e.call("v2_sign", "POST", "/keys/v2/"+rsaTag+"/sign", `{"data":"bWVzc2FnZQ=="}`)

	e.call("request_deletion", "POST", k+"/request-deletion", "")
	e.call("key_info_revoke", "GET", k, "")
	e.call("key_list_revoke", "GET", "/kms/v1/keys", "")
	e.call("cancel_deletion", "POST", k+"/cancel-deletion", "")
	e.call("request_deletion_again", "POST", k+"/request-deletion", "")
	e.call("delete_key", "DELETE", k, "")
	e.call("key_info_deleted", "GET", k, "")

	e.call("create_access_key", "POST", "/nkms/v1/access-keys", `{"keystoreId":3}`)
	status, body := e.rawWith("GET", "/healthz", "", nil)
	if status != http.StatusOK || string(body) != "ok" {
		t.Fatalf("healthz: %d %q", status, body)
	}

	// Nothing secret reached the log: no secret key, plaintext, ciphertext or signature.
	logs := e.logs.String()
	if !strings.Contains(logs, "msg=request") {
		t.Fatal("no request was logged; the check below could not fail")
	}
	for _, secret := range []string{e.creds[1].SecretKey, e.creds[2].SecretKey, "aGVsbG8=", "bWVzc2FnZQ==", "ncpkms:", "PUBLIC KEY", ct, sig} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

// TestErrorBodiesGolden pins one body of each error of decisions.md D3.
func TestErrorBodiesGolden(t *testing.T) {
	e := newEnv(t)
	tag := data(t, e.call("setup_create", "POST", "/kms/v1/keys", `{"keyName":"errs","keyType":"AES256"}`), "keyTag")
	k := "/kms/v1/keys/" + tag
	status, b := e.rawWith("GET", "/kms/v1/keys", "", nil)
	golden(t, "error_401_missing_auth", status, b)
	status, b = e.raw("GET", "/kms/v1/nothing", "")
	golden(t, "error_404_route", status, b)
	status, b = e.raw("PATCH", k, "")
	golden(t, "error_405_method", status, b)
	status, b = e.raw("POST", k+"/encrypt", `{"plaintext":"`+strings.Repeat("A", 300<<10)+`"}`)
	golden(t, "error_413_too_large", status, b)
	status, b = e.raw("POST", k+"/encrypt", `{"plaintext":"not base64!"}`)
	golden(t, "error_400_invalid", status, b)
	status, b = e.raw("GET", "/kms/v1/keys/"+strings.Repeat("0", 64), "")
	golden(t, "error_404_not_found", status, b)
	status, b = e.raw("POST", "/kms/v1/keys", `{"keyName":"ERRS","keyType":"AES256"}`)
	golden(t, "error_409_conflict", status, b)
	status, b = e.raw("DELETE", k, "")
	golden(t, "error_422_invalid_status", status, b)
	status, b = e.raw("POST", "/kms/v1/keys/"+tag+"/decrypt", `{"ciphertext":"ncpkms:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`)
	golden(t, "error_400_decrypt", status, b)
}
