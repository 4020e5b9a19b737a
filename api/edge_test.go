package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// Regression tests of the request edge: every route parses its keyTag once,
// into the canonical form, before anything else sees it.

// TestRateLimitOneBucketPerKeySpelling: the per-key limit counts a key, not
// a spelling of its tag. Before the edge parsed tags, the limiter keyed its
// bucket on the raw path while only the Service lower-cased the tag: three
// spellings of one tag got 29 of 30 requests through a limit of 5/s.
func TestRateLimitOneBucketPerKeySpelling(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *api.Config) { c.RateLimitPerKey = 5 })
	k, err := e.client(1).CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "spelled", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	spellings := []string{k.KeyTag, strings.ToUpper(k.KeyTag), strings.ToUpper(k.KeyTag[:32]) + k.KeyTag[32:]}
	served := 0
	for i := range 30 { // the clock stands still: 5 tokens, no refill
		status, body := e.raw("POST", "/kms/v1/keys/"+spellings[i%3]+"/encrypt", `{"plaintext":"aGk="}`)
		switch status {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("encrypt: %d %s", status, body)
		}
	}
	if served != 5 {
		t.Fatalf("%d of 30 requests in three spellings were served under a limit of 5/s, want 5", served)
	}
}

// TestMalformedTagIsNotFoundFirst: a path value that cannot be a keyTag is a
// key that does not exist, answered before authentication, so that no
// limiter, log or store ever holds it.
func TestMalformedTagIsNotFoundFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tag := range []string{"nope", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("A", 65)} {
		status, body := e.rawWith("POST", "/kms/v1/keys/"+tag+"/encrypt", `{"plaintext":"aGk="}`, nil) // not signed
		var b struct{ Code string }
		if status != http.StatusNotFound || json.Unmarshal(body, &b) != nil || b.Code != "NOT_FOUND" {
			t.Errorf("tag %q, unsigned: got %d %s, want 404 NOT_FOUND", tag, status, body)
		}
		if status, _ := e.raw("GET", "/kms/v1/keys/"+tag, ""); status != http.StatusNotFound {
			t.Errorf("tag %q, signed: got %d, want 404", tag, status)
		}
	}
}

// TestNoUsageLogWritesIntoAnotherKeystore: a request of keystore 2 naming
// keystore 1's key leaves nothing in that key's usage log, whatever its body.
// Before the Service recorded usage itself, a malformed body (refused by
// the handler before the Service looked the key up) was written into the
// other keystore's log as a failed Encrypt of the caller.
func TestNoUsageLogWritesIntoAnotherKeystore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	c1 := e.client(1)
	k, err := c1.CreateKey(ctx, client.CreateKeyRequest{KeyName: "private", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"plaintext":"not base64!"}`, `{`, `{"plaintext":"aGk="}`, `{"ciphertext":"x"}`} {
		for _, route := range []string{"encrypt", "decrypt", "sign", "re-encrypt"} {
			status, _ := e.rawWith("POST", "/kms/v1/keys/"+k.KeyTag+"/"+route, body, func(r *http.Request) {
				sigv2.SignRequest(r, e.creds[2].AccessKey, []byte(e.creds[2].SecretKey), e.clk.Now())
			})
			if status != http.StatusNotFound && status != http.StatusBadRequest {
				t.Fatalf("keystore 2 %s %s: %d", route, body, status)
			}
		}
	}
	acts, err := c1.Activities(ctx, k.KeyTag, client.ActivityQuery{PageNo: 1, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts.ActivityLogList {
		if a.Data.Requestor.ID == e.creds[2].AccessKey {
			t.Errorf("keystore 2's request is in keystore 1's usage log: %+v", a)
		}
	}
}
