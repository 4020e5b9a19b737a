//go:build cgo && !noetcd

package hsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestRootWrapKey: the root key's wrapping key is made only when asked, once,
// sensitive and not extractable; it seals and opens AES-GCM in the token, and
// an altered ciphertext does not open.
func TestRootWrapKey(t *testing.T) {
	tok, cfg := hsmtest.OpenConfig(t)
	if _, _, err := tok.RootWrapKey("root", false); !errors.Is(err, hsm.ErrNoWrapKey) {
		t.Fatalf("no key yet: %v, want ErrNoWrapKey", err)
	}
	w, created, err := tok.RootWrapKey("root", true)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if _, created, err := tok.RootWrapKey("root", true); err != nil || created {
		t.Fatalf("second call: %v, created %v; want the same key", err, created)
	}
	sensitive, extractable, err := hsm.RootWrapKeyAttributes(tok, "root")
	if err != nil || !sensitive || extractable {
		t.Fatalf("CKA_SENSITIVE %v, CKA_EXTRACTABLE %v, %v", sensitive, extractable, err)
	}
	if f := hsmtest.Flags(t, cfg, []byte("nkms-root-key-wrap:root"), hsmtest.SecretKey); len(f) != 1 || !f[0]["private"] || !f[0]["token"] {
		t.Fatalf("the wrapping key's CKA_PRIVATE and CKA_TOKEN: %v, want both true", f)
	}
	nonce := make([]byte, 12)
	ct, err := w.Seal(nonce, []byte("root key bytes"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	w2, _, err := tok.RootWrapKey("root", false)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := w2.Open(nonce, ct, []byte("ad")); err != nil || !bytes.Equal(pt, []byte("root key bytes")) {
		t.Fatalf("open: %q, %v", pt, err)
	}
	ct[0] ^= 1
	if _, err := w2.Open(nonce, ct, []byte("ad")); err == nil {
		t.Fatal("an altered ciphertext opened")
	}
	for _, bad := range []string{"", "nkms:x", "a\x00b"} {
		if _, _, err := tok.RootWrapKey(bad, true); err == nil {
			t.Errorf("label %q accepted", bad)
		}
	}
}
