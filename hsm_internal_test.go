package nkms

import (
	"bytes"
	"fmt"
	"testing"
)

// FuzzHSMLabel: parseHSMLabel never panics and accepts only what
// newVersion writes ("nkms:<keyTag>:v<N>:<Unix ms>"): formatting what it
// parsed gives back the label. isHSMRef accepts only the magic followed by
// a full-length id.
func FuzzHSMLabel(f *testing.F) {
	f.Add("nkms:" + string(bytes.Repeat([]byte("a"), 64)) + ":v1:1764579600000")
	f.Add("nkms::v1:1")
	f.Add("nkms:tag:v01:1")
	f.Add("nkms:tag:v1:+5")
	f.Add("other:tag:v1:1")
	f.Add("nkms-hsm-ref-v1:01234567890123456789")
	f.Fuzz(func(t *testing.T, label string) {
		if tag, v, created, ok := parseHSMLabel(label); ok {
			if again := fmt.Sprintf("%s%s:v%d:%d", hsmLabelPrefix, tag, v, created.UnixMilli()); again != label {
				t.Fatalf("parseHSMLabel(%q) = %q, %d, %v: formats back as %q", label, tag, v, created, again)
			}
		}
		if id, ok := isHSMRef([]byte(label)); ok && (len(id) != hsmIDSize || !bytes.Equal(hsmRef(id), []byte(label))) {
			t.Fatalf("isHSMRef(%q) = %x", label, id)
		}
	})
}
