//go:build cgo && !noetcd

package hsm_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestMechanismRefused: a token's "I do not do that" answers (the
// mechanism, its parameters, the key size or curve, the key type with the
// mechanism) are ErrTokenMechanism, which wraps crypto.ErrUnsupported (the
// Service answers 400 and remembers), also when crypto11 or nkms wraps
// them; failures of the token itself (a lost session, a device error, a
// login gone) and errors that are no PKCS#11 code are not, and pass
// through unchanged (the Service answers 503).
func TestMechanismRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pkcs11.Error(pkcs11.CKR_MECHANISM_INVALID), true},
		{pkcs11.Error(pkcs11.CKR_MECHANISM_PARAM_INVALID), true},
		{pkcs11.Error(pkcs11.CKR_KEY_SIZE_RANGE), true},
		{pkcs11.Error(pkcs11.CKR_DOMAIN_PARAMS_INVALID), true},
		{pkcs11.Error(pkcs11.CKR_CURVE_NOT_SUPPORTED), true},
		{pkcs11.Error(pkcs11.CKR_FUNCTION_NOT_SUPPORTED), true},
		{pkcs11.Error(pkcs11.CKR_TEMPLATE_INCONSISTENT), true},
		{pkcs11.Error(pkcs11.CKR_KEY_TYPE_INCONSISTENT), true},
		{pkcs11.Error(pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED), true},
		{fmt.Errorf("hsm: generating: %w", pkcs11.Error(pkcs11.CKR_MECHANISM_INVALID)), true},
		{pkcs11.Error(pkcs11.CKR_DEVICE_ERROR), false},
		{pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID), false},
		{pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN), false},
		{pkcs11.Error(pkcs11.CKR_DEVICE_MEMORY), false},
		{pkcs11.Error(pkcs11.CKR_GENERAL_ERROR), false},
		{pkcs11.Error(pkcs11.CKR_TOKEN_NOT_PRESENT), false},
		{errors.New("CKR_MECHANISM_INVALID"), false}, // text is not a code
		{nil, false},
	} {
		if got := hsm.MechanismRefused(tc.err); got != tc.want {
			t.Errorf("MechanismRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
		err := hsm.MechanismError("C_Something", tc.err)
		if got := errors.Is(err, hsm.ErrTokenMechanism) && errors.Is(err, crypto.ErrUnsupported); got != tc.want {
			t.Errorf("MechanismError(%v) = %v: ErrTokenMechanism %v, want %v", tc.err, err, got, tc.want)
		}
		if !tc.want && err != tc.err {
			t.Errorf("MechanismError(%v) = %v, want it unchanged", tc.err, err)
		}
		if tc.want && !errors.Is(err, tc.err) {
			t.Errorf("MechanismError(%v) = %v, want it to keep the token's code", tc.err, err)
		}
	}
}

// TestAESProbe: the first AES256 key of a Token is probed (CKM_AES_GCM
// encrypt and decrypt with a 12-byte IV, a 16-byte tag and associated data;
// for a convergent key, CKM_SHA256_HMAC too). On SoftHSM2 the probes pass
// and the keys work. A key the token will not use so — here one without
// CKA_ENCRYPT, or an HMAC key without CKA_SIGN, which SoftHSM2 refuses as
// a token without the mechanism refuses every key — fails the probe with
// ErrTokenMechanism and its objects are deleted; nothing is recorded, so
// the next key is probed again, and once a probe passed it is not repeated.
func TestAESProbe(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	t.Run("gcm", func(t *testing.T) {
		tok, cfg := hsmtest.OpenConfig(t)
		bad := []byte("no-encrypt-aes-key-1")
		if err := hsm.ImportSecret(tok, pkcs11.CKK_AES, bad, hsm.LabelPrefix+"bad", key, false); err != nil {
			t.Fatal(err)
		}
		err := hsm.CheckAES(tok, bad, false)
		if !errors.Is(err, hsm.ErrTokenMechanism) || !errors.Is(err, crypto.ErrUnsupported) {
			t.Fatalf("probe of a key the token will not encrypt with: got %v, want ErrTokenMechanism", err)
		}
		if n := hsmtest.CountObjects(t, cfg, bad, hsmtest.SecretKey); n != 0 {
			t.Fatalf("a key that failed the probe left %d objects", n)
		}

		_, k := gen(t, tok, crypto.AES256, "aes") // probes again, and passes
		body, err := k.Encrypt([]byte("after the probe"), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k.Decrypt(body, []byte("ad")); err != nil || string(pt) != "after the probe" {
			t.Fatalf("round trip after the probe: %q, %v", pt, err)
		}

		bad2 := []byte("no-encrypt-aes-key-2")
		if err := hsm.ImportSecret(tok, pkcs11.CKK_AES, bad2, hsm.LabelPrefix+"bad2", key, false); err != nil {
			t.Fatal(err)
		}
		if err := hsm.CheckAES(tok, bad2, false); err != nil {
			t.Fatalf("check after a probe passed: %v, want nil (no second probe)", err)
		}
	})
	t.Run("hmac", func(t *testing.T) {
		tok, cfg := hsmtest.OpenConfig(t)
		id := []byte("convergent-no-sign-1")
		if err := hsm.ImportSecret(tok, pkcs11.CKK_AES, id, hsm.LabelPrefix+"c", key, true); err != nil {
			t.Fatal(err)
		}
		if err := hsm.ImportSecret(tok, pkcs11.CKK_GENERIC_SECRET, id, hsm.LabelPrefix+"c", key, false); err != nil {
			t.Fatal(err)
		}
		if err := hsm.CheckAES(tok, id, true); !errors.Is(err, hsm.ErrTokenMechanism) {
			t.Fatalf("probe of an HMAC key the token will not sign with: got %v, want ErrTokenMechanism", err)
		}
		if n := hsmtest.CountObjects(t, cfg, id, hsmtest.SecretKey); n != 0 {
			t.Fatalf("a convergent key that failed the probe left %d objects", n)
		}
		// The token's HMAC is HMAC-SHA-256 (known key, crypto/hmac).
		kid := []byte("known-hmac-key-id-01")
		if err := hsm.ImportSecret(tok, pkcs11.CKK_GENERIC_SECRET, kid, hsm.LabelPrefix+"k", key, true); err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{{}, []byte("abc"), bytes.Repeat([]byte{1}, 5000)} {
			want := hmac.New(sha256.New, key)
			want.Write(data)
			if got, err := hsm.HMAC(tok, kid, data); err != nil || !hmac.Equal(got, want.Sum(nil)) {
				t.Fatalf("token CKM_SHA256_HMAC of %d bytes: got %x, %v; want %x", len(data), got, err, want.Sum(nil))
			}
		}

		cid, _ := crypto.RandomBytes(20)
		if err := tok.Generate(crypto.AES256, true, cid, hsm.LabelPrefix+"convergent"); err != nil {
			t.Fatalf("convergent AES256 on SoftHSM2: %v", err)
		}
		k, err := tok.Load(crypto.AES256, true, cid)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Encrypt([]byte("same"), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.Encrypt([]byte("same"), nil)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("convergent encryption twice: equal %v, %v", bytes.Equal(a, b), err)
		}
	})
}

// TestSignProbe: the first RSA2048 key pair of a Token must sign with
// RSASSA-PSS (salt 222) in a way its public key verifies, or it is deleted
// and refused with ErrTokenMechanism (here: a pair the token will not sign
// with, as a token without the mechanism or that caps the salt answers);
// a pair that passes is probed once, and later pairs are not probed again.
func TestSignProbe(t *testing.T) {
	tok, cfg := hsmtest.OpenConfig(t)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("rsa-pair-no-sign-0001")
	if err := hsm.ImportRSAUsage(tok, bad, hsm.LabelPrefix+"nosign", priv, false); err != nil {
		t.Fatal(err)
	}
	if err := hsm.CheckSign(tok, crypto.RSA2048, bad); !errors.Is(err, hsm.ErrTokenMechanism) || !errors.Is(err, crypto.ErrUnsupported) {
		t.Fatalf("probe of a pair the token will not sign with: got %v, want ErrTokenMechanism", err)
	}
	for _, c := range []hsmtest.Class{hsmtest.PrivateKey, hsmtest.PublicKey} {
		if n := hsmtest.CountObjects(t, cfg, bad, c); n != 0 {
			t.Fatalf("a pair that failed the probe left %d objects of class %v", n, c)
		}
	}

	_, k := gen(t, tok, crypto.RSA2048, "rsa") // probes, and passes
	sig, err := k.Sign([]byte("signed after the probe"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Verify([]byte("signed after the probe"), sig); err != nil || !ok {
		t.Fatalf("verify after the probe: %v, %v", ok, err)
	}
	bad2 := []byte("rsa-pair-no-sign-0002")
	if err := hsm.ImportRSAUsage(tok, bad2, hsm.LabelPrefix+"nosign2", priv, false); err != nil {
		t.Fatal(err)
	}
	if err := hsm.CheckSign(tok, crypto.RSA2048, bad2); err != nil {
		t.Fatalf("check after a probe passed: %v, want nil (no second probe)", err)
	}
	gen(t, tok, crypto.ECDSA, "ec") // its own probe, which passes
}
