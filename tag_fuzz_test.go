package nkms

import (
	"strings"
	"testing"
)

// FuzzParseTagDefinition holds ParseTag to its definition: 64 hexadecimal characters
// in any case, canonical in lower case; anything else ErrKeyNotFound.
func FuzzParseTagDefinition(f *testing.F) {
	f.Add(strings.Repeat("a", 64))
	f.Add(strings.Repeat("F", 64))
	f.Add(strings.Repeat("0", 63) + "g")
	f.Add(strings.Repeat("0", 63) + "\xc3")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) == 64
		for i := 0; i < len(s); i++ {
			c := s[i]
			want = want && ('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F')
		}
		tag, err := ParseTag(s)
		switch {
		case want && (err != nil || tag.String() != strings.ToLower(s)):
			t.Fatalf("ParseTag(%q) = %q, %v; want %q", s, tag, err, strings.ToLower(s))
		case !want && (err != ErrKeyNotFound || !tag.IsZero()):
			t.Fatalf("ParseTag(%q) = %q, %v; want ErrKeyNotFound", s, tag, err)
		}
	})
}
