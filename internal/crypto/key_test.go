package crypto

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateMaterial(t *testing.T) {
	t.Parallel()
	for _, alg := range []Algorithm{AES256, RSA2048, ECDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			a, err := GenerateMaterial(alg)
			if err != nil {
				t.Fatalf("GenerateMaterial(%s) = %v", alg, err)
			}
			b, err := GenerateMaterial(alg)
			if err != nil {
				t.Fatalf("GenerateMaterial(%s) = %v", alg, err)
			}
			if bytes.Equal(a, b) {
				t.Errorf("two GenerateMaterial(%s) calls gave the same material", alg)
			}
			if alg == AES256 && len(a) != 32 {
				t.Errorf("AES256 material is %d bytes, want 32", len(a))
			}
			if _, err := LoadKey(alg, false, a); err != nil {
				t.Errorf("LoadKey(%s, fresh material) = %v", alg, err)
			}
		})
	}
	if _, err := GenerateMaterial("DES"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("GenerateMaterial(DES) error = %v, want ErrUnsupported", err)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	t.Parallel()
	ks, k := keys(t), kat(t)
	p384key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := x509.MarshalPKCS8PrivateKey(p384key)
	rsa1024key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, _ := x509.MarshalPKCS8PrivateKey(rsa1024key)
	tests := []struct {
		name       string
		alg        Algorithm
		convergent bool
		material   []byte
	}{
		{"AES256 short", AES256, false, make([]byte, 31)},
		{"AES256 long", AES256, false, make([]byte, 33)},
		{"AES256 16 bytes", AES256, true, make([]byte, 16)},
		{"AES256 empty", AES256, false, nil},
		{"RSA2048 garbage", RSA2048, false, []byte("garbage")},
		{"RSA2048 given ECDSA material", RSA2048, false, ks.ecMat},
		{"RSA2048 convergent", RSA2048, true, unhex(t, k.RSA.Material)},
		{"ECDSA given RSA material", ECDSA, false, ks.rsaMat},
		{"ECDSA empty", ECDSA, false, nil},
		{"ECDSA convergent", ECDSA, true, ks.ecMat},
		{"ECDSA P-384", ECDSA, false, p384},
		{"RSA2048 given a 1024-bit key", RSA2048, false, rsa1024},
		{"RSA2048 truncated", RSA2048, false, ks.rsaMat[:len(ks.rsaMat)-1]},
		{"unknown algorithm", "AES128", false, make([]byte, 16)},
		{"empty algorithm", "", false, make([]byte, 32)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := LoadKey(tc.alg, tc.convergent, tc.material)
			if err == nil {
				t.Fatalf("LoadKey = %v, nil; want an error", key)
			}
			if len(tc.material) > 8 && strings.Contains(err.Error(), hex.EncodeToString(tc.material[:8])) {
				t.Errorf("error %q shows the material", err)
			}
		})
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	tests := []struct {
		name      string
		key       *Key
		plaintext []byte
		context   []byte
		bodyLen   int
	}{
		{"AES256 empty", ks.aes, nil, nil, 12 + 16},
		{"AES256 32 bytes", ks.aes, bytes.Repeat([]byte{7}, 32), nil, 12 + 32 + 16},
		{"AES256 64 KiB", ks.aes, bytes.Repeat([]byte("x"), 64<<10), []byte("ignored"), 12 + 64<<10 + 16},
		{"AES256 convergent empty", ks.aesConv, []byte{}, []byte("ctx"), 12 + 16},
		{"AES256 convergent no context", ks.aesConv, []byte("hello"), nil, 12 + 5 + 16},
		{"AES256 convergent 50-byte context", ks.aesConv, []byte("hello"), bytes.Repeat([]byte{1}, 50), 12 + 5 + 16},
		{"RSA2048 empty", ks.rsa, nil, nil, 256},
		{"RSA2048 32 bytes", ks.rsa, bytes.Repeat([]byte{9}, 32), []byte("ignored"), 256},
		{"RSA2048 190 bytes", ks.rsa, bytes.Repeat([]byte{0xff}, RSAMaxPlaintext), nil, 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, err := tc.key.Encrypt(tc.plaintext, tc.context)
			if err != nil {
				t.Fatalf("Encrypt = %v", err)
			}
			if len(body) != tc.bodyLen {
				t.Errorf("len(body) = %d, want %d", len(body), tc.bodyLen)
			}
			got, err := tc.key.Decrypt(body, tc.context)
			if err != nil {
				t.Fatalf("Decrypt = %v", err)
			}
			if got == nil || !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Decrypt = %x, want %x (non-nil)", got, tc.plaintext)
			}
		})
	}
}

func TestRSAPlaintextTooLong(t *testing.T) {
	t.Parallel()
	_, err := keys(t).rsa.Encrypt(make([]byte, RSAMaxPlaintext+1), nil)
	if !errors.Is(err, ErrPlaintextTooLong) {
		t.Errorf("Encrypt(191 bytes) error = %v, want ErrPlaintextTooLong", err)
	}
}

func TestNonConvergentIsRandomAndIgnoresContext(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	for name, key := range map[string]*Key{"AES256": ks.aes, "RSA2048": ks.rsa} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pt := []byte("same plaintext")
			a, err := key.Encrypt(pt, []byte("context A"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := key.Encrypt(pt, []byte("context A"))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a, b) {
				t.Error("two encryptions of the same plaintext are equal")
			}
			got, err := key.Decrypt(a, []byte("context B"))
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("Decrypt with another context = %q, %v; want %q, nil", got, err, pt)
			}
		})
	}
}

func TestConvergent(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	k := ks.aesConv
	enc := func(pt, ctx string) []byte {
		t.Helper()
		b, err := k.Encrypt([]byte(pt), []byte(ctx))
		if err != nil {
			t.Fatalf("Encrypt(%q, %q) = %v", pt, ctx, err)
		}
		return b
	}
	base := enc("plaintext", "ctx")
	if diff := cmp.Diff(enc("plaintext", "ctx"), base); diff != "" {
		t.Errorf("same plaintext and context gave different bodies (-got +want):\n%s", diff)
	}
	for _, tc := range []struct{ name, pt, ctx string }{
		{"different context", "plaintext", "ctx2"},
		{"empty context", "plaintext", ""},
		{"different plaintext", "plaintexT", "ctx"},
		{"context and plaintext split elsewhere", "xplaintext", "ct"},
	} {
		if other := enc(tc.pt, tc.ctx); bytes.Equal(other[:12], base[:12]) || bytes.Equal(other, base) {
			t.Errorf("%s: body or nonce equals the base body", tc.name)
		}
	}
	// Another convergent key gives another body for the same input.
	m, _ := GenerateMaterial(AES256)
	k2, err := LoadKey(AES256, true, m)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := k2.Encrypt([]byte("plaintext"), []byte("ctx")); bytes.Equal(b2, base) {
		t.Error("two convergent keys gave the same body")
	}
	for _, ctx := range []string{"ctx2", "", "CTX", "ctx\x00"} {
		if _, err := k.Decrypt(base, []byte(ctx)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("Decrypt with context %q error = %v, want ErrDecrypt", ctx, err)
		}
	}
	// The same material without convergence uses no associated data.
	plain, _ := LoadKey(AES256, false, ks.aesConvMat)
	if _, err := plain.Decrypt(base, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("non-convergent Decrypt of a convergent body error = %v, want ErrDecrypt", err)
	}
}

func TestDecryptFailures(t *testing.T) {
	t.Parallel()
	ks, k := keys(t), kat(t)
	otherAES, _ := LoadKey(AES256, false, unhex(t, k.AES.Material))
	otherRSA, err := LoadKey(RSA2048, false, unhex(t, k.RSA.Material))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		key, other *Key
		ctx        []byte
	}{
		{"AES256", ks.aes, otherAES, nil},
		{"AES256 convergent", ks.aesConv, otherAES, []byte("c")},
		{"RSA2048", ks.rsa, otherRSA, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, err := tc.key.Encrypt([]byte("attack at dawn"), tc.ctx)
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, b []byte) {
				t.Helper()
				if pt, err := tc.key.Decrypt(b, tc.ctx); !errors.Is(err, ErrDecrypt) || pt != nil {
					t.Errorf("%s: Decrypt = %x, %v; want nil, ErrDecrypt", what, pt, err)
				}
			}
			for i := range body {
				check(fmt.Sprintf("byte %d ^0x01", i), flip(body, i, 0x01))
				check(fmt.Sprintf("byte %d ^0x80", i), flip(body, i, 0x80))
			}
			for n := range len(body) {
				check(fmt.Sprintf("first %d bytes", n), body[:n])
			}
			check("one byte appended", append(body[:len(body):len(body)], 0))
			check("nil", nil)
			if _, err := tc.other.Decrypt(body, tc.ctx); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Decrypt under another key error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	tests := []struct {
		name string
		op   func() error
	}{
		{"ECDSA Encrypt", func() error { _, err := ks.ec.Encrypt([]byte("x"), nil); return err }},
		{"ECDSA Decrypt", func() error { _, err := ks.ec.Decrypt(make([]byte, 64), nil); return err }},
		{"AES256 Sign", func() error { _, err := ks.aes.Sign([]byte("x")); return err }},
		{"AES256 convergent Sign", func() error { _, err := ks.aesConv.Sign([]byte("x")); return err }},
		{"AES256 Verify", func() error { _, err := ks.aes.Verify([]byte("x"), make([]byte, 32)); return err }},
		{"AES256 PublicKeyPEM", func() error { _, err := ks.aes.PublicKeyPEM(); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.op(); !errors.Is(err, ErrUnsupported) {
				t.Errorf("error = %v, want ErrUnsupported", err)
			}
		})
	}
}

func TestKeyStringHidesMaterial(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	tests := []struct {
		name string
		key  *Key
		mat  []byte
		want string
	}{
		{"AES256", ks.aes, ks.aesMat, "crypto.Key(AES256)"},
		{"AES256 convergent", ks.aesConv, ks.aesConvMat, "crypto.Key(AES256, convergent)"},
		{"RSA2048", ks.rsa, ks.rsaMat, "crypto.Key(RSA2048)"},
		{"ECDSA", ks.ec, ks.ecMat, "crypto.Key(ECDSA)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.key.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", tc.key, tc.key, tc.key, tc.key, *tc.key, *tc.key, *tc.key)
			secret := privateBytes(t, tc.mat)[:16]
			for _, enc := range []string{string(secret), hex.EncodeToString(secret),
				base64.StdEncoding.EncodeToString(secret)[:16], strings.Trim(fmt.Sprint(secret[:8]), "[]")} {
				if strings.Contains(out, enc) {
					t.Errorf("formatted key %q contains material %q", out, enc)
				}
			}
		})
	}
	var nilKey *Key
	if got := nilKey.String(); got != "crypto.Key(nil)" {
		t.Errorf("nil String() = %q", got)
	}
}

// privateBytes returns the secret part of material: the AES key, RSA's private
// exponent or ECDSA's private scalar.
func privateBytes(t *testing.T, mat []byte) []byte {
	t.Helper()
	if len(mat) == 32 {
		return mat
	}
	priv, err := x509.ParsePKCS8PrivateKey(mat)
	if err != nil {
		t.Fatal(err)
	}
	switch priv := priv.(type) {
	case *rsa.PrivateKey:
		return priv.D.Bytes()
	case *ecdsa.PrivateKey:
		b, err := priv.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("unexpected key type %T", priv)
	return nil
}

// TestConcurrentUse shares each key between goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	var wg sync.WaitGroup
	for i := range 8 {
		for _, k := range []*Key{ks.aes, ks.aesConv, ks.rsa, ks.ec} {
			wg.Go(func() {
				msg := []byte(fmt.Sprintf("message %d", i))
				if k.Algorithm() == ECDSA {
					sig, err := k.Sign(msg)
					if ok, verr := k.Verify(msg, sig); err != nil || verr != nil || !ok {
						t.Errorf("%v: Sign/Verify = %v, %v, %v", k, err, ok, verr)
					}
					return
				}
				body, err := k.Encrypt(msg, []byte("ctx"))
				if err != nil {
					t.Errorf("%v: Encrypt = %v", k, err)
					return
				}
				if got, err := k.Decrypt(body, []byte("ctx")); err != nil || !bytes.Equal(got, msg) {
					t.Errorf("%v: Decrypt = %q, %v; want %q", k, got, err, msg)
				}
			})
		}
	}
	wg.Wait()
}

func TestRandomBytes(t *testing.T) {
	t.Parallel()
	a, err := RandomBytes(32)
	if err != nil || len(a) != 32 {
		t.Fatalf("RandomBytes(32) = %d bytes, %v", len(a), err)
	}
	if b, _ := RandomBytes(32); bytes.Equal(a, b) {
		t.Error("two RandomBytes(32) are equal")
	}
	if b, err := RandomBytes(0); err != nil || len(b) != 0 {
		t.Errorf("RandomBytes(0) = %x, %v", b, err)
	}
	if _, err := RandomBytes(-1); err == nil {
		t.Error("RandomBytes(-1) succeeded")
	}
}

func TestValidateMaterial(t *testing.T) {
	for _, alg := range []Algorithm{AES256, RSA2048, ECDSA} {
		m, err := GenerateMaterial(alg)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateMaterial(alg, m); err != nil {
			t.Errorf("%s: its own material: %v", alg, err)
		}
	}
	ec, _ := GenerateMaterial(ECDSA)
	for _, tc := range []struct {
		name     string
		alg      Algorithm
		material []byte
	}{
		{"AES256 of 16 bytes", AES256, make([]byte, 16)},
		{"RSA2048 not DER", RSA2048, []byte("not a key")},
		{"RSA2048 given an ECDSA key", RSA2048, ec},
		{"ECDSA not DER", ECDSA, make([]byte, 32)},
		{"unknown algorithm", "DES", make([]byte, 8)},
	} {
		err := ValidateMaterial(tc.alg, tc.material)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if strings.Contains(err.Error(), string(tc.material)) && len(tc.material) > 0 && tc.material[0] != 0 {
			t.Errorf("%s: error %q shows the material", tc.name, err)
		}
	}
}
