package crypto

import (
	"errors"
	"testing"
)

// FuzzParseCiphertext checks that parsing never panics and that every
// accepted string is exactly what FormatCiphertext writes back.
func FuzzParseCiphertext(f *testing.F) {
	for _, s := range []string{
		"ncpkms:v1:/w==", "ncpkms:v12:aGk=", "ncpkms:v999999999:++++", "ncpkms:v0:aGk=",
		"ncpkms:v01:aGk=", "ncpkms:v1:aGk", "ncpkms:v1:aG\nk=", "ncpkms:v1:", "vault:v1:aGk=",
		"ncpkms:v2147483648:aGk=", "ncpkms:v1:aGl=",
	} {
		f.Add(s)
	}
	ks := keys(f)
	for _, k := range []*Key{ks.aes, ks.aesConv, ks.rsa} {
		body, err := k.Encrypt([]byte("seed"), []byte("ctx"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(FormatCiphertext(3, body))
	}
	sig, _ := ks.ec.Sign([]byte("seed"))
	f.Add(FormatCiphertext(1, sig))
	f.Fuzz(func(t *testing.T, s string) {
		v, body, err := ParseCiphertext(s)
		if err != nil {
			if !errors.Is(err, ErrFormat) || v != 0 || body != nil {
				t.Fatalf("ParseCiphertext(%q) = %d, %x, %v; want 0, nil, ErrFormat", s, v, body, err)
			}
			return
		}
		if v < 1 || v > 1<<31-1 || len(body) == 0 {
			t.Fatalf("ParseCiphertext(%q) accepted version %d, %d-byte body", s, v, len(body))
		}
		if got := FormatCiphertext(v, body); got != s {
			t.Fatalf("FormatCiphertext(ParseCiphertext(%q)) = %q", s, got)
		}
		if got := CiphertextVersion(s); got != v {
			t.Fatalf("CiphertextVersion(%q) = %d, ParseCiphertext says %d", s, got, v)
		}
	})
}

// fuzzKey picks one of the test keys by a fuzzed selector.
func fuzzKey(ks *testKeySet, sel uint8) *Key {
	return [...]*Key{ks.aes, ks.aesConv, ks.rsa, ks.ec}[sel%4]
}

// FuzzDecrypt checks that Decrypt never panics and fails only with ErrDecrypt
// (ErrUnsupported for ECDSA), whatever the body and context.
func FuzzDecrypt(f *testing.F) {
	ks := keys(f)
	for sel, k := range []*Key{ks.aes, ks.aesConv, ks.rsa} {
		for _, pt := range []string{"", "seed plaintext"} {
			body, err := k.Encrypt([]byte(pt), []byte("ctx"))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(sel), body, []byte("ctx"))
			f.Add(uint8(sel), body[:len(body)-1], []byte("ctx"))
			f.Add(uint8(sel), body, []byte("other"))
		}
	}
	f.Add(uint8(3), []byte("anything"), []byte(nil))
	f.Add(uint8(0), []byte{}, []byte(nil))
	f.Fuzz(func(t *testing.T, sel uint8, body, context []byte) {
		k := fuzzKey(ks, sel)
		pt, err := k.Decrypt(body, context)
		switch {
		case k.Algorithm() == ECDSA:
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%v: Decrypt error = %v, want ErrUnsupported", k, err)
			}
		case err != nil && (!errors.Is(err, ErrDecrypt) || pt != nil):
			t.Fatalf("%v: Decrypt = %x, %v; want nil, ErrDecrypt", k, pt, err)
		case err == nil:
			// Only a seed made by Encrypt can decrypt; it must encrypt back for convergent keys.
			if k.convergent {
				again, err := k.Encrypt(pt, context)
				if err != nil || string(again) != string(body) {
					t.Fatalf("%v: convergent body did not re-encrypt to itself", k)
				}
			}
		}
	})
}

// FuzzVerify checks that Verify never panics, that RSA never reports a
// malformed signature, and that ECDSA reports only ErrMalformedSignature.
func FuzzVerify(f *testing.F) {
	ks := keys(f)
	for sel, k := range []*Key{ks.rsa, ks.ec} {
		sig, err := k.Sign([]byte("seed"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(sel+2), []byte("seed"), sig)
		f.Add(uint8(sel+2), []byte("seed"), sig[:len(sig)-1])
		f.Add(uint8(sel+2), []byte("other"), sig)
	}
	f.Add(uint8(3), []byte("m"), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Add(uint8(3), []byte("m"), []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0, 0})
	f.Add(uint8(0), []byte("m"), []byte("sig"))
	f.Fuzz(func(t *testing.T, sel uint8, msg, sig []byte) {
		k := fuzzKey(ks, sel)
		ok, err := k.Verify(msg, sig)
		switch k.Algorithm() {
		case AES256:
			if ok || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%v: Verify = %v, %v; want false, ErrUnsupported", k, ok, err)
			}
		case RSA2048:
			if err != nil {
				t.Fatalf("%v: Verify error = %v, want nil", k, err)
			}
		case ECDSA:
			if err != nil && (ok || !errors.Is(err, ErrMalformedSignature)) {
				t.Fatalf("%v: Verify = %v, %v; want false, ErrMalformedSignature", k, ok, err)
			}
			if err == nil && !isDERSignature(sig) {
				t.Fatalf("%v: Verify accepted non-DER %x as well formed", k, sig)
			}
		}
	})
}

// FuzzOpen checks that RootKey.Open never panics and fails only with ErrDecrypt.
func FuzzOpen(f *testing.F) {
	text, err := NewRootKeyFile()
	if err != nil {
		f.Fatal(err)
	}
	root, err := ParseRootKeyFile(text)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := root.Seal([]byte("material"), SealAD("t", 1))
	f.Add(sealed, SealAD("t", 1))
	f.Add(sealed[:13], SealAD("t", 1))
	f.Add([]byte{}, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		if pt, err := root.Open(sealed, ad); err != nil && (!errors.Is(err, ErrDecrypt) || pt != nil) {
			t.Fatalf("Open = %x, %v; want nil, ErrDecrypt", pt, err)
		}
	})
}
