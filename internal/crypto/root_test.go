package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func newTestRoot(t *testing.T) (*RootKey, []byte) {
	t.Helper()
	text, err := NewRootKeyFile()
	if err != nil {
		t.Fatalf("NewRootKeyFile = %v", err)
	}
	root, err := ParseRootKeyFile(text)
	if err != nil {
		t.Fatalf("ParseRootKeyFile(NewRootKeyFile()) = %v", err)
	}
	return root, text
}

func TestNewRootKeyFile(t *testing.T) {
	t.Parallel()
	_, a := newTestRoot(t)
	_, b := newTestRoot(t)
	if bytes.Equal(a, b) {
		t.Error("two root key files are equal")
	}
	if !bytes.HasSuffix(a, []byte("\n")) || bytes.Count(a, []byte("\n")) != 1 {
		t.Errorf("root key file %q does not end in exactly one newline", a)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(string(a), "\n"))
	if err != nil || len(key) != RootKeySize {
		t.Errorf("root key file decodes to %d bytes, %v; want %d", len(key), err, RootKeySize)
	}
}

func TestParseRootKeyFileWhitespace(t *testing.T) {
	t.Parallel()
	_, text := newTestRoot(t)
	b64 := strings.TrimSpace(string(text))
	for _, tc := range []struct{ name, text string }{
		{"no newline", b64},
		{"CRLF", b64 + "\r\n"},
		{"surrounding blanks", "  \n\t" + b64 + " \n\n"},
	} {
		if _, err := ParseRootKeyFile([]byte(tc.text)); err != nil {
			t.Errorf("%s: ParseRootKeyFile = %v", tc.name, err)
		}
	}
}

func TestParseRootKeyFileErrors(t *testing.T) {
	t.Parallel()
	key31 := bytes.Repeat([]byte{0xab}, 31)
	key33 := bytes.Repeat([]byte{0xcd}, 33)
	key32 := bytes.Repeat([]byte{0xef}, 32)
	std32 := base64.StdEncoding.EncodeToString(key32)
	tests := []struct {
		name string
		text string
		key  []byte // the bytes that must not appear in the error
	}{
		{"empty", "", nil},
		{"blank", " \n\t\n", nil},
		{"31 bytes", base64.StdEncoding.EncodeToString(key31) + "\n", key31},
		{"33 bytes", base64.StdEncoding.EncodeToString(key33) + "\n", key33},
		{"64 bytes", base64.StdEncoding.EncodeToString(append(key32, key32...)), key32},
		{"no padding", base64.RawStdEncoding.EncodeToString(key32), key32},
		{"URL alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))), nil},
		{"hex", hex.EncodeToString(key32), key32},
		{"line break inside", std32[:20] + "\n" + std32[20:], key32},
		{"space inside", std32[:20] + " " + std32[20:], key32},
		{"two keys", std32 + "\n" + std32 + "\n", key32},
		{"not base64", "this is not a root key file!", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, err := ParseRootKeyFile([]byte(tc.text))
			if err == nil {
				t.Fatalf("ParseRootKeyFile(%q) = %v, nil; want an error", tc.text, root)
			}
			msg := err.Error()
			if trimmed := strings.TrimSpace(tc.text); len(trimmed) > 4 && strings.Contains(msg, trimmed[:5]) {
				t.Errorf("error %q contains the file text", msg)
			}
			if tc.key != nil && (strings.Contains(msg, hex.EncodeToString(tc.key[:4])) ||
				strings.Contains(msg, string(tc.key[:4]))) {
				t.Errorf("error %q contains the key", msg)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	root, _ := newTestRoot(t)
	ad := SealAD("tag", 1)
	for _, tc := range []struct {
		name      string
		plaintext []byte
	}{
		{"empty", []byte{}},
		{"AES material", bytes.Repeat([]byte{1}, 32)},
		{"PKCS#8", bytes.Repeat([]byte{2}, 1218)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := root.Seal(tc.plaintext, ad)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + 12 + len(tc.plaintext) + 16; len(sealed) != want || sealed[0] != 1 {
				t.Errorf("sealed is %d bytes starting %#x; want %d starting 0x01", len(sealed), sealed[0], want)
			}
			again, _ := root.Seal(tc.plaintext, ad)
			if bytes.Equal(sealed, again) {
				t.Error("two seals are equal")
			}
			got, err := root.Open(sealed, ad)
			if err != nil || got == nil || !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %x, %v; want %x, nil", got, err, tc.plaintext)
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	t.Parallel()
	root, _ := newTestRoot(t)
	other, _ := newTestRoot(t)
	ad := SealAD("tag", 3)
	sealed, err := root.Seal([]byte("key material"), ad)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, r *RootKey, s, ad []byte) {
		t.Helper()
		if got, err := r.Open(s, ad); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Errorf("%s: Open = %x, %v; want nil, ErrDecrypt", name, got, err)
		}
	}
	check("wrong version in AD", root, sealed, SealAD("tag", 4))
	check("wrong tag in AD", root, sealed, SealAD("tah", 3))
	check("secret AD", root, sealed, SealSecretAD("tag"))
	check("no AD", root, sealed, nil)
	check("other root key", other, sealed, ad)
	check("nil", root, nil, ad)
	check("format byte 2", root, append([]byte{2}, sealed[1:]...), ad)
	check("format byte missing", root, sealed[1:], ad)
	for i := range sealed {
		check(fmt.Sprintf("byte %d flipped", i), root, flip(sealed, i, 0x04), ad)
	}
	for n := range len(sealed) {
		check(fmt.Sprintf("first %d bytes", n), root, sealed[:n], ad)
	}
}

func TestRootKeyStringHidesKey(t *testing.T) {
	t.Parallel()
	root, text := newTestRoot(t)
	key, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(text)))
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v %x", root, root, root, root, *root, *root, *root, *root)
	if got, want := root.String(), "crypto.RootKey(redacted)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, enc := range []string{string(key[:8]), hex.EncodeToString(key[:8]),
		strings.TrimSpace(string(text))[:12], strings.Trim(fmt.Sprint(key[:6]), "[]")} {
		if strings.Contains(out, enc) {
			t.Errorf("formatted root key %q contains the key as %q", out, enc)
		}
	}
}

func TestSealAD(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, got, want string
	}{
		{"version 1", string(SealAD("abc123", 1)), "abc123:1"},
		{"large version", string(SealAD("k", 1234567)), "k:1234567"},
		{"secret", string(SealSecretAD("AKID0001")), "accesskey:AKID0001"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
