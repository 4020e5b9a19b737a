package crypto

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// RootKeySize is the length in bytes of the root key (decisions D8).
const RootKeySize = 32

const (
	sealFormatV1 = 0x01           // first byte of every sealed value
	sealInfo     = "nkms seal v1" // HKDF info for the sealing key
)

// NewRootKeyFile returns a fresh random root key encoded as the text of a
// root key file: standard Base64 followed by a newline.
func NewRootKeyFile() ([]byte, error) {
	key, err := RandomBytes(RootKeySize)
	if err != nil {
		return nil, err
	}
	text := make([]byte, base64.StdEncoding.EncodedLen(RootKeySize)+1)
	base64.StdEncoding.Encode(text, key)
	text[len(text)-1] = '\n'
	clear(key)
	return text, nil
}

// ParseRootKeyFile parses the text of a root key file as written by
// NewRootKeyFile. Whitespace around the Base64 text is ignored. The key must
// be exactly RootKeySize bytes. Error messages never contain the file's text.
func ParseRootKeyFile(text []byte) (*RootKey, error) {
	key, err := decodeRootKeyFile(text)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	return newRootKey(key)
}

// decodeRootKeyFile returns the RootKeySize bytes of a plain root key file;
// the caller clears them. A wrapped file (IsWrappedRootKeyFile) is refused
// with a message that says so.
func decodeRootKeyFile(text []byte) ([]byte, error) {
	if IsWrappedRootKeyFile(text) {
		return nil, ErrWrappedRootKey
	}
	trimmed := bytes.TrimSpace(text)
	if len(trimmed) == 0 {
		return nil, errors.New("crypto: root key file is empty")
	}
	if bytes.ContainsAny(trimmed, "\r\n\t ") {
		return nil, errors.New("crypto: root key file: whitespace inside the Base64 text")
	}
	key := make([]byte, base64.StdEncoding.DecodedLen(len(trimmed)))
	n, err := base64.StdEncoding.Strict().Decode(key, trimmed)
	if err != nil {
		clear(key)
		// The decoder's error names only an offset; still, say nothing of the text.
		return nil, errors.New("crypto: root key file: not valid standard Base64")
	}
	if n != RootKeySize {
		clear(key)
		return nil, fmt.Errorf("crypto: root key file: key is %d bytes, want %d", n, RootKeySize)
	}
	return key[:n], nil
}

func newRootKey(key []byte) (*RootKey, error) {
	sealKey, err := hkdf.Key(sha256.New, key, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("crypto: deriving the sealing key: %w", err)
	}
	defer clear(sealKey)
	aead, err := newGCM(sealKey)
	if err != nil {
		return nil, err
	}
	return &RootKey{aead: aead}, nil
}

// RootKey seals and opens key material and secrets at rest with AES-256-GCM
// under a key derived from the root key with HKDF-SHA256. It is safe for
// concurrent use. It holds no copy of the root key itself.
type RootKey struct {
	aead cipher.AEAD
}

// Seal encrypts plaintext bound to the associated data ad (see SealAD and
// SealSecretAD). The result is a format byte ‖ 12-byte random nonce ‖
// ciphertext ‖ 16-byte tag.
func (r *RootKey) Seal(plaintext, ad []byte) ([]byte, error) {
	nonce, err := RandomBytes(gcmNonceSize)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1, 1+gcmNonceSize+len(plaintext)+gcmTagSize)
	out[0] = sealFormatV1
	out = append(out, nonce...)
	return r.aead.Seal(out, nonce, plaintext, ad), nil
}

// Open decrypts a value produced by Seal with the same associated data.
// Every failure is ErrDecrypt.
func (r *RootKey) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealFormatV1 {
		return nil, ErrDecrypt
	}
	return gcmOpen(r.aead, sealed[1:], ad)
}

// String describes the root key without its bytes.
func (r *RootKey) String() string {
	if r == nil {
		return "crypto.RootKey(nil)"
	}
	return "crypto.RootKey(redacted)"
}

// GoString is String, so that %#v does not print the key either.
func (r *RootKey) GoString() string { return r.String() }

// SealAD returns the associated data for the sealed material of version
// `version` of the key `tag`: tag + ":" + decimal version.
func SealAD(tag string, version int) []byte {
	return []byte(tag + ":" + strconv.Itoa(version))
}

// SealSecretAD returns the associated data for the sealed secret of an
// access key: "accesskey:" + accessKeyID.
func SealSecretAD(accessKeyID string) []byte {
	return []byte("accesskey:" + accessKeyID)
}

// SealTokenGeneratorAD returns the associated data for the sealed secret of
// a key's token generator: "tokengen:" + keyTag + ":" + generator id.
func SealTokenGeneratorAD(tag, generatorID string) []byte {
	return []byte("tokengen:" + tag + ":" + generatorID)
}

// RootCheckAD returns the associated data of the root-key check value that a
// store (and so a backup) keeps: a value sealed under the root key that the
// root key of every later start, and of every restore, must open.
func RootCheckAD() []byte { return []byte("nkms:root-key-check") }
