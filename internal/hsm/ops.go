//go:build cgo && !noetcd

package hsm

import (
	gocrypto "crypto"
	"crypto/cipher"
	"fmt"
	"io"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
)

// tokenGCM is crypto11's CKM_AES_GCM as a crypto.TokenAEAD. crypto11's
// Seal panics when the token fails (cipher.AEAD has no error result); the
// panic becomes an error here.
type tokenGCM struct{ aead cipher.AEAD }

func (g tokenGCM) Seal(nonce, plaintext, ad []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("hsm: C_Encrypt (CKM_AES_GCM): %v", r)
		}
	}()
	return g.aead.Seal(nil, nonce, plaintext, ad), nil
}

// Open decrypts in the token. Every failure is crypto.ErrDecrypt: PKCS#11
// modules report a tag that does not match in different ways (SoftHSM2:
// CKR_ENCRYPTED_DATA_INVALID; others CKR_GENERAL_ERROR), and crypto11
// flattens the code into text, so no failure is told apart from a bad
// ciphertext — as decisions.md D3 wants of every decryption failure.
func (g tokenGCM) Open(nonce, ciphertext, ad []byte) ([]byte, error) {
	pt, err := g.aead.Open(nil, nonce, ciphertext, ad)
	if err != nil {
		return nil, crypto.ErrDecrypt
	}
	return pt, nil
}

// tokenHMAC is CKM_SHA256_HMAC under key, one operation per call. crypto11's
// Sum panics when the token fails; the panic becomes an error here.
func tokenHMAC(key *crypto11.SecretKey) crypto.TokenMAC {
	return func(data []byte) (sum []byte, err error) {
		defer func() {
			if r := recover(); r != nil {
				sum, err = nil, fmt.Errorf("hsm: C_SignFinal (CKM_SHA256_HMAC): %v", r)
			}
		}()
		h, err := key.NewHMAC(pkcs11.CKM_SHA256_HMAC, 0)
		if err != nil {
			return nil, fmt.Errorf("hsm: C_SignInit (CKM_SHA256_HMAC): %w", err)
		}
		if _, err := h.Write(data); err != nil {
			return nil, fmt.Errorf("hsm: C_SignUpdate (CKM_SHA256_HMAC): %w", err)
		}
		return h.Sum(nil), nil
	}
}

// tokenSigner is a crypto11 ECDSA key pair as a crypto.TokenSigner. (An
// RSA2048 pair is a tokenRSA, which also decrypts.)
type tokenSigner struct{ kp crypto11.Signer }

func (s tokenSigner) Public() gocrypto.PublicKey { return s.kp.Public() }

func (s tokenSigner) Sign(rand io.Reader, digest []byte, opts gocrypto.SignerOpts) ([]byte, error) {
	return s.kp.Sign(rand, digest, opts)
}
