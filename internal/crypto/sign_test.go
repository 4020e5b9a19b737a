package crypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

// parsePublicPEM parses PublicKeyPEM output with the standard library only.
func parsePublicPEM(t *testing.T, k *Key) any {
	t.Helper()
	text, err := k.PublicKeyPEM()
	if err != nil {
		t.Fatalf("PublicKeyPEM = %v", err)
	}
	block, rest := pem.Decode([]byte(text))
	if block == nil || block.Type != "PUBLIC KEY" || len(rest) != 0 || len(block.Headers) != 0 {
		t.Fatalf("PublicKeyPEM = %q, want one PUBLIC KEY block", text)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("ParsePKIXPublicKey = %v", err)
	}
	return pub
}

func TestSignVerifiesWithStandardLibrary(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	messages := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"short", []byte("hello")},
		{"8 KiB", bytes.Repeat([]byte{0xa5}, 8192)},
	}
	t.Run("RSA2048", func(t *testing.T) {
		t.Parallel()
		pub, ok := parsePublicPEM(t, ks.rsa).(*rsa.PublicKey)
		if !ok || pub.N.BitLen() != 2048 {
			t.Fatalf("public key is %T, want a 2048-bit *rsa.PublicKey", pub)
		}
		for _, m := range messages {
			sig, err := ks.rsa.Sign(m.msg)
			if err != nil {
				t.Fatalf("%s: Sign = %v", m.name, err)
			}
			if len(sig) != 256 {
				t.Errorf("%s: len(sig) = %d, want 256", m.name, len(sig))
			}
			d := sha256.Sum256(m.msg)
			if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 222}); err != nil {
				t.Errorf("%s: rsa.VerifyPSS(salt 222) = %v", m.name, err)
			}
			if err := rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}); err == nil {
				t.Errorf("%s: rsa.VerifyPSS(salt 32) accepted a salt-222 signature", m.name)
			}
			if ok, err := ks.rsa.Verify(m.msg, sig); !ok || err != nil {
				t.Errorf("%s: Verify = %v, %v; want true, nil", m.name, ok, err)
			}
			if ok, err := ks.rsa.Verify(append(m.msg, 0), sig); ok || err != nil {
				t.Errorf("%s: Verify(other message) = %v, %v; want false, nil", m.name, ok, err)
			}
			for _, i := range []int{0, 100, 255} {
				if ok, err := ks.rsa.Verify(m.msg, flip(sig, i, 1)); ok || err != nil {
					t.Errorf("%s: Verify(sig byte %d flipped) = %v, %v; want false, nil", m.name, i, ok, err)
				}
			}
		}
	})
	t.Run("ECDSA", func(t *testing.T) {
		t.Parallel()
		pub, ok := parsePublicPEM(t, ks.ec).(*ecdsa.PublicKey)
		if !ok || pub.Curve.Params().Name != "P-256" {
			t.Fatalf("public key is %T, want a P-256 *ecdsa.PublicKey", pub)
		}
		for _, m := range messages {
			sig, err := ks.ec.Sign(m.msg)
			if err != nil {
				t.Fatalf("%s: Sign = %v", m.name, err)
			}
			d := sha256.Sum256(m.msg)
			if !ecdsa.VerifyASN1(pub, d[:], sig) {
				t.Errorf("%s: ecdsa.VerifyASN1 rejected the signature", m.name)
			}
			if !isDERSignature(sig) {
				t.Errorf("%s: Sign output %x is not strict DER", m.name, sig)
			}
			if ok, err := ks.ec.Verify(m.msg, sig); !ok || err != nil {
				t.Errorf("%s: Verify = %v, %v; want true, nil", m.name, ok, err)
			}
			if ok, err := ks.ec.Verify(append(m.msg, 0), sig); ok || err != nil {
				t.Errorf("%s: Verify(other message) = %v, %v; want false, nil", m.name, ok, err)
			}
		}
	})
}

func TestVerifyRSAWrongLength(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	sig, err := ks.rsa.Sign([]byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sig  []byte
	}{
		{"nil", nil},
		{"1 byte", []byte{1}},
		{"255 bytes", sig[1:]},
		{"257 bytes", append([]byte{0}, sig...)},
		{"512 bytes", append(sig[:256:256], sig...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if ok, err := ks.rsa.Verify([]byte("m"), tc.sig); ok || err != nil {
				t.Errorf("Verify = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestVerifyECDSAMalformed(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	msg := []byte("m")
	sig, err := ks.ec.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	// der builds SEQUENCE { INTEGER r, INTEGER s } from raw contents.
	der := func(r, s []byte) []byte {
		out := []byte{0x30, byte(4 + len(r) + len(s)), 0x02, byte(len(r))}
		out = append(out, r...)
		return append(append(out, 0x02, byte(len(s))), s...)
	}
	longForm := append([]byte{0x30, 0x81, sig[1]}, sig[2:]...)
	tests := []struct {
		name string
		sig  []byte
	}{
		{"nil", nil},
		{"garbage", []byte("not a signature")},
		{"raw r||s", bytes.Repeat([]byte{0x11}, 64)},
		{"trailing byte", append(sig[:len(sig):len(sig)], 0)},
		{"truncated", sig[:len(sig)-1]},
		{"long-form length", longForm},
		{"indefinite length", append(append([]byte{0x30, 0x80}, sig[2:]...), 0, 0)},
		{"zero r", der([]byte{0}, []byte{1})},
		{"negative s", der([]byte{1}, []byte{0x80})},
		{"non-minimal r", der([]byte{0, 1}, []byte{1})},
		{"empty r", der(nil, []byte{1})},
		{"SET not SEQUENCE", append([]byte{0x31}, sig[1:]...)},
		{"three integers", append(append([]byte{0x30, sig[1] + 3}, sig[2:]...), 0x02, 0x01, 0x01)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if ok, err := ks.ec.Verify(msg, tc.sig); ok || !errors.Is(err, ErrMalformedSignature) {
				t.Errorf("Verify(%x) = %v, %v; want false, ErrMalformedSignature", tc.sig, ok, err)
			}
		})
	}
	// Well formed but wrong: (false, nil).
	if ok, err := ks.ec.Verify(msg, der([]byte{1}, []byte{1})); ok || err != nil {
		t.Errorf("Verify(r=1, s=1) = %v, %v; want false, nil", ok, err)
	}
}

func TestSignaturesAreRandomized(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	for name, k := range map[string]*Key{"RSA2048": ks.rsa, "ECDSA": ks.ec} {
		a, _ := k.Sign([]byte("m"))
		b, _ := k.Sign([]byte("m"))
		if bytes.Equal(a, b) {
			t.Errorf("%s: two signatures of one message are equal", name)
		}
	}
}

// TestPSSRefusesSaltLengthZero: rsa.PSSOptions reads a salt length of 0 as
// "any length"; the wrappers refuse it rather than verify loosely.
func TestPSSRefusesSaltLengthZero(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("message")
	sig, err := pssSign(priv, msg, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !pssVerify(&priv.PublicKey, msg, sig, 32) {
		t.Fatal("a valid signature does not verify")
	}
	if pssVerify(&priv.PublicKey, msg, sig, 0) || pssVerify(&priv.PublicKey, msg, sig, -1) {
		t.Fatal("a salt length of 0 or -1 verifies a signature made with 32 bytes of salt")
	}
	if _, err := pssSign(priv, msg, 0); err == nil {
		t.Fatal("signing with a salt length of 0 works")
	}
}
