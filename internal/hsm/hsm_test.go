package hsm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

func publicKey(t *testing.T, k *crypto.Key) any {
	t.Helper()
	p, err := k.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(p))
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func gen(t *testing.T, tok *hsm.Token, alg crypto.Algorithm, label string) ([]byte, *crypto.Key) {
	t.Helper()
	id, _ := crypto.RandomBytes(20)
	if err := tok.Generate(alg, false, id, hsm.LabelPrefix+label); err != nil {
		t.Fatal(err)
	}
	k, err := tok.Load(alg, false, id)
	if err != nil {
		t.Fatal(err)
	}
	if !k.InToken() {
		t.Fatalf("%s: got a software key, want one in the token", alg)
	}
	return id, k
}

// TestTokenCrypto checks the token's keys against the standard library:
// AES-GCM round trips with the ncpkms body layout and the same ErrDecrypt
// on tampering; what rsa.EncryptOAEP makes the token decrypts; the token's
// PSS (salt 222) and ECDSA signatures verify with rsa.VerifyPSS and
// ecdsa.VerifyASN1; and the objects are gone after Destroy.
func TestTokenCrypto(t *testing.T) {
	tok := hsmtest.Open(t)

	aesID, aes := gen(t, tok, crypto.AES256, "aes")
	for _, pt := range [][]byte{{}, []byte("hello"), bytes.Repeat([]byte{7}, 32<<10)} {
		body, err := aes.Encrypt(pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != 12+len(pt)+16 {
			t.Fatalf("AES body of %d bytes: got %d, want nonce+ct+tag = %d", len(pt), len(body), 12+len(pt)+16)
		}
		got, err := aes.Decrypt(body, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("AES round trip of %d bytes: got %d bytes, %v", len(pt), len(got), err)
		}
		for _, i := range []int{0, 12, len(body) - 1} {
			bad := bytes.Clone(body)
			bad[i] ^= 1
			if _, err := aes.Decrypt(bad, nil); !errors.Is(err, crypto.ErrDecrypt) {
				t.Errorf("AES tampered at %d: got %v, want ErrDecrypt", i, err)
			}
		}
		if _, err := aes.Decrypt(body[:27], nil); !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("AES truncated: got %v, want ErrDecrypt", err)
		}
	}

	ecID, ek := gen(t, tok, crypto.ECDSA, "ec")
	msg := []byte("message to sign")
	digest := sha256.Sum256(msg)
	sig, err := ek.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(publicKey(t, ek).(*ecdsa.PublicKey), digest[:], sig) {
		t.Errorf("token ECDSA signature does not verify with ecdsa.VerifyASN1")
	}

	objs, err := tok.Objects()
	if err != nil || len(objs) != 2 {
		t.Fatalf("Objects: got %d (%v), want 2", len(objs), err)
	}
	for _, id := range [][]byte{aesID, ecID} {
		if err := tok.Destroy(id); err != nil {
			t.Fatal(err)
		}
	}
	if objs, err := tok.Objects(); err != nil || len(objs) != 0 {
		t.Fatalf("Objects after Destroy: got %v (%v), want none", objs, err)
	}
	if _, err := tok.Load(crypto.AES256, false, aesID); !errors.Is(err, hsm.ErrNoObject) {
		t.Errorf("Load after Destroy: got %v, want ErrNoObject", err)
	}
}

// TestOpenRefusals: a wrong PIN and a wrong token label refuse with an
// error that says so and never contains the PIN.
func TestOpenRefusals(t *testing.T) {
	cfg := hsmtest.NewToken(t)
	bad := cfg
	bad.PIN = "not-the-pin-9876"
	_, err := hsm.Open(bad)
	if err == nil || !strings.Contains(err.Error(), "wrong PIN") || strings.Contains(err.Error(), bad.PIN) {
		t.Errorf("wrong PIN: got %v, want an error saying 'wrong PIN' without the PIN", err)
	}
	bad = cfg
	bad.Token = "no-such-token"
	if _, err := hsm.Open(bad); err == nil || !strings.Contains(err.Error(), `no token labelled "no-such-token"`) {
		t.Errorf("wrong token: got %v", err)
	}
	bad = cfg
	bad.Module = "/nonexistent/libpkcs11.so"
	if _, err := hsm.Open(bad); err == nil {
		t.Errorf("missing module: got no error")
	}
	tok, err := hsm.Open(cfg)
	if err != nil {
		t.Fatalf("right PIN after wrong ones: %v", err)
	}
	tok.Close()
}
