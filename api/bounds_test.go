package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
)

// Bounded work per request (issue 13, item 6). These tests measure memory
// with runtime.MemStats, so they do not run in parallel with others.

// allocated returns the bytes the process allocated while fn ran.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestManyEmptyItemsRefused: a body of ~87,000 empty plaintexts to an RSA key
// (found by the attack review: 11 s of CPU, a 31 MB answer and 230 MB of
// memory, because the size check added up plaintext bytes only) is refused
// at once with 400, having encrypted nothing.
func TestManyEmptyItemsRefused(t *testing.T) {
	e := newEnv(t)
	k, err := e.client(1).CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	n := (256<<10 - 20) / 3
	body := `{"plaintext":[` + strings.Repeat(`"",`, n-1) + `""]}`
	var status int
	var answer []byte
	used := allocated(func() { status, answer = e.raw("POST", "/kms/v1/keys/"+k.KeyTag+"/encrypt", body) })
	var b struct{ Code string }
	if status != http.StatusBadRequest || json.Unmarshal(answer, &b) != nil || b.Code != "INVALID_REQUEST" {
		t.Fatalf("%d empty items: got %d %.200s, want 400 INVALID_REQUEST", n, status, answer)
	}
	const bound = 40 << 20
	if used > bound {
		t.Errorf("refusing %d empty items allocated %d MB, want under %d MB", n, used>>20, bound>>20)
	}
	t.Logf("%d empty items: 400, %.1f MB allocated", n, float64(used)/(1<<20))
}

// TestItemsBounded: MaxItems items are served, one more is refused; each
// item counts against the key type's plaintext limit.
func TestItemsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(1)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "aes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	items := func(n int) string {
		return `{"plaintext":[` + strings.TrimSuffix(strings.Repeat(`"aGk=",`, n), ",") + `]}`
	}
	if status, body := e.raw("POST", "/kms/v1/keys/"+k.KeyTag+"/encrypt", items(nkms.MaxItems)); status != http.StatusOK {
		t.Fatalf("%d items: %d %s", nkms.MaxItems, status, body)
	}
	if status, _ := e.raw("POST", "/kms/v1/keys/"+k.KeyTag+"/encrypt", items(nkms.MaxItems+1)); status != http.StatusBadRequest {
		t.Fatalf("%d items: got %d, want 400", nkms.MaxItems+1, status)
	}
	// RSA: 190 bytes in one item, but not in two of 95 (each item counts one byte more).
	rsa, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, rsa.KeyTag, make([]byte, 190), nil); err != nil {
		t.Fatalf("190 bytes in one item: %v", err)
	}
	b95 := `"` + strings.Repeat("A", 128) + `"` // 96 bytes of zeros in Base64
	if status, _ := e.raw("POST", "/kms/v1/keys/"+rsa.KeyTag+"/encrypt", `{"plaintext":[`+b95+`,`+b95+`]}`); status != http.StatusBadRequest {
		t.Fatalf("two items of 96 bytes to RSA: got %d, want 400", status)
	}
}

// TestLargestLegalRequestsBounded: eight concurrent largest legal requests
// (100 items each; RSA decryption, the most expensive per item) stay under a
// stated memory bound.
func TestLargestLegalRequestsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(1)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	cts := make([]string, nkms.MaxItems)
	for i := range cts {
		if cts[i], err = c.Encrypt(ctx, k.KeyTag, []byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := json.Marshal(map[string]any{"ciphertext": cts})
	const bound = 64 << 20 // for all eight
	used := allocated(func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if status, answer := e.raw("POST", "/kms/v1/keys/"+k.KeyTag+"/decrypt", string(body)); status != http.StatusOK {
					t.Errorf("decrypt of %d items: %d %.200s", len(cts), status, answer)
				}
			})
		}
		wg.Wait()
	})
	if used > bound {
		t.Errorf("eight decrypts of %d RSA items allocated %d MB, want under %d MB", len(cts), used>>20, bound>>20)
	}
	t.Logf("eight concurrent decrypts of %d RSA items: %.1f MB allocated", len(cts), float64(used)/(1<<20))
}

// TestRequestPastItsTimeLimitIsAuditedAsFailed: a request still working when
// its time limit passes stops, answers 500 and is audited as failed, never
// as served: before, a request cut off by the server's write timeout was
// audited as 200 although its client got nothing.
func TestRequestPastItsTimeLimitIsAuditedAsFailed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	e := newEnvWith(t, func(c *api.Config) { c.Audit, c.RequestTimeout = l, time.Nanosecond })
	admin := nkms.Caller{AccessKey: e.creds[1].AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	k, err := e.svc.CreateKey(context.Background(), admin, nkms.CreateKeyInput{Name: "slow", Type: nkms.AES256})
	if err != nil {
		t.Fatal(err)
	}
	status, body := e.raw("POST", "/kms/v1/keys/"+k.Tag+"/encrypt", `{"plaintext":"aGk="}`)
	if status != http.StatusInternalServerError {
		t.Fatalf("past its time limit: got %d %s, want 500", status, body)
	}
	recs := auditRecords(t, path)
	last := recs[len(recs)-1]
	if last.Status != http.StatusInternalServerError || last.Code != "INTERNAL_SERVER_ERROR" || last.KeyTag != k.Tag {
		t.Fatalf("audit line %+v, want status 500, code INTERNAL_SERVER_ERROR for the key", last)
	}
}
