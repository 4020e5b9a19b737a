package nkms_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/nkms/nkms/client"
)

// TestHSMConcurrentKeys: on a fresh token, whose first key of each kind is
// probed (AES-GCM, the HMAC of convergent keys, RSA-OAEP and signing),
// keys of every kind are created at once over HTTP, and each works right
// away: the probes run once under their locks while the other requests
// wait or pass, and no request sees a half-probed token. Run with -race.
func TestHSMConcurrentKeys(t *testing.T) {
	ctx := context.Background()
	e := newHSMEnv(t, true, false)
	kinds := []client.CreateKeyRequest{
		{KeyType: "AES256"}, {KeyType: "AES256", IsConvergent: true}, {KeyType: "ECDSA"}, {KeyType: "RSA2048"},
	}
	const each = 3
	var wg sync.WaitGroup
	errs := make(chan error, len(kinds)*each)
	for i := range len(kinds) * each {
		req := kinds[i%len(kinds)]
		req.KeyName, req.ProtectionType = fmt.Sprintf("key%d", i), "COMMON_HSM"
		wg.Go(func() {
			k, err := e.v2.CreateKey(ctx, req)
			if err != nil {
				errs <- fmt.Errorf("create %s convergent=%v: %w", req.KeyType, req.IsConvergent, err)
				return
			}
			msg := []byte("made while others were made")
			if req.KeyType == "ECDSA" {
				sig, err := e.v2.Sign(ctx, k.KeyTag, msg)
				if err == nil {
					var ok bool
					if ok, err = e.v2.Verify(ctx, k.KeyTag, msg, sig); err == nil && !ok {
						err = fmt.Errorf("signature does not verify")
					}
				}
				if err != nil {
					errs <- fmt.Errorf("ECDSA %s: %w", k.KeyTag, err)
				}
				return
			}
			var aad []byte // a convergent key's context
			if req.IsConvergent {
				aad = []byte("orders")
			}
			ct, err := e.v2.Encrypt(ctx, k.KeyTag, msg, aad)
			if err == nil {
				var pt []byte
				if pt, err = e.v2.Decrypt(ctx, k.KeyTag, ct, aad); err == nil && string(pt) != string(msg) {
					err = fmt.Errorf("decrypted %q", pt)
				}
			}
			if err != nil {
				errs <- fmt.Errorf("%s convergent=%v %s: %w", req.KeyType, req.IsConvergent, k.KeyTag, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One object per AES key, two per convergent key, one entry per pair.
	if n, want := len(e.objects(t)), each*(1+2+1+1); n != want {
		t.Errorf("token objects: %d, want %d", n, want)
	}
}
