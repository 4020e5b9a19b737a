package crypto

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// rootKeyFileErr is every error message ParseRootKeyFile may give: fixed
// text and a byte count, never any of the file's text.
var rootKeyFileErr = regexp.MustCompile(`^crypto: root key file(` +
	` is empty|: whitespace inside the Base64 text|: not valid standard Base64|: key is [0-9]+ bytes, want 32)$`)

// FuzzParseRootKeyFile checks ParseRootKeyFile on arbitrary file text: it
// never panics; an error says nothing of the text; it accepts exactly the
// canonical, padded standard Base64 of 32 bytes with optional whitespace
// around it; and an accepted file is the same root key as that canonical
// text (a value sealed under one opens under the other).
func FuzzParseRootKeyFile(f *testing.F) {
	file, err := NewRootKeyFile()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ParseRootKeyFile(file); err != nil {
		f.Fatalf("ParseRootKeyFile(NewRootKeyFile()) = %v", err)
	}
	b64 := strings.TrimSuffix(string(file), "\n")
	key, _ := base64.StdEncoding.DecodeString(b64)
	// The last data character of 32 bytes carries 4 bits and 2 zero bits; setting one breaks canonical form.
	noncanonical := b64[:42] + string(base64StdAlphabet[strings.IndexByte(base64StdAlphabet, b64[42])^1]) + "="
	for _, s := range []string{
		string(file), b64, b64 + "\r\n", "  \t" + b64 + "\n\n", "\v\f" + b64 + "\u00a0", "\ufeff" + b64,
		b64[:20] + "\n" + b64[20:], b64[:20] + " " + b64[20:], strings.TrimRight(b64, "="), b64 + "=",
		b64 + b64, base64.URLEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(key[:31]),
		base64.StdEncoding.EncodeToString(append(key, 0)), noncanonical, "", "   ", "\x00", "====",
		strings.Repeat("A", 43) + "=", strings.Repeat("/", 44),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		root, err := ParseRootKeyFile(text)
		trimmed := bytes.TrimSpace(text)
		dec, decErr := base64.StdEncoding.Strict().DecodeString(string(trimmed))
		canonical := decErr == nil && len(dec) == RootKeySize && base64.StdEncoding.EncodeToString(dec) == string(trimmed)
		if err != nil {
			if root != nil {
				t.Fatalf("ParseRootKeyFile(%q) = %v with error %v", text, root, err)
			}
			if !rootKeyFileErr.MatchString(err.Error()) {
				t.Fatalf("ParseRootKeyFile(%q) error %q is not one of the fixed messages", text, err)
			}
			if canonical {
				t.Fatalf("ParseRootKeyFile(%q) = %v, but it is canonical Base64 of %d bytes", text, err, RootKeySize)
			}
			return
		}
		if root == nil {
			t.Fatalf("ParseRootKeyFile(%q) = nil, nil", text)
		}
		if !canonical {
			t.Fatalf("ParseRootKeyFile(%q) accepted text that is not canonical Base64 of %d bytes", text, RootKeySize)
		}
		same, err := ParseRootKeyFile([]byte(base64.StdEncoding.EncodeToString(dec) + "\n"))
		if err != nil {
			t.Fatalf("ParseRootKeyFile of the canonical file = %v", err)
		}
		ad := SealAD("tag", 1)
		sealed, err := root.Seal([]byte("material"), ad)
		if err != nil {
			t.Fatalf("Seal = %v", err)
		}
		if got, err := same.Open(sealed, ad); err != nil || string(got) != "material" {
			t.Fatalf("Open under the canonical file's key = %q, %v; want %q", got, err, "material")
		}
	})
}
