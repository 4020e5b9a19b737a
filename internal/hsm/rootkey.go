package hsm

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrNoWrapKey is returned by RootWrapKey when the token has no AES key with
// the label and none may be made.
var ErrNoWrapKey = errors.New("hsm: the token has no root key wrapping key with that label")

// CheckRootKeyLabel refuses a CKA_LABEL unfit for the root key's wrapping
// key: empty, longer than 64 bytes, with control characters, or starting
// with LabelPrefix (reserved for key versions, which the start-up sweep may
// delete).
func CheckRootKeyLabel(label string) error {
	switch {
	case label == "":
		return errors.New("--root-key-hsm: empty label")
	case len(label) > 64:
		return errors.New("--root-key-hsm: the label is longer than 64 bytes")
	case strings.HasPrefix(label, LabelPrefix):
		return fmt.Errorf("--root-key-hsm: labels starting with %q are nkms's key versions: choose another label", LabelPrefix)
	case strings.IndexFunc(label, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0:
		return errors.New("--root-key-hsm: the label has a control or invalid character")
	}
	return nil
}
