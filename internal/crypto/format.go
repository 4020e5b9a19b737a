package crypto

// This file is the one place that writes and reads `ncpkms:v<N>:<Base64>`
// values (decisions D5). Parsing is strict, so that every accepted string is
// exactly what FormatCiphertext would write for the parsed version and body.

import (
	"encoding/base64"
	"strconv"
	"strings"
)

const (
	ciphertextPrefix  = "ncpkms:v"
	maxVersionDigits  = 9 // 999,999,999 fits an int32
	base64StdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)

var strictBase64 = base64.StdEncoding.Strict()

// FormatCiphertext returns "ncpkms:v" + decimal version + ":" + the standard
// Base64 (with padding) of body. It is used for ciphertexts and signatures.
func FormatCiphertext(version int, body []byte) string {
	// Made in a stack buffer when it fits, so that the string is the one
	// allocation (the ciphertext of a short plaintext is about 100 bytes).
	var stack [160]byte
	b := append(stack[:0], ciphertextPrefix...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, ':')
	b = base64.StdEncoding.AppendEncode(b, body)
	return string(b)
}

// ParseCiphertext parses a value written by FormatCiphertext. It accepts only
// the exact prefix "ncpkms:v", a version of 1 to 9 decimal digits without a
// leading zero, a colon, and a non-empty body in strict, padded standard
// Base64 with no whitespace. Any other input gives ErrFormat.
// FormatCiphertext(ParseCiphertext(s)) == s for every accepted s.
func ParseCiphertext(s string) (version int, body []byte, err error) {
	rest, ok := strings.CutPrefix(s, ciphertextPrefix)
	if !ok {
		return 0, nil, ErrFormat
	}
	digits, encoded, ok := strings.Cut(rest, ":")
	if !ok || !validVersion(digits) || encoded == "" {
		return 0, nil, ErrFormat
	}
	version, err = strconv.Atoi(digits)
	if err != nil || version < 1 {
		return 0, nil, ErrFormat
	}
	// The decoder skips '\r' and '\n' even in strict mode; refuse them and
	// anything else outside the alphabet first.
	if strings.Trim(encoded, base64StdAlphabet) != "" || len(encoded)%4 != 0 {
		return 0, nil, ErrFormat
	}
	body, err = strictBase64.DecodeString(encoded)
	if err != nil || len(body) == 0 || base64.StdEncoding.EncodeToString(body) != encoded {
		return 0, nil, ErrFormat
	}
	return version, body, nil
}

// CiphertextVersion returns the version named by the "ncpkms:v<N>:" prefix
// of s, without looking at the body: 0 when s does not start with a prefix
// that ParseCiphertext would accept. It is for logs, which name the version
// a request used, not for deciding anything.
func CiphertextVersion(s string) int {
	rest, ok := strings.CutPrefix(s, ciphertextPrefix)
	if !ok {
		return 0
	}
	digits, _, ok := strings.Cut(rest[:min(len(rest), maxVersionDigits+1)], ":")
	if !ok || !validVersion(digits) {
		return 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0
	}
	return n
}

// validVersion reports whether digits is 1 to maxVersionDigits ASCII digits
// with no leading zero.
func validVersion(digits string) bool {
	if len(digits) == 0 || len(digits) > maxVersionDigits || digits[0] == '0' {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}
