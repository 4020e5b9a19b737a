package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// noRetry makes a client answer a 429 at once: these tests count them, and
// their clock stands still, so a retry would only wait for nothing.
var noRetry = client.WithRetries(1)

// gatewayCode is the errorCode of a gateway error body.
func gatewayCode(t *testing.T, body []byte) string {
	t.Helper()
	var b struct {
		Error struct{ ErrorCode string } `json:"error"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("not a gateway error body: %s", body)
	}
	return b.Error.ErrorCode
}

func TestRateLimitPerCaller(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *api.Config) { c.RateLimitPerCaller = 5 })
	ctx := context.Background()
	created := 0
	var refused []byte
	for i := range 8 { // the clock stands still: 5 tokens, no refill
		status, body := e.raw("POST", "/kms/v1/keys", fmt.Sprintf(`{"keyName":"key-%d","keyType":"AES256"}`, i))
		e.clk.Add(time.Millisecond)
		switch status {
		case http.StatusOK:
			created++
		case http.StatusTooManyRequests:
			refused = body
		default:
			t.Fatalf("create: %d %s", status, body)
		}
	}
	if created != 5 {
		t.Fatalf("created %d keys under a limit of 5/s, want 5", created)
	}
	if code := gatewayCode(t, refused); code != "420" {
		t.Fatalf("429 body has errorCode %q, want 420 (D3): %s", code, refused)
	}
	golden(t, "rate-limited", http.StatusTooManyRequests, refused)
	// Another access key has its own bucket.
	if _, err := e.client(2, noRetry).ListKeys(ctx, 1, 10); err != nil {
		t.Fatalf("keystore 2 is limited by keystore 1's bucket: %v", err)
	}
	if _, err := e.client(1, noRetry).ListKeys(ctx, 1, 10); err == nil {
		t.Fatal("keystore 1's bucket is not empty")
	}
	// A second later, the bucket has refilled; the refused creates did not run.
	e.clk.Add(time.Second)
	keys, err := e.client(1, noRetry).ListKeys(ctx, 1, 100)
	if err != nil {
		t.Fatalf("after a second: %v", err)
	}
	if keys.TotalCount != 5 {
		t.Fatalf("refused creates were executed: %d keys", keys.TotalCount)
	}
}

func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(c *api.Config) { c.RateLimitPerKey = 3 })
	ctx := context.Background()
	c1 := e.client(1, noRetry)
	k, err := c1.CreateKey(ctx, client.CreateKeyRequest{KeyName: "limited", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := c1.CreateKey(ctx, client.CreateKeyRequest{KeyName: "other", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	// Keystore 2 naming keystore 1's key sees a key that does not exist, and does not drain its bucket.
	for range 3 {
		_, err := e.client(2, noRetry).Encrypt(ctx, k.KeyTag, []byte("x"), nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
			t.Fatalf("keystore 2 on keystore 1's key: %v, want 404", err)
		}
	}
	// Create Key has no keyTag in its path: only encrypts below count for the key.
	ok, limited := 0, 0
	for range 5 {
		_, err := c1.Encrypt(ctx, k.KeyTag, []byte("x"), nil)
		var ce *client.Error
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ce) && ce.Status == http.StatusTooManyRequests && ce.ErrorCode == "420":
			limited++
		default:
			t.Fatalf("encrypt: %v", err)
		}
	}
	if ok != 3 || limited != 2 {
		t.Fatalf("%d encrypts passed and %d were limited, want 3 and 2", ok, limited)
	}
	if _, err := c1.Encrypt(ctx, other.KeyTag, []byte("x"), nil); err != nil {
		t.Fatalf("another key is limited too: %v", err)
	}
	// Throttled calls are not in the key's usage log (they did not run).
	e.clk.Add(time.Second)
	acts, err := c1.Activities(ctx, k.KeyTag, client.ActivityQuery{PageNo: 1, PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if acts.TotalCount != 4 {
		t.Fatalf("usage log has %d entries, want the create and the 3 encrypts that ran", acts.TotalCount)
	}
}

func TestRejectReplayedSignatures(t *testing.T) {
	t.Parallel()
	for _, reject := range []bool{false, true} {
		e := newEnvWith(t, func(c *api.Config) { c.RejectReplayedSignatures = reject })
		ts := e.clk.Now()
		sign := func(r *http.Request) {
			sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), ts)
		}
		status, body := e.rawWith("POST", "/kms/v1/keys", `{"keyName":"first","keyType":"AES256"}`, sign)
		if status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, body)
		}
		// The same signature (same URI, same millisecond) with another body.
		e.clk.Add(time.Minute)
		status, body = e.rawWith("POST", "/kms/v1/keys", `{"keyName":"replayed","keyType":"AES256"}`, sign)
		if !reject {
			if status != http.StatusOK {
				t.Fatalf("without replay rejection, a signature may be used again: %d %s", status, body)
			}
			continue
		}
		if status != http.StatusUnauthorized || gatewayCode(t, body) != "200" || !strings.Contains(string(body), "used before") {
			t.Fatalf("replayed signature: %d %s, want 401 errorCode 200", status, body)
		}
		keys, err := e.client(1, noRetry).ListKeys(context.Background(), 1, 10)
		if err != nil || keys.TotalCount != 1 {
			t.Fatalf("the replayed request ran: %d keys (%v)", keys.TotalCount, err)
		}
		// A fresh signature of the same request is fine.
		if status, body := e.raw("POST", "/kms/v1/keys", `{"keyName":"fresh","keyType":"AES256"}`); status != http.StatusOK {
			t.Fatalf("fresh signature: %d %s", status, body)
		}
		// A signature refused as malformed or wrong is not remembered.
		bad := func(r *http.Request) {
			sign(r)
			r.Header.Set(sigv2.HeaderSignatureV2, "AAAA"+r.Header.Get(sigv2.HeaderSignatureV2)[4:])
		}
		e.clk.Add(-time.Minute)
		for range 2 {
			if status, _ := e.rawWith("GET", "/kms/v1/keys", "", bad); status != http.StatusUnauthorized {
				t.Fatalf("tampered signature: %d", status)
			}
		}
	}
}

func TestHealthzReportsReadiness(t *testing.T) {
	t.Parallel()
	var down error
	e := newEnvWith(t, func(c *api.Config) { c.Ready = func(context.Context) error { return down } })
	if status, body := e.rawWith("GET", "/healthz", "", nil); status != http.StatusOK || string(body) != "ok" {
		t.Fatalf("healthy: %d %s", status, body)
	}
	down = errors.New("etcd: no member answered within 1s")
	status, body := e.rawWith("GET", "/healthz", "", nil)
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "no member answered") {
		t.Fatalf("unready: %d %s, want 503 with the reason", status, body)
	}
}
