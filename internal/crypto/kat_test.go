package crypto

import (
	"bytes"
	"testing"
)

// TestKnownAnswers checks our constructions against answers computed by
// pyca/cryptography (testdata/gen_kat.py): the root key file format, the
// HKDF-derived sealing key, the convergent nonce derivation, the AES body
// layout, OAEP, PSS with salt 222, ECDSA DER and the SPKI PEM.
func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	k := kat(t)
	t.Run("root key", func(t *testing.T) {
		t.Parallel()
		root, err := ParseRootKeyFile([]byte(k.Root.File))
		if err != nil {
			t.Fatal(err)
		}
		got, err := root.Open(unhex(t, k.Root.Sealed), []byte(k.Root.AD))
		if err != nil || !bytes.Equal(got, unhex(t, k.Root.Plaintext)) {
			t.Errorf("Open = %x, %v; want %s, nil", got, err, k.Root.Plaintext)
		}
	})
	t.Run("AES256 convergent", func(t *testing.T) {
		t.Parallel()
		c := k.AESConvergent
		key, err := LoadKey(AES256, true, unhex(t, c.Material))
		if err != nil {
			t.Fatal(err)
		}
		body, err := key.Encrypt(unhex(t, c.Plaintext), unhex(t, c.Context))
		if err != nil || !bytes.Equal(body, unhex(t, c.Body)) {
			t.Errorf("Encrypt = %x, %v; want %s, nil", body, err, c.Body)
		}
	})
	t.Run("AES256", func(t *testing.T) {
		t.Parallel()
		key, err := LoadKey(AES256, false, unhex(t, k.AES.Material))
		if err != nil {
			t.Fatal(err)
		}
		got, err := key.Decrypt(unhex(t, k.AES.Body), []byte("any context"))
		if err != nil || !bytes.Equal(got, unhex(t, k.AES.Plaintext)) {
			t.Errorf("Decrypt = %x, %v; want %s, nil", got, err, k.AES.Plaintext)
		}
	})
	t.Run("RSA2048", func(t *testing.T) {
		t.Parallel()
		key, err := LoadKey(RSA2048, false, unhex(t, k.RSA.Material))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := key.PublicKeyPEM(); got != k.RSA.PublicPEM {
			t.Errorf("PublicKeyPEM = %q, want %q", got, k.RSA.PublicPEM)
		}
		got, err := key.Decrypt(unhex(t, k.RSA.Body), nil)
		if err != nil || !bytes.Equal(got, unhex(t, k.RSA.Plaintext)) {
			t.Errorf("Decrypt = %x, %v; want %s, nil", got, err, k.RSA.Plaintext)
		}
		if ok, err := key.Verify(unhex(t, k.RSA.Msg), unhex(t, k.RSA.Sig)); !ok || err != nil {
			t.Errorf("Verify = %v, %v; want true, nil", ok, err)
		}
	})
	t.Run("ECDSA", func(t *testing.T) {
		t.Parallel()
		key, err := LoadKey(ECDSA, false, unhex(t, k.ECDSA.Material))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := key.PublicKeyPEM(); got != k.ECDSA.PublicPEM {
			t.Errorf("PublicKeyPEM = %q, want %q", got, k.ECDSA.PublicPEM)
		}
		if ok, err := key.Verify(unhex(t, k.ECDSA.Msg), unhex(t, k.ECDSA.Sig)); !ok || err != nil {
			t.Errorf("Verify = %v, %v; want true, nil", ok, err)
		}
	})
}
