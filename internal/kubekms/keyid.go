package kubekms

import (
	"errors"
	"strconv"
	"strings"
)

// The key_id the plugin reports is "<keyTag>:v<N>": the nkms (or NAVER
// Cloud KMS) key tag and the key version that wrapped the data key. It
// changes when the key rotates, which is how kube-apiserver notices a
// rotation and makes a new data key; kube-apiserver stores it next to each
// wrapped data key and sends it back with Decrypt.

// maxKeyIDLen is kube-apiserver's limit on a key_id (kmsv2.KeyIDMaxSize).
const maxKeyIDLen = 1024

// errKeyID is the one error of ParseKeyID.
var errKeyID = errors.New(`key_id is not "<keyTag>:v<N>"`)

// FormatKeyID returns the key_id of version version of the key tag.
func FormatKeyID(tag string, version int) string {
	return tag + ":v" + strconv.Itoa(version)
}

// ParseKeyID parses a key_id written by FormatKeyID: a non-empty tag without
// ':' or white space, ":v", and a version of 1 to 9 decimal digits without a
// leading zero. FormatKeyID(ParseKeyID(s)) == s for every accepted s.
func ParseKeyID(s string) (tag string, version int, err error) {
	if len(s) > maxKeyIDLen {
		return "", 0, errKeyID
	}
	tag, digits, ok := strings.Cut(s, ":v")
	if !ok || tag == "" || strings.ContainsAny(tag, ": \t\r\n") {
		return "", 0, errKeyID
	}
	if len(digits) == 0 || len(digits) > 9 || digits[0] == '0' {
		return "", 0, errKeyID
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", 0, errKeyID
		}
	}
	version, err = strconv.Atoi(digits)
	if err != nil {
		return "", 0, errKeyID
	}
	return tag, version, nil
}
