package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// TestBusyHeavyPool: with the Service's Heavy pool full, RSA-2048
// private-key operations answer 503 with Retry-After on both wires (2.0:
// the gateway body; 3.0: ServiceUnavailable) and are logged as failed with
// that code, while AES calls, ECDSA signatures and RSA public-key calls,
// which never take a place in the pool, still succeed. The pool is held by the test itself,
// and its queue deadline is 1ns: whether a call waits for it is decided, not
// timed.
func TestBusyHeavyPool(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(1)
	rsa, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	aes, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "aes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ecdsa, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "ecdsa", KeyType: "ECDSA"})
	if err != nil {
		t.Fatal(err)
	}
	msg := b64s("message")
	do := func(path, body string) (int, http.Header, []byte) {
		t.Helper()
		r, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	v2 := "/kms/v1/keys/" + rsa.KeyTag + "/"
	v3 := "/kms/v3/keys/" + rsa.KeyTag + "/"
	_, _, b := do(v2+"encrypt", `{"plaintext":"`+msg+`"}`)
	var enc struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &enc); err != nil || enc.Data.Ciphertext == "" {
		t.Fatalf("RSA encrypt: %s", b)
	}
	ct := enc.Data.Ciphertext
	_, _, b = do(v2+"sign", `{"data":"`+msg+`"}`)
	var sig struct {
		Data struct {
			Signature string `json:"signature"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &sig); err != nil || sig.Data.Signature == "" {
		t.Fatalf("RSA sign: %s", b)
	}

	e.svc.Heavy = nkms.NewHeavyPool(1, time.Nanosecond) // before any request that reads it
	hold, err := e.svc.Heavy.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ path, body string }{
		{v2 + "sign", `{"data":"` + msg + `"}`},
		{v2 + "decrypt", `{"ciphertext":"` + ct + `"}`},
		{v2 + "re-encrypt", `{"ciphertext":"` + ct + `"}`},
		{"/keys/v2/" + rsa.KeyTag + "/sign", `{"data":"` + msg + `"}`},
	} {
		status, h, b := do(tc.path, tc.body)
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
			t.Fatalf("%s with the pool full: %d Retry-After %q %s, want 503 with Retry-After 1", tc.path, status, h.Get("Retry-After"), b)
		}
		var gw struct {
			Error struct{ ErrorCode, Message, Details string } `json:"error"`
		}
		if err := json.Unmarshal(b, &gw); err != nil || gw.Error.ErrorCode != "503" || gw.Error.Message != "Service Unavailable" || gw.Error.Details == "" {
			t.Errorf("%s: body %s, want the gateway body with errorCode 503", tc.path, b)
		}
	}
	for _, tc := range []struct{ path, body string }{
		{v3 + "sign", `{"data":"` + msg + `"}`},
		{v3 + "decrypt", `{"ciphertext":"` + ct + `"}`},
		{v3 + "re-encrypt", `{"ciphertext":"` + ct + `"}`},
		{v3 + "batch-decrypt", `{"requests":[{"ciphertext":"` + ct + `"}]}`},
		{v3 + "batch-re-encrypt", `{"requests":[{"ciphertext":"` + ct + `"}]}`},
	} {
		status, h, b := do(tc.path, tc.body)
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
			t.Fatalf("%s with the pool full: %d Retry-After %q %s, want 503 with Retry-After 1", tc.path, status, h.Get("Retry-After"), b)
		}
		if code, fields := v3ErrorCode(t, b); code != "ServiceUnavailable" || fields != nil {
			t.Errorf("%s: body %s, want errorCode ServiceUnavailable", tc.path, b)
		}
	}

	// Cheap operations never take a place: they succeed with the pool full.
	for _, tc := range []struct{ path, body string }{
		{"/kms/v1/keys/" + aes.KeyTag + "/encrypt", `{"plaintext":"` + msg + `"}`},
		{"/kms/v3/keys/" + aes.KeyTag + "/encrypt", `{"plaintext":"` + msg + `"}`},
		{"/kms/v3/keys/" + aes.KeyTag + "/batch-encrypt", `{"requests":[{"plaintext":"` + msg + `"}]}`},
		{v2 + "encrypt", `{"plaintext":"` + msg + `"}`},
		{v2 + "verify", `{"data":"` + msg + `","signature":"` + sig.Data.Signature + `"}`},
		{"/kms/v1/keys/" + ecdsa.KeyTag + "/sign", `{"data":"` + msg + `"}`}, // ~46 µs: not expensive
		{"/kms/v3/keys/" + ecdsa.KeyTag + "/sign", `{"data":"` + msg + `"}`},
	} {
		if status, _, b := do(tc.path, tc.body); status != http.StatusOK {
			t.Errorf("%s with the pool full: %d %s, want 200", tc.path, status, b)
		}
	}
	// A bad input is still its own 400, not 503: the place is taken only
	// for a well-formed request's first private-key operation.
	if status, _, b := do(v2+"decrypt", `{"ciphertext":"ncpkms:v1:bm90IGEgY2lwaGVydGV4dA=="}`); status != http.StatusBadRequest {
		t.Errorf("malformed RSA ciphertext with the pool full: %d %s, want 400", status, b)
	}

	// The refusals are the key's failed calls, with the 503 code.
	acts, err := c.Activities(ctx, rsa.KeyTag, client.ActivityQuery{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	busy := false
	for _, a := range acts.ActivityLogList {
		busy = busy || a.Data.API.Result == "FAIL" && strings.HasPrefix(a.Message, "503")
	}
	if !busy {
		t.Errorf("usage log has no failed call with message 503: %+v", acts.ActivityLogList)
	}

	hold()
	if status, h, b := do(v2+"sign", `{"data":"`+msg+`"}`); status != http.StatusOK || h.Get("Retry-After") != "" {
		t.Fatalf("sign after the pool freed: %d %s", status, b)
	}
}
