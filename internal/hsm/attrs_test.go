package hsm_test

import (
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestKeyObjectAttributes: every secret and private key object nkms
// generates is a token object that only a logged-in session can use
// (CKA_PRIVATE, set by nkms whatever the token's default), sensitive and
// not extractable; public halves are token objects.
func TestKeyObjectAttributes(t *testing.T) {
	tok, cfg := hsmtest.OpenConfig(t)
	for _, tc := range []struct {
		alg        crypto.Algorithm
		convergent bool
		secret     int // secret key objects expected (else a pair)
	}{
		{crypto.AES256, false, 1},
		{crypto.AES256, true, 2},
		{crypto.RSA2048, false, 0},
		{crypto.ECDSA, false, 0},
	} {
		id, _ := crypto.RandomBytes(20)
		if err := tok.Generate(tc.alg, tc.convergent, id, "nkms:attrs:v1:1"); err != nil {
			t.Fatal(err)
		}
		secret := hsmtest.Flags(t, cfg, id, hsmtest.SecretKey)
		private := hsmtest.Flags(t, cfg, id, hsmtest.PrivateKey)
		public := hsmtest.Flags(t, cfg, id, hsmtest.PublicKey)
		want := map[string]bool{"token": true, "private": true, "sensitive": true, "extractable": false}
		keys := append(secret, private...)
		if len(secret) != tc.secret || (tc.secret == 0 && (len(private) != 1 || len(public) != 1)) {
			t.Fatalf("%s convergent=%v: %d secret, %d private, %d public objects", tc.alg, tc.convergent, len(secret), len(private), len(public))
		}
		for _, got := range keys {
			for a, v := range want {
				if got[a] != v {
					t.Errorf("%s convergent=%v: a key object has %s=%v, want %v (%v)", tc.alg, tc.convergent, a, got[a], v, got)
				}
			}
		}
		for _, got := range public {
			if !got["token"] {
				t.Errorf("%s: the public half is not a token object", tc.alg)
			}
		}
		if err := tok.Destroy(id); err != nil {
			t.Fatal(err)
		}
	}
}
