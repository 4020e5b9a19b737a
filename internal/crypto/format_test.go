package crypto

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFormatCiphertext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		version int
		body    []byte
		want    string
	}{
		{"one byte", 1, []byte{0xff}, "ncpkms:v1:/w=="},
		{"two bytes", 12, []byte("hi"), "ncpkms:v12:aGk="},
		{"three bytes", 999999999, []byte{0xfb, 0xef, 0xbe}, "ncpkms:v999999999:++++"},
	} {
		if got := FormatCiphertext(tc.version, tc.body); got != tc.want {
			t.Errorf("%s: FormatCiphertext = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseCiphertextValid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		version int
		body    []byte
	}{
		{"version 1", "ncpkms:v1:/w==", 1, []byte{0xff}},
		{"version 10", "ncpkms:v10:aGk=", 10, []byte("hi")},
		{"no padding needed", "ncpkms:v7:aGVs", 7, []byte("hel")},
		{"max version", "ncpkms:v999999999:++++", 999999999, []byte{0xfb, 0xef, 0xbe}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, body, err := ParseCiphertext(tc.in)
			if err != nil {
				t.Fatalf("ParseCiphertext(%q) = %v", tc.in, err)
			}
			if v != tc.version {
				t.Errorf("version = %d, want %d", v, tc.version)
			}
			if diff := cmp.Diff(body, tc.body); diff != "" {
				t.Errorf("body (-got +want):\n%s", diff)
			}
			if got := FormatCiphertext(v, body); got != tc.in {
				t.Errorf("FormatCiphertext(ParseCiphertext(s)) = %q, want %q", got, tc.in)
			}
		})
	}
}

func TestParseCiphertextInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"prefix only", "ncpkms:v"},
		{"no version", "ncpkms:v:aGk="},
		{"no colon after version", "ncpkms:v1"},
		{"empty body", "ncpkms:v1:"},
		{"version 0", "ncpkms:v0:aGk="},
		{"leading zero", "ncpkms:v01:aGk="},
		{"negative version", "ncpkms:v-1:aGk="},
		{"plus version", "ncpkms:v+1:aGk="},
		{"10-digit version", "ncpkms:v1000000000:aGk="},
		{"int32 overflow", "ncpkms:v2147483648:aGk="},
		{"hex version", "ncpkms:v0x1:aGk="},
		{"space in version", "ncpkms:v 1:aGk="},
		{"non-ASCII digit", "ncpkms:v١:aGk="},
		{"upper case prefix", "NCPKMS:v1:aGk="},
		{"capital V", "ncpkms:V1:aGk="},
		{"vault prefix", "vault:v1:aGk="},
		{"leading space", " ncpkms:v1:aGk="},
		{"trailing space", "ncpkms:v1:aGk= "},
		{"trailing newline", "ncpkms:v1:aGk=\n"},
		{"CRLF inside body", "ncpkms:v1:aG\r\nk="},
		{"newline inside body", "ncpkms:v1:aGVs\naGVs"},
		{"missing padding", "ncpkms:v1:aGk"},
		{"extra padding", "ncpkms:v1:aGk=="},
		{"padding in the middle", "ncpkms:v1:aGk=aGk="},
		{"non-canonical trailing bits", "ncpkms:v1:aGl="},
		{"URL alphabet", "ncpkms:v1:-_-_"},
		{"second colon", "ncpkms:v1:aGk=:aGk="},
		{"only padding", "ncpkms:v1:===="},
		{"NUL", "ncpkms:v1:aGk=\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v, body, err := ParseCiphertext(tc.in)
			if !errors.Is(err, ErrFormat) || v != 0 || body != nil {
				t.Errorf("ParseCiphertext(%q) = %d, %x, %v; want 0, nil, ErrFormat", tc.in, v, body, err)
			}
		})
	}
}

func TestParseFormatRoundTripRealValues(t *testing.T) {
	t.Parallel()
	ks := keys(t)
	for _, k := range []*Key{ks.aes, ks.aesConv, ks.rsa} {
		body, err := k.Encrypt([]byte("round trip"), []byte("c"))
		if err != nil {
			t.Fatal(err)
		}
		s := FormatCiphertext(42, body)
		if !strings.HasPrefix(s, "ncpkms:v42:") {
			t.Errorf("%v: FormatCiphertext = %q", k, s)
		}
		v, got, err := ParseCiphertext(s)
		if err != nil || v != 42 || !cmp.Equal(got, body) {
			t.Errorf("%v: ParseCiphertext = %d, %x, %v; want 42, %x, nil", k, v, got, err, body)
		}
	}
}

func TestCiphertextVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"ncpkms:v1:/w==", 1},
		{"ncpkms:v12:not base64 at all", 12},
		{"ncpkms:v999999999:++++", 999999999},
		{"ncpkms:v1000000000:++++", 0},
		{"ncpkms:v0:aGk=", 0},
		{"ncpkms:v01:aGk=", 0},
		{"ncpkms:v1", 0},
		{"ncpkms:v:aGk=", 0},
		{"ncpkms:v-1:aGk=", 0},
		{"vault:v1:aGk=", 0},
		{"", 0},
	} {
		if got := CiphertextVersion(tc.in); got != tc.want {
			t.Errorf("CiphertextVersion(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
