package kubekms_test

import (
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/kubekms"
)

func TestParseKeyID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		tag     string
		version int
	}{
		{"abc:v1", "abc", 1},
		{strings.Repeat("ab", 32) + ":v12", strings.Repeat("ab", 32), 12},
		{"Tag-1:v999999999", "Tag-1", 999999999},
	} {
		tag, version, err := kubekms.ParseKeyID(tc.in)
		if err != nil || tag != tc.tag || version != tc.version {
			t.Errorf("ParseKeyID(%q) = %q, %d, %v; want %q, %d", tc.in, tag, version, err, tc.tag, tc.version)
		}
	}
	for _, in := range []string{"", "abc", "abc:", "abc:v", "abc:v0", "abc:v01", "abc:v1a", "abc:v-1", ":v1",
		"a:b:v1", "a b:v1", "abc:v1234567890", "abc:V1", "abc:v1:v2", strings.Repeat("a", 1030) + ":v1"} {
		if tag, version, err := kubekms.ParseKeyID(in); err == nil {
			t.Errorf("ParseKeyID(%q) = %q, %d, nil; want an error", in, tag, version)
		}
	}
}

// FuzzParseKeyID: ParseKeyID never panics, and what it accepts formats back
// to the same text.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range []string{"abc:v1", "abc:v01", "a:b:v1", ":v1", "x:v999999999", "x:v1\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, version, err := kubekms.ParseKeyID(s)
		if err != nil {
			return
		}
		if got := kubekms.FormatKeyID(tag, version); got != s {
			t.Fatalf("FormatKeyID(ParseKeyID(%q)) = %q", s, got)
		}
		if version < 1 {
			t.Fatalf("ParseKeyID(%q) accepted version %d", s, version)
		}
	})
}
