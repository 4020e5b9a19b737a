package api_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nkms/nkms/client"
)

// TestChangesTakeEffectOnTheNextRequest runs the server's own stack (the
// cache over bolt, the key cache) under a concurrent encrypt load and checks
// that disable, version disable, access-key revocation and deletion are
// refused by the very next request after the change returned.
func TestChangesTakeEffectOnTheNextRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, c, url := serverStack(t, false)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "fresh", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := c.Encrypt(ctx, k.KeyTag, []byte("v1"), nil)

	// Background load that keeps the caches warm.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok atomic.Int64
	warm := make(chan struct{})
	var warmOnce sync.Once
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); err == nil && ok.Add(1) == 50 {
					warmOnce.Do(func() { close(warm) })
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	<-warm // the load is running and the caches are warm

	status := func(err error) int {
		if ce, isCE := err.(*client.Error); isCE {
			return ce.Status
		}
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return 200
	}
	for range 20 {
		if _, err := c.DisableKey(ctx, k.KeyTag); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 422 {
			t.Fatalf("encrypt right after disable: %v, want 422", err)
		}
		if _, err := c.EnableKey(ctx, k.KeyTag); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 200 {
			t.Fatalf("encrypt right after enable: %v", err)
		}
	}
	if _, err := c.Rotate(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, k.KeyTag, v1, nil); status(err) != 200 {
		t.Fatalf("decrypt v1 before disabling it: %v", err)
	}
	if _, err := c.DisableVersion(ctx, k.KeyTag, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, k.KeyTag, v1, nil); status(err) != 422 {
		t.Fatalf("decrypt right after version disable: %v, want 422", err)
	}

	other, err := c.CreateAccessKey(ctx, 1, "crypto")
	if err != nil {
		t.Fatal(err)
	}
	oc, _ := client.New(url, other.AccessKey, other.SecretKey)
	if _, err := oc.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 200 {
		t.Fatalf("new access key: %v", err)
	}
	if err := c.RevokeAccessKey(ctx, other.AccessKey); err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 401 {
		t.Fatalf("revoked access key on the next request: %v, want 401", err)
	}

	if _, err := c.RequestDeletion(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 422 {
		t.Fatalf("encrypt right after request deletion: %v, want 422", err)
	}
	if err := c.DeleteKey(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); status(err) != 404 {
		t.Fatalf("encrypt right after delete: %v, want 404", err)
	}
}
