package nkms_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nkms/nkms"
)

// FuzzParseTag: ParseTag never panics; what it accepts is 64 lower-case hex
// characters, the same Tag in every spelling, and parses to itself; what it
// refuses is ErrKeyNotFound.
func FuzzParseTag(f *testing.F) {
	f.Add(strings.Repeat("a", 64))
	f.Add(strings.Repeat("F", 64))
	f.Add("../etc/passwd")
	f.Add(strings.Repeat("0", 63) + "g")
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := nkms.ParseTag(s)
		if err != nil {
			if !errors.Is(err, nkms.ErrKeyNotFound) || !tag.IsZero() {
				t.Fatalf("ParseTag(%q) = %q, %v; want the zero Tag and ErrKeyNotFound", s, tag, err)
			}
			return
		}
		got := tag.String()
		if len(got) != 64 || strings.Trim(got, "0123456789abcdef") != "" || got != strings.ToLower(s) {
			t.Fatalf("ParseTag(%q) = %q: not the lower-case spelling", s, got)
		}
		for _, spelling := range []string{got, strings.ToUpper(s)} {
			if again, err := nkms.ParseTag(spelling); err != nil || again != tag {
				t.Fatalf("ParseTag(%q) = %q, %v; want %q", spelling, again, err, tag)
			}
		}
	})
}
