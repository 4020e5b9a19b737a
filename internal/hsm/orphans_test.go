package hsm_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// entries returns the Objects entries with CKA_ID id.
func entries(t *testing.T, tok *hsm.Token, id []byte) []hsm.Object {
	t.Helper()
	objs, err := tok.Objects()
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(objs, func(o hsm.Object) bool { return !bytes.Equal(o.ID, id) })
}

// TestOrphanHalves: a key pair that lost one half — the public key, which
// someone deleted (a lone private key: secret material), or the private
// key, deleted by a Destroy that stopped before the public one (crypto11
// deletes a pair in that order) — is still one Objects entry, and Destroy
// deletes what is left. A whole pair is one entry too, and a convergent
// AES256 key's two secret objects are two.
func TestOrphanHalves(t *testing.T) {
	tok, cfg := hsmtest.OpenConfig(t)
	for _, tc := range []struct {
		alg  crypto.Algorithm
		lose hsmtest.Class // the half deleted behind nkms's back
		left hsmtest.Class
	}{
		{crypto.ECDSA, hsmtest.PublicKey, hsmtest.PrivateKey},
		{crypto.ECDSA, hsmtest.PrivateKey, hsmtest.PublicKey},
		{crypto.RSA2048, hsmtest.PublicKey, hsmtest.PrivateKey},
		{crypto.RSA2048, hsmtest.PrivateKey, hsmtest.PublicKey},
	} {
		id, _ := crypto.RandomBytes(20)
		label := hsm.LabelPrefix + "orphan"
		if err := tok.Generate(tc.alg, false, id, label); err != nil {
			t.Fatal(err)
		}
		if got := entries(t, tok, id); len(got) != 1 || got[0].Label != label {
			t.Fatalf("%s pair: Objects gives %v, want one entry labelled %q", tc.alg, got, label)
		}
		if n := hsmtest.DeleteObjects(t, cfg, id, tc.lose); n != 1 {
			t.Fatalf("%s: deleted %d halves, want 1", tc.alg, n)
		}
		if got := entries(t, tok, id); len(got) != 1 || got[0].Label != label {
			t.Fatalf("%s with a lone half (class %d): Objects gives %v, want one entry labelled %q", tc.alg, tc.left, got, label)
		}
		if err := tok.Destroy(id); err != nil {
			t.Fatalf("%s: Destroy of a lone half: %v", tc.alg, err)
		}
		if n := hsmtest.CountObjects(t, cfg, id, tc.left); n != 0 {
			t.Fatalf("%s: %d objects of class %d left after Destroy, want 0", tc.alg, n, tc.left)
		}
		if got := entries(t, tok, id); len(got) != 0 {
			t.Fatalf("%s: Objects after Destroy: %v", tc.alg, got)
		}
		if err := tok.Destroy(id); err != nil {
			t.Fatalf("%s: Destroy with nothing left: %v, want nil", tc.alg, err)
		}
	}

	id, _ := crypto.RandomBytes(20)
	if err := tok.Generate(crypto.AES256, true, id, hsm.LabelPrefix+"convergent"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, tok, id); len(got) != 2 {
		t.Fatalf("convergent AES256: Objects gives %d entries, want 2 (the AES and the HMAC key)", len(got))
	}
	if err := tok.Destroy(id); err != nil {
		t.Fatal(err)
	}
	if n := hsmtest.CountObjects(t, cfg, id, hsmtest.SecretKey); n != 0 {
		t.Fatalf("convergent AES256: %d secret objects left after Destroy", n)
	}
}

// TestForeignObjectsUntouched: objects whose label does not start with
// hsm.LabelPrefix — another application's, the --root-key-hsm wrapping
// key — are neither listed nor deleted, even with the id of an nkms
// object, and an nkms object with that id still is.
func TestForeignObjectsUntouched(t *testing.T) {
	tok, cfg := hsmtest.OpenConfig(t)
	id, _ := crypto.RandomBytes(20)
	hsmtest.GenerateForeign(t, cfg, id, "vendor-key")
	hsmtest.GenerateForeign(t, cfg, []byte("other-id"), "nkms") // no ':' after nkms
	if _, _, err := tok.RootWrapKey("root-wrap", true); err != nil {
		t.Fatal(err)
	}
	if objs, err := tok.Objects(); err != nil || len(objs) != 0 {
		t.Fatalf("Objects with only foreign objects: %v (%v), want none", objs, err)
	}
	if err := tok.Destroy(id); err != nil {
		t.Fatal(err)
	}
	if n := hsmtest.CountObjects(t, cfg, id, hsmtest.SecretKey); n != 1 {
		t.Fatalf("foreign object after Destroy of its id: %d left, want 1", n)
	}

	// An nkms pair with the foreign object's id: Destroy takes the pair only.
	if err := tok.Generate(crypto.ECDSA, false, id, hsm.LabelPrefix+"mine"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, tok, id); len(got) != 1 || got[0].Label != hsm.LabelPrefix+"mine" {
		t.Fatalf("Objects: %v, want only the nkms pair", got)
	}
	if err := tok.Destroy(id); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[hsmtest.Class]int{hsmtest.SecretKey: 1, hsmtest.PrivateKey: 0, hsmtest.PublicKey: 0} {
		if n := hsmtest.CountObjects(t, cfg, id, c); n != want {
			t.Errorf("class %d after Destroy: %d objects, want %d", c, n, want)
		}
	}
	if _, created, err := tok.RootWrapKey("root-wrap", false); err != nil || created {
		t.Fatalf("the root key wrapping key after Objects and Destroy: %v, created %v", err, created)
	}
}

// TestDestroyEmptyID: an empty id is refused, never a wildcard.
func TestDestroyEmptyID(t *testing.T) {
	tok := hsmtest.Open(t)
	if err := tok.Destroy(nil); err == nil {
		t.Fatal("Destroy(nil): got nil, want an error")
	}
	if _, err := tok.Load(crypto.ECDSA, false, []byte("none")); !errors.Is(err, hsm.ErrNoObject) {
		t.Fatalf("Load of no object: %v", err)
	}
}
