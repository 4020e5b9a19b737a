package crypto

// The thin wrappers around the standard library primitives. Key, RootKey and
// the Wycheproof tests all call these functions, so the vectors exercise the
// same code paths as the service.

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
)

const (
	gcmNonceSize = 12 // bytes; the standard GCM nonce
	gcmTagSize   = 16 // bytes; the full GCM tag
	rsaSize      = 256
	pssSaltSize  = 222 // bytes; the largest salt a 2048-bit key allows with SHA-256 (D5)
)

// newGCM returns AES-GCM with a 12-byte nonce and a 16-byte tag under key,
// which must be 32 bytes long (AES-256).
func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errInvalidKeySize
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("crypto: AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("crypto: AES-GCM: %w", err)
	}
	return aead, nil
}

// gcmSeal encrypts plaintext with the given nonce and associated data and
// returns nonce ‖ ciphertext ‖ tag.
func gcmSeal(aead cipher.AEAD, nonce, plaintext, ad []byte) []byte {
	out := make([]byte, len(nonce), len(nonce)+len(plaintext)+aead.Overhead())
	copy(out, nonce)
	return aead.Seal(out, nonce, plaintext, ad)
}

// gcmSealRandom is gcmSeal with a fresh random nonce from crypto/rand.
func gcmSealRandom(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	n := aead.NonceSize()
	out := make([]byte, n, n+len(plaintext)+aead.Overhead()) // the nonce is drawn in place: one allocation
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("crypto: reading randomness: %w", err)
	}
	return aead.Seal(out, out, plaintext, ad), nil
}

// gcmOpen decrypts body = nonce ‖ ciphertext ‖ tag. Every failure is ErrDecrypt.
func gcmOpen(aead cipher.AEAD, body, ad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(body) < n+aead.Overhead() {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, body[:n], body[n:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{} // an empty plaintext is a success, not a nil result
	}
	return pt, nil
}

// oaepEncrypt encrypts with RSA-OAEP, SHA-256 and MGF1-SHA-256, no label.
func oaepEncrypt(pub *rsa.PublicKey, plaintext []byte) ([]byte, error) {
	if len(plaintext) > pub.Size()-2*sha256.Size-2 {
		return nil, ErrPlaintextTooLong
	}
	return rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, plaintext, nil)
}

// oaepDecrypt decrypts RSA-OAEP with SHA-256 and MGF1-SHA-256 under label
// (nil for nkms ciphertexts). Every failure is ErrDecrypt.
func oaepDecrypt(priv *rsa.PrivateKey, body, label []byte) ([]byte, error) {
	if len(body) != priv.Size() {
		return nil, ErrDecrypt
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, priv, body, label)
	if err != nil {
		return nil, ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// pssSign signs SHA-256(msg) with RSASSA-PSS, MGF1-SHA-256 and the given salt length.
func pssSign(priv *rsa.PrivateKey, msg []byte, saltLen int) ([]byte, error) {
	if saltLen <= 0 { // rsa.PSSOptions reads 0 as "auto" and negative values as special modes
		return nil, errors.New("crypto: PSS salt length must be positive")
	}
	digest := sha256.Sum256(msg)
	return rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:],
		&rsa.PSSOptions{SaltLength: saltLen, Hash: crypto.SHA256})
}

// pssVerify reports whether sig is a valid RSASSA-PSS signature of
// SHA-256(msg) with MGF1-SHA-256 and exactly saltLen bytes of salt.
func pssVerify(pub *rsa.PublicKey, msg, sig []byte, saltLen int) bool {
	if len(sig) != pub.Size() || saltLen <= 0 { // 0 would mean "any salt length" to rsa.VerifyPSS
		return false
	}
	digest := sha256.Sum256(msg)
	err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig,
		&rsa.PSSOptions{SaltLength: saltLen, Hash: crypto.SHA256})
	return err == nil
}

// ecdsaSign signs SHA-256(msg) and returns an ASN.1 DER ECDSA-Sig-Value.
func ecdsaSign(priv *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, priv, digest[:])
}

// ecdsaVerifyDER verifies a DER ECDSA-Sig-Value over SHA-256(msg). A sig that
// is not strict DER gives (false, ErrMalformedSignature); a well-formed one
// gives (valid, nil).
func ecdsaVerifyDER(pub *ecdsa.PublicKey, msg, sig []byte) (bool, error) {
	if !isDERSignature(sig) {
		return false, ErrMalformedSignature
	}
	digest := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(pub, digest[:], sig), nil
}

// isDERSignature reports whether sig is exactly the DER encoding of
// SEQUENCE { r INTEGER, s INTEGER } with r and s positive and nothing after it.
// encoding/asn1 rejects indefinite and non-minimal lengths and non-minimal
// integers; marshalling the result again and comparing closes any remaining gap.
func isDERSignature(sig []byte) bool {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil || v.R.Sign() <= 0 || v.S.Sign() <= 0 {
		return false
	}
	again, err := asn1.Marshal(v)
	return err == nil && bytes.Equal(again, sig)
}

// NewMAC returns HMAC-SHA256 keyed with key: the one keyed MAC of nkms
// (request signatures, the convergent nonce, the cached MACs of access-key
// secrets).
func NewMAC(key []byte) hash.Hash { return hmac.New(sha256.New, key) }
