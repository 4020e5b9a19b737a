package crypto

// Wycheproof vectors (the github.com/c2sp/wycheproof module's embedded test
// data) run through the same unexported wrappers that Key and RootKey call:
// gcmOpen/gcmSeal, oaepDecrypt, pssVerify and ecdsaVerifyDER. Where a vector
// fits the service's own path exactly, it also goes through Key.Decrypt (AES
// vectors; OAEP vectors without a label). "valid" must pass, "invalid" must
// fail, and "acceptable" may do either.
//
// A vector whose parameters the wrappers cannot take (an AES-128 key, a
// 64-bit GCM nonce, an RSA-4096 key, SHA-1 as the hash, ...) is counted as
// skipped with the reason; each test logs how many vectors it ran and
// skipped, and fails when fewer than a floor ran or when the file's
// numberOfTests does not match what the loader saw, so that a broken loader
// cannot pass silently.
//
// Not used: ecdsa_*_p1363_test.json (nkms signatures are DER, never IEEE
// P1363) and rsa_pss_*_params_test.json (keys with RSASSA-PSS parameters in
// the SubjectPublicKeyInfo, which nkms never makes or reads). Key.Verify
// cannot run the ECDSA and PSS vectors: Wycheproof gives only public keys,
// and a Key is loaded from private key material.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/nkms/nkms/internal/testkit/wycheproof"
)

func TestWycheproofAESGCM(t *testing.T) {
	t.Parallel()
	keyRefused := 0
	files := []wycheproof.VectorFile{{Name: "aes_gcm_test.json", Skip: func(g *wycheproof.Group) string {
		switch {
		case g.KeySize != 256:
			// Not run, but newGCM must refuse the key.
			for _, tc := range g.Tests {
				if _, err := newGCM(tc.Key); err != errInvalidKeySize {
					t.Errorf("newGCM(%d-bit key) error = %v, want errInvalidKeySize", g.KeySize, err)
				}
				keyRefused++
			}
			return "AES-128/192 key: nkms keys are AES-256, newGCM refuses the rest"
		case g.IVSize != 8*gcmNonceSize:
			return "GCM nonce other than 96 bits: an nkms body starts with a 12-byte nonce"
		case g.TagSize != 8*gcmTagSize:
			return "GCM tag other than 128 bits: nkms uses the full 16-byte tag"
		}
		return ""
	}}}
	var viaKey int
	wycheproof.Run(t, "AES-256-GCM", 60, files, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
		aead, err := newGCM(tc.Key)
		if err != nil {
			t.Fatalf("newGCM = %v", err)
		}
		body := append(append(append([]byte{}, tc.IV...), tc.CT...), tc.Tag...)
		pt, err := gcmOpen(aead, body, tc.AAD)
		if err != nil && err != ErrDecrypt {
			t.Errorf("gcmOpen error = %v, want ErrDecrypt", err)
		}
		if err == nil && !bytes.Equal(pt, tc.Msg) {
			t.Errorf("gcmOpen = %x, want %x", pt, tc.Msg)
		}
		if tc.Result == "valid" {
			if got := gcmSeal(aead, tc.IV, tc.Msg, tc.AAD); !bytes.Equal(got, body) {
				t.Errorf("gcmSeal = %x, want %x", got, body)
			}
		}
		// The service's path: a convergent key authenticates the context as
		// associated data; a random-nonce key uses none.
		keyDecrypt := func(convergent bool, ad []byte) {
			k, kerr := LoadKey(AES256, convergent, tc.Key)
			if kerr != nil {
				t.Fatalf("LoadKey(AES256, %v) = %v", convergent, kerr)
			}
			kpt, kerr := k.Decrypt(body, ad)
			if (kerr == nil) != (err == nil) || !bytes.Equal(kpt, pt) {
				t.Errorf("Key(convergent %v).Decrypt = %x, %v; gcmOpen = %x, %v", convergent, kpt, kerr, pt, err)
			}
		}
		keyDecrypt(true, tc.AAD)
		if len(tc.AAD) == 0 {
			keyDecrypt(false, []byte("ignored context"))
		}
		viaKey++
		return err == nil
	})
	if keyRefused == 0 {
		t.Errorf("no AES-128/192 vector checked that newGCM refuses the key")
	}
	t.Logf("AES-256-GCM: %d vectors also through Key.Decrypt; %d AES-128/192 keys refused by newGCM", viaKey, keyRefused)
}

func TestWycheproofRSAOAEP(t *testing.T) {
	t.Parallel()
	skip := func(g *wycheproof.Group) string {
		switch {
		case g.SHA != "SHA-256" || g.MGF != "MGF1" || g.MGFSHA != "SHA-256":
			return "hash other than SHA-256 with MGF1-SHA-256: oaepDecrypt is SHA-256 only"
		case g.KeySize != 8*rsaSize:
			return "key other than 2048 bits: nkms keys are RSA2048, LoadKey refuses the rest"
		}
		return ""
	}
	keys := map[*wycheproof.Group]*Key{}
	viaKey := 0
	wycheproof.Run(t, "RSA-OAEP-2048-SHA256", 35, []wycheproof.VectorFile{
		{Name: "rsa_oaep_2048_sha256_mgf1sha256_test.json", Skip: skip},
		{Name: "rsa_oaep_misc_test.json", Skip: skip},
	}, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
		priv, err := x509.ParsePKCS8PrivateKey(g.PrivateKeyPKCS8)
		if err != nil {
			t.Fatalf("ParsePKCS8PrivateKey = %v", err)
		}
		pt, err := oaepDecrypt(priv.(*rsa.PrivateKey), tc.CT, tc.Label)
		if err != nil && err != ErrDecrypt {
			t.Errorf("oaepDecrypt error = %v, want ErrDecrypt", err)
		}
		if err == nil && !bytes.Equal(pt, tc.Msg) {
			t.Errorf("oaepDecrypt = %x, want %x", pt, tc.Msg)
		}
		// The service's path: nkms ciphertexts have no label.
		if len(tc.Label) == 0 {
			k := keys[g]
			if k == nil {
				if k, err = LoadKey(RSA2048, false, g.PrivateKeyPKCS8); err != nil {
					t.Fatalf("LoadKey(RSA2048) = %v", err)
				}
				keys[g] = k
			}
			kpt, kerr := k.Decrypt(tc.CT, nil)
			if (kerr == nil) != (err == nil) || !bytes.Equal(kpt, pt) {
				t.Errorf("Key.Decrypt = %x, %v; oaepDecrypt = %x, %v", kpt, kerr, pt, err)
			}
			viaKey++
		}
		return err == nil
	})
	if viaKey == 0 {
		t.Errorf("no OAEP vector went through Key.Decrypt")
	}
	t.Logf("RSA-OAEP-2048-SHA256: %d vectors (those without a label) also through Key.Decrypt", viaKey)
}

func TestWycheproofRSAPSS(t *testing.T) {
	t.Parallel()
	skip := func(g *wycheproof.Group) string {
		switch {
		case g.SHA != "SHA-256" || g.MGF != "MGF1" || g.MGFSHA != "SHA-256":
			return "hash other than SHA-256 with MGF1-SHA-256: pssVerify is SHA-256 only"
		case g.KeySize != 8*rsaSize:
			return "key other than 2048 bits: nkms keys are RSA2048"
		case g.SLen == 0:
			// rsa.PSSOptions reads SaltLength 0 as PSSSaltLengthAuto, so
			// rsa.VerifyPSS cannot demand an empty salt; pssVerify refuses
			// a salt length of 0 (TestPSSRefusesSaltLengthZero). Key.Verify
			// always passes pssSaltSize, which rsa.VerifyPSS checks exactly.
			return "sLen 0: pssVerify refuses it (0 is rsa.PSSSaltLengthAuto); the service uses 222"
		}
		return ""
	}
	otherSalt := 0
	wycheproof.Run(t, "RSASSA-PSS-2048-SHA256", 100, []wycheproof.VectorFile{
		{Name: "rsa_pss_2048_sha256_mgf1_32_test.json", Skip: skip},
		{Name: "rsa_pss_2048_sha256_mgf1_0_test.json", Skip: skip},
		{Name: "rsa_pss_misc_test.json", Skip: skip},
	}, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
		pub, err := x509.ParsePKIXPublicKey(g.PublicKeyDER)
		if err != nil {
			t.Fatalf("ParsePKIXPublicKey = %v", err)
		}
		ok := pssVerify(pub.(*rsa.PublicKey), tc.Msg, tc.Sig, g.SLen)
		// Key.Verify checks exactly pssSaltSize bytes of salt: a signature
		// with another salt length must not verify there.
		if ok && g.SLen != pssSaltSize {
			if pssVerify(pub.(*rsa.PublicKey), tc.Msg, tc.Sig, pssSaltSize) {
				t.Errorf("a signature with %d bytes of salt verifies with the service's %d", g.SLen, pssSaltSize)
			}
			otherSalt++
		}
		return ok
	})
	if otherSalt == 0 {
		t.Errorf("no PSS vector checked that the service's salt length is exact")
	}
	t.Logf("RSASSA-PSS-2048-SHA256: %d valid signatures refused with the service's %d-byte salt", otherSalt, pssSaltSize)
}

func TestWycheproofECDSAP256(t *testing.T) {
	t.Parallel()
	wycheproof.Run(t, "ECDSA-P256-SHA256", 450, []wycheproof.VectorFile{{Name: "ecdsa_secp256r1_sha256_test.json", Skip: func(g *wycheproof.Group) string {
		if g.SHA != "SHA-256" {
			return "hash other than SHA-256"
		}
		return ""
	}}}, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
		pub, err := x509.ParsePKIXPublicKey(g.PublicKeyDER)
		if err != nil {
			t.Fatalf("ParsePKIXPublicKey = %v", err)
		}
		ok, err := ecdsaVerifyDER(pub.(*ecdsa.PublicKey), tc.Msg, tc.Sig)
		if err != nil && (ok || err != ErrMalformedSignature) {
			t.Errorf("ecdsaVerifyDER = %v, %v; want false, ErrMalformedSignature", ok, err)
		}
		if tc.Result == "valid" && err != nil {
			t.Errorf("valid vector reported as malformed")
		}
		return ok
	})
}
