// Package jsontext holds what the hand-written JSON encoders of the hot
// paths (api's flat answers, store/codec's usage-log records) share.
package jsontext

// Verbatim reports whether encoding/json writes s as it is between quotes:
// printable ASCII without '"', '\\' and the characters it escapes for HTML.
func Verbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		if !verbatimByte[s[i]] {
			return false
		}
	}
	return true
}

// verbatimByte tells the bytes of verbatim strings: one load per byte
// rather than seven comparisons (every answer's ciphertexts pass here).
var verbatimByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
