package nkms

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Tag is a keyTag in its canonical form: 64 lower-case hexadecimal
// characters. It can be made only by ParseTag, which validates and
// lower-cases, by Key.KeyTag (a stored key's tag is canonical) and by the
// Service when it creates a key; so a Tag that reaches a rate limiter, a
// usage log, an audit line or a store is always canonical, and two spellings
// of one key are one Tag. The zero Tag is "no key".
type Tag struct{ s string }

// ParseTag returns the Tag that s spells, in any case, or ErrKeyNotFound when
// s cannot be a keyTag at all. It runs on every request, so it allocates only
// for a tag with upper-case letters.
func ParseTag(s string) (Tag, error) {
	if len(s) != 64 {
		return Tag{}, ErrKeyNotFound
	}
	var class byte // the bits of tagByte of every byte of s
	for i := 0; i < len(s); i++ {
		class |= tagByte[s[i]]
	}
	switch {
	case class&tagBad != 0:
		return Tag{}, ErrKeyNotFound
	case class&tagUpper != 0:
		return Tag{strings.ToLower(s)}, nil
	}
	return Tag{s}, nil
}

// tagByte classes the bytes of a keyTag: 0 for the canonical ones (0-9,
// a-f), tagUpper for A-F, tagBad for any other. A table lookup per byte,
// for a check that runs on every request.
var tagByte = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			t[c] = tagUpper
		default:
			t[c] = tagBad
		}
	}
	return t
}()

const (
	tagUpper = 1 << iota
	tagBad
)

// String returns the tag's text ("" for the zero Tag).
func (t Tag) String() string { return t.s }

// IsZero reports whether t is the zero Tag.
func (t Tag) IsZero() bool { return t.s == "" }

// KeyTag returns the key's tag as a Tag: stores keep tags canonical.
func (k *Key) KeyTag() Tag { return Tag{k.Tag} }

// newTag draws a fresh random Tag.
func newTag() (Tag, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Tag{}, fmt.Errorf("generate keyTag: %w", err)
	}
	return Tag{hex.EncodeToString(b)}, nil
}
