package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// softAEAD is AES-GCM in software, standing in for the token's key.
type softAEAD struct{ aead cipher.AEAD }

func (s softAEAD) Seal(nonce, pt, ad []byte) ([]byte, error) {
	return s.aead.Seal(nil, nonce, pt, ad), nil
}
func (s softAEAD) Open(nonce, ct, ad []byte) ([]byte, error) { return s.aead.Open(nil, nonce, ct, ad) }

func newSoftAEAD(t testing.TB) softAEAD {
	t.Helper()
	key, err := RandomBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return softAEAD{g}
}

// TestWrapRootKeyFile: a plain root key file wrapped and unwrapped gives the
// same root key; the wrapped text is not a plain root key file (and says
// so), nor is the plain text a wrapped one; another wrapping key, an altered
// byte or a wrong length does not unwrap; no error shows the key.
func TestWrapRootKeyFile(t *testing.T) {
	w := newSoftAEAD(t)
	plain, err := NewRootKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := WrapRootKeyFile(plain, w)
	if err != nil {
		t.Fatal(err)
	}
	if !IsWrappedRootKeyFile(wrapped) || IsWrappedRootKeyFile(plain) {
		t.Fatal("IsWrappedRootKeyFile tells the formats apart wrongly")
	}
	if bytes.Contains(wrapped, bytes.TrimSpace(plain)) {
		t.Fatal("the wrapped file contains the plain root key")
	}
	if _, err := ParseRootKeyFile(wrapped); !errors.Is(err, ErrWrappedRootKey) {
		t.Fatalf("ParseRootKeyFile(wrapped): %v, want ErrWrappedRootKey", err)
	}
	if _, err := ParseWrappedRootKeyFile(plain); err == nil {
		t.Fatal("ParseWrappedRootKeyFile accepted a plain root key file")
	}
	if _, err := WrapRootKeyFile(wrapped, w); !errors.Is(err, ErrWrappedRootKey) {
		t.Fatalf("wrapping a wrapped file: %v", err)
	}
	want, _ := ParseRootKeyFile(plain)
	got, err := UnwrapRootKeyFile(wrapped, w)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := want.Seal([]byte("x"), RootCheckAD())
	if pt, err := got.Open(sealed, RootCheckAD()); err != nil || string(pt) != "x" {
		t.Fatalf("the unwrapped root key is not the plain one: %v", err)
	}
	if _, err := UnwrapRootKeyFile(wrapped, newSoftAEAD(t)); !errors.Is(err, ErrRootKeyUnwrap) {
		t.Fatalf("another wrapping key: %v, want ErrRootKeyUnwrap", err)
	}
	sealedPart, _ := ParseWrappedRootKeyFile(wrapped)
	for i := range sealedPart {
		bad := bytes.Clone(sealedPart)
		bad[i] ^= 1
		text := append([]byte(wrappedRootKeyPrefix), []byte(b64(bad))...)
		if _, err := UnwrapRootKeyFile(text, w); !errors.Is(err, ErrRootKeyUnwrap) {
			t.Fatalf("byte %d altered: %v", i, err)
		}
	}
	for _, text := range []string{
		wrappedRootKeyPrefix + b64(sealedPart[:len(sealedPart)-1]),
		wrappedRootKeyPrefix + b64(append(bytes.Clone(sealedPart), 0)),
		"nkms-wrapped-root-key:v2:" + b64(sealedPart),
		wrappedRootKeyPrefix + "not base64!",
		wrappedRootKeyPrefix + b64(sealedPart)[:10] + " " + b64(sealedPart)[10:],
	} {
		_, err := UnwrapRootKeyFile([]byte(text), w)
		if err == nil || errors.Is(err, ErrRootKeyUnwrap) || strings.Contains(err.Error(), string(plain[:8])) {
			t.Errorf("%q: %v, want a format error", text, err)
		}
	}
}

// TestNewWrappedRootKeyFile: a new wrapped file unwraps to the root key
// returned beside it.
func TestNewWrappedRootKeyFile(t *testing.T) {
	w := newSoftAEAD(t)
	text, root, err := NewWrappedRootKeyFile(w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapRootKeyFile(text, w)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := root.Seal([]byte("y"), RootCheckAD())
	if _, err := got.Open(sealed, RootCheckAD()); err != nil {
		t.Fatal("the new wrapped file does not unwrap to its root key")
	}
}

// FuzzParseWrappedRootKeyFile: the wrapped-file parser never panics, returns
// exactly wrappedRootKeyLen bytes when it accepts, accepts only texts with the
// v1 prefix, and unwrapping arbitrary text never panics either.
func FuzzParseWrappedRootKeyFile(f *testing.F) {
	w := newSoftAEAD(f)
	plain, _ := NewRootKeyFile()
	wrapped, _ := WrapRootKeyFile(plain, w)
	f.Add(wrapped)
	f.Add(plain)
	f.Add([]byte(wrappedRootKeyPrefix))
	f.Add([]byte(wrappedRootKeyMagic + "v9:AAAA"))
	f.Add([]byte("\n" + wrappedRootKeyPrefix + "====\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		sealed, err := ParseWrappedRootKeyFile(text)
		if err == nil {
			if len(sealed) != wrappedRootKeyLen || !bytes.HasPrefix(bytes.TrimSpace(text), []byte(wrappedRootKeyPrefix)) {
				t.Fatalf("accepted %q as %d bytes", text, len(sealed))
			}
		}
		if _, err := UnwrapRootKeyFile(text, w); err == nil && !bytes.Equal(bytes.TrimSpace(text), bytes.TrimSpace(wrapped)) {
			// Only a GCM forgery would unwrap another text.
			t.Fatalf("unwrapped %q", text)
		}
		if IsWrappedRootKeyFile(text) {
			if _, err := ParseRootKeyFile(text); !errors.Is(err, ErrWrappedRootKey) {
				t.Fatalf("ParseRootKeyFile took a wrapped file: %v", err)
			}
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
