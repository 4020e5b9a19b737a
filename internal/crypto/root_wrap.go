package crypto

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// A wrapped root key file (issue 18, --root-key-hsm) holds the root key
// sealed with AES-256-GCM under a key that never leaves a PKCS#11 token:
//
//	nkms-wrapped-root-key:v1:<standard Base64 of nonce ‖ ciphertext ‖ tag>\n
//
// The nonce is 12 random bytes, the ciphertext RootKeySize bytes, the tag 16
// bytes, and the associated data is rootWrapAD. The prefix contains ':',
// which standard Base64 never does, so a plain root key file and a wrapped
// one cannot be taken for each other.
const (
	wrappedRootKeyMagic  = "nkms-wrapped-root-key:"
	wrappedRootKeyPrefix = wrappedRootKeyMagic + "v1:"
	wrappedRootKeyLen    = gcmNonceSize + RootKeySize + gcmTagSize
	rootWrapAD           = "nkms:root-key-wrap:v1"
)

// ErrWrappedRootKey is what ParseRootKeyFile says of a wrapped root key file.
var ErrWrappedRootKey = errors.New("crypto: the root key file holds a root key wrapped by a key in an HSM token (nkms-wrapped-root-key), not a plain root key")

// ErrRootKeyUnwrap: the token's key did not unwrap the root key file (it is
// not the key the file was wrapped with, or the file was altered).
var ErrRootKeyUnwrap = errors.New("crypto: the token's wrapping key does not unwrap this root key file (another token or wrapping key label, or an altered file)")

// IsWrappedRootKeyFile reports whether text is a wrapped root key file of any
// version (it starts with "nkms-wrapped-root-key:").
func IsWrappedRootKeyFile(text []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(text), []byte(wrappedRootKeyMagic))
}

// ParseWrappedRootKeyFile checks the text of a wrapped root key file and
// returns its sealed part: nonce ‖ ciphertext ‖ tag. Whitespace around the
// text is ignored. Errors never contain the file's text.
func ParseWrappedRootKeyFile(text []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(text)
	if !bytes.HasPrefix(trimmed, []byte(wrappedRootKeyMagic)) {
		return nil, errors.New("crypto: not a wrapped root key file (no nkms-wrapped-root-key: prefix)")
	}
	if !bytes.HasPrefix(trimmed, []byte(wrappedRootKeyPrefix)) {
		return nil, errors.New("crypto: wrapped root key file: unsupported version (this nkms reads v1)")
	}
	body := trimmed[len(wrappedRootKeyPrefix):]
	if bytes.ContainsAny(body, "\r\n\t ") {
		return nil, errors.New("crypto: wrapped root key file: whitespace inside the Base64 text")
	}
	if base64.StdEncoding.DecodedLen(len(body)) > wrappedRootKeyLen+2 {
		return nil, errors.New("crypto: wrapped root key file: too long")
	}
	sealed := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Strict().Decode(sealed, body)
	if err != nil {
		return nil, errors.New("crypto: wrapped root key file: not valid standard Base64")
	}
	if n != wrappedRootKeyLen {
		return nil, fmt.Errorf("crypto: wrapped root key file: %d bytes, want %d", n, wrappedRootKeyLen)
	}
	return sealed[:n], nil
}

// NewWrappedRootKeyFile makes a fresh random root key and returns it wrapped
// under w (the token's key), as the text of a wrapped root key file, and as
// a RootKey. The plain root key exists only in memory, and is cleared.
func NewWrappedRootKeyFile(w TokenAEAD) ([]byte, *RootKey, error) {
	key, err := RandomBytes(RootKeySize)
	if err != nil {
		return nil, nil, err
	}
	defer clear(key)
	text, err := wrapRootKey(key, w)
	if err != nil {
		return nil, nil, err
	}
	root, err := newRootKey(key)
	if err != nil {
		return nil, nil, err
	}
	return text, root, nil
}

// WrapRootKeyFile returns the plain root key file plain wrapped under w, after
// checking that w unwraps the result to the same key.
func WrapRootKeyFile(plain []byte, w TokenAEAD) ([]byte, error) {
	key, err := decodeRootKeyFile(plain)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return wrapRootKey(key, w)
}

// wrapRootKey seals key under w and checks that w opens it again to key.
func wrapRootKey(key []byte, w TokenAEAD) ([]byte, error) {
	if w == nil {
		return nil, errors.New("crypto: no wrapping key")
	}
	nonce, err := RandomBytes(gcmNonceSize)
	if err != nil {
		return nil, err
	}
	ct, err := w.Seal(nonce, key, []byte(rootWrapAD))
	if err != nil {
		return nil, fmt.Errorf("crypto: wrapping the root key: %w", err)
	}
	sealed := append(nonce, ct...)
	if len(sealed) != wrappedRootKeyLen {
		return nil, fmt.Errorf("crypto: wrapping the root key: the token returned %d bytes, want %d", len(ct), RootKeySize+gcmTagSize)
	}
	text := make([]byte, 0, len(wrappedRootKeyPrefix)+base64.StdEncoding.EncodedLen(len(sealed))+1)
	text = append(text, wrappedRootKeyPrefix...)
	text = base64.StdEncoding.AppendEncode(text, sealed)
	text = append(text, '\n')
	back, err := unwrapRootKey(text, w)
	if err != nil {
		return nil, fmt.Errorf("crypto: the wrapped root key does not unwrap again: %w", err)
	}
	defer clear(back)
	if !bytes.Equal(back, key) {
		return nil, errors.New("crypto: the wrapped root key unwraps to another key")
	}
	return text, nil
}

// UnwrapRootKeyFile opens a wrapped root key file with w. A key that does
// not open it is ErrRootKeyUnwrap.
func UnwrapRootKeyFile(text []byte, w TokenAEAD) (*RootKey, error) {
	key, err := unwrapRootKey(text, w)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return newRootKey(key)
}

func unwrapRootKey(text []byte, w TokenAEAD) ([]byte, error) {
	sealed, err := ParseWrappedRootKeyFile(text)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("crypto: no wrapping key")
	}
	key, err := w.Open(sealed[:gcmNonceSize], sealed[gcmNonceSize:], []byte(rootWrapAD))
	if err != nil || len(key) != RootKeySize {
		clear(key)
		return nil, ErrRootKeyUnwrap
	}
	return key, nil
}
