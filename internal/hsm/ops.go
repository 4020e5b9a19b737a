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
type tokenGCM struct {
	aead cipher.AEAD
	t    *Token // its gate
}

func (g tokenGCM) Seal(nonce, plaintext, ad []byte) (out []byte, err error) {
	defer g.t.shared()()
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
	defer g.t.shared()()
	pt, err := g.aead.Open(nil, nonce, ciphertext, ad)
	if err != nil {
		return nil, crypto.ErrDecrypt
	}
	return pt, nil
}

// tokenHMAC is CKM_SHA256_HMAC under the HMAC key h, one single-part
// C_Sign per call on the raw session pool. Not crypto11's HMAC: that signs
// in parts (C_SignUpdate, C_SignFinal), and opencryptoki 3.8.1's software
// token crashes the process in C_SignFinal of CKM_SHA256_HMAC; a nonce's
// input is in memory whole anyway, and the MAC is the same either way.
func (t *Token) tokenHMAC(h pkcs11.ObjectHandle) crypto.TokenMAC {
	return func(data []byte) ([]byte, error) {
		var sum []byte
		err := t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
			if err := ctx.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_SHA256_HMAC, nil)}, h); err != nil {
				return fmt.Errorf("hsm: C_SignInit (CKM_SHA256_HMAC): %w", err)
			}
			var err error
			if sum, err = ctx.Sign(sh, data); err != nil {
				return fmt.Errorf("hsm: C_Sign (CKM_SHA256_HMAC): %w", err)
			}
			return nil
		})
		return sum, err
	}
}

// tokenSigner is a crypto11 ECDSA key pair as a crypto.TokenSigner. (An
// RSA2048 pair is a tokenRSA, which also decrypts.)
type tokenSigner struct {
	kp crypto11.Signer
	t  *Token // its gate
}

func (s tokenSigner) Public() gocrypto.PublicKey { return s.kp.Public() }

func (s tokenSigner) Sign(rand io.Reader, digest []byte, opts gocrypto.SignerOpts) ([]byte, error) {
	defer s.t.shared()()
	return s.kp.Sign(rand, digest, opts)
}
