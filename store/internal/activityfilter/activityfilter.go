// Package activityfilter is the keyword rule of nkms.ActivityQuery, shared by
// the stores so that they all match the same entries.
package activityfilter

import (
	"strings"

	"github.com/nkms/nkms"
)

// Keyword is the keyword of a query, ready to match entries.
type Keyword struct {
	lower string
	// plain is set when lower is printable ASCII that JSON never escapes, so
	// that it occurs literally in the record of every entry it matches.
	plain bool
}

// NewKeyword prepares the keyword s; "" matches every entry.
func NewKeyword(s string) Keyword {
	k := Keyword{lower: strings.ToLower(s), plain: true}
	for i := 0; i < len(k.lower); i++ {
		if c := k.lower[i]; c < 0x20 || c >= 0x7f || strings.IndexByte(`"\<>&`, c) >= 0 {
			k.plain = false
		}
	}
	return k
}

// Empty reports whether k matches every entry.
func (k Keyword) Empty() bool { return k.lower == "" }

// Match reports whether k occurs, case-insensitively, in the entry's Action,
// Requestor, IP, Result, AuthType, RequestType or Message.
func (k Keyword) Match(a *nkms.Activity) bool {
	if k.lower == "" {
		return true
	}
	for _, f := range [...]string{a.Action, a.Requestor, a.IP, a.Result, a.AuthType, a.RequestType, a.Message} {
		if k.in(f) {
			return true
		}
	}
	return false
}

// in reports whether k occurs in s, case-insensitively.
func (k Keyword) in(s string) bool {
	if k.plain && isASCII(s) {
		return indexASCIIFold(s, k.lower) >= 0
	}
	return strings.Contains(strings.ToLower(s), k.lower)
}

// MayMatch reports whether the JSON record rec (of store/codec) may hold an
// entry that k matches; false means it certainly does not, so a store can
// skip decoding it. It looks at the raw bytes only when that is safe: for a
// plain keyword and an all-ASCII record, in which every field's text appears
// literally (what JSON escapes is not in a plain keyword) and lower-casing is
// ASCII folding.
func (k Keyword) MayMatch(rec []byte) bool {
	if k.lower == "" || !k.plain || !isASCII(rec) {
		return true
	}
	return indexASCIIFold(rec, k.lower) >= 0
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// indexASCIIFold returns the index of the first occurrence of lower (ASCII,
// lower-case) in s, with ASCII letters of s folded to lower case, or -1.
func indexASCIIFold[T string | []byte](s T, lower string) int {
	n := len(lower)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == n {
			return i
		}
	}
	return -1
}
