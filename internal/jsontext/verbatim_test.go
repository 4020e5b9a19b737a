package jsontext_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/jsontext"
)

// Every single byte that Verbatim takes is one that encoding/json writes as
// it is, and it takes exactly the printable ASCII bytes but '"', '\\', '<',
// '>' and '&'.
func TestVerbatimByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		s := string([]byte{byte(c)})
		want := c >= 0x20 && c <= 0x7e && !strings.ContainsRune(`"\<>&`, rune(c))
		if got := jsontext.Verbatim(s); got != want {
			t.Errorf("Verbatim(%q) = %v, want %v", s, got, want)
		}
		if b, _ := json.Marshal(s); jsontext.Verbatim(s) && string(b) != `"`+s+`"` {
			t.Errorf("Verbatim(%q), but encoding/json writes %s", s, b)
		}
	}
}

// Longer strings: Verbatim is the conjunction of its bytes.
func TestVerbatimStrings(t *testing.T) {
	for s, want := range map[string]bool{
		"":                      true,
		"ncpkms:v1:abcDEF+/=":   true,
		"a<b":                   false,
		"tab\there":             false,
		"caf\u00e9":             false,
		strings.Repeat("x", 99): true,
	} {
		if got := jsontext.Verbatim(s); got != want {
			t.Errorf("Verbatim(%q) = %v, want %v", s, got, want)
		}
	}
}
