// Package crypto is the only door to the standard library's cryptography in
// nkms: key generation, sealing key material under the root key, the
// `ncpkms:v<N>:` ciphertext format, AES-256-GCM, RSA-OAEP, RSASSA-PSS and
// ECDSA (spec/decisions.md D5 and D8).
//
// Every exported type keeps its key bytes unexported, and its String method
// never prints them. Every decryption failure is the same ErrDecrypt, so
// callers cannot become a padding, tag or format oracle.
package crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// Algorithm names a key type, spelled as in the NAVER Cloud KMS API.
type Algorithm string

// The key types nkms supports.
const (
	AES256  Algorithm = "AES256"  // AES-256-GCM encryption
	RSA2048 Algorithm = "RSA2048" // RSA-OAEP encryption and RSASSA-PSS signatures
	ECDSA   Algorithm = "ECDSA"   // ECDSA P-256 signatures
)

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrDecrypt is returned for every decryption failure, whatever its cause,
	// so that no caller can tell a bad tag from bad padding or a short input.
	ErrDecrypt = errors.New("decryption failed")
	// ErrFormat is returned by ParseCiphertext for any malformed value.
	ErrFormat = errors.New("malformed ncpkms value")
	// ErrMalformedSignature is returned by Verify for a signature that is not
	// well formed (for ECDSA: not a DER ECDSA-Sig-Value).
	ErrMalformedSignature = errors.New("malformed signature")
	// ErrUnsupported is returned for an operation the key type does not offer,
	// such as encrypting with an ECDSA key or signing with an AES key.
	ErrUnsupported = errors.New("operation not supported by this key type")
	// ErrPlaintextTooLong is returned by Encrypt when an RSA2048 plaintext is
	// longer than RSAMaxPlaintext bytes.
	ErrPlaintextTooLong = errors.New("plaintext too long for this key type")
)

// RSAMaxPlaintext is the longest plaintext an RSA2048 key encrypts with
// RSA-OAEP SHA-256: 256 - 2*32 - 2 bytes.
const RSAMaxPlaintext = 190

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("crypto: negative length %d", n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("crypto: reading randomness: %w", err)
	}
	return b, nil
}
