package crypto

// Keys whose private material lives in a hardware token (a PKCS#11 HSM,
// internal/hsm): the token runs every secret-key operation, and this file
// wraps it in the same Key type and the same ncpkms body layouts as software
// keys, so that a client cannot tell the two apart by behaviour.

import (
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// TokenAEAD is AES-256-GCM (12-byte nonce, 16-byte tag) computed by a token
// under a key that never leaves it. Seal returns ciphertext ‖ tag. Open
// returns an error wrapping ErrDecrypt for every failure that depends on its
// input (a tag that does not match, a short input), and another error only
// when the token itself failed (a lost session, a device error).
type TokenAEAD interface {
	Seal(nonce, plaintext, ad []byte) ([]byte, error)
	Open(nonce, ciphertext, ad []byte) ([]byte, error)
}

// TokenSigner is the private half of an RSA2048 or ECDSA key kept in a
// token. Public returns an *rsa.PublicKey (2048 bits) or an
// *ecdsa.PublicKey (P-256). An RSA2048 TokenSigner is also a
// crypto.Decrypter (RSA-OAEP, SHA-256).
type TokenSigner = gocrypto.Signer

// TokenMAC is HMAC-SHA-256 computed by a token under a key that never
// leaves it: the nonce key of a convergent AES256 key in the token.
type TokenMAC func(data []byte) ([]byte, error)

// NewTokenAESKey returns an AES256 Key whose encryption and decryption run
// in the token through t. Its bodies are exactly those of a software AES256
// key: 12-byte nonce ‖ ciphertext ‖ 16-byte tag. With nonceMAC the key is
// convergent: the nonce is the first 12 bytes of
// nonceMAC(uint32be(len(context)) ‖ context ‖ plaintext), computed in the
// token, and context is the associated data, as for a software convergent
// key (whose nonce key is derived from its material instead).
func NewTokenAESKey(t TokenAEAD, nonceMAC TokenMAC) (*Key, error) {
	if t == nil {
		return nil, errors.New("crypto: nil token AEAD")
	}
	return &Key{alg: AES256, token: t, tokenMAC: nonceMAC, convergent: nonceMAC != nil}, nil
}

// NewTokenKeyPair returns an RSA2048 or ECDSA Key whose private-key
// operations (RSA-OAEP decryption, RSASSA-PSS and ECDSA signing) run in the
// token through s (internal/hsm may remove the OAEP padding itself after
// the token's raw RSA operation, when the token cannot do OAEP-SHA-256).
// Its public-key operations (RSA-OAEP encryption, verification) use
// s.Public() with the standard library: they involve no secret and give
// the same results.
func NewTokenKeyPair(alg Algorithm, s TokenSigner) (*Key, error) {
	if s == nil {
		return nil, errors.New("crypto: nil token signer")
	}
	k := &Key{alg: alg, signer: s}
	switch alg {
	case RSA2048:
		pub, ok := s.Public().(*rsa.PublicKey)
		if !ok || pub.N.BitLen() != 2048 {
			return nil, errors.New("crypto: token key is not a 2048-bit RSA key")
		}
		d, ok := s.(gocrypto.Decrypter)
		if !ok {
			return nil, errors.New("crypto: token RSA key cannot decrypt")
		}
		k.decrypter, k.rsaPub = d, pub
		return k, k.setPublicPEM(pub)
	case ECDSA:
		pub, ok := s.Public().(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return nil, errors.New("crypto: token key is not a P-256 ECDSA key")
		}
		k.ecPub = pub
		return k, k.setPublicPEM(pub)
	default:
		return nil, unknownAlgorithm(alg)
	}
}

// InToken reports whether k's secret operations run in a hardware token.
func (k *Key) InToken() bool { return k.token != nil || k.signer != nil }

// tokenSeal encrypts with the token: a random nonce from crypto/rand (or
// for a convergent key the token's MAC of context and plaintext), then
// nonce ‖ ciphertext ‖ tag, as gcmSealRandom and gcmSeal.
func (k *Key) tokenSeal(plaintext, context []byte) ([]byte, error) {
	var nonce, ad []byte
	var err error
	if k.tokenMAC == nil {
		nonce, err = RandomBytes(gcmNonceSize)
	} else {
		nonce, err = k.tokenNonce(plaintext, context)
		ad = context
	}
	if err != nil {
		return nil, err
	}
	ct, err := k.token.Seal(nonce, plaintext, ad)
	if err != nil {
		return nil, fmt.Errorf("crypto: token encrypt: %w", err)
	}
	if len(ct) != len(plaintext)+gcmTagSize {
		return nil, errors.New("crypto: token encrypt: unexpected output length")
	}
	return append(nonce, ct...), nil
}

// tokenNonce is the convergent nonce, as convergentNonce, from the token's MAC.
func (k *Key) tokenNonce(plaintext, context []byte) ([]byte, error) {
	if uint64(len(context)) > math.MaxUint32 {
		return nil, errors.New("crypto: context too long")
	}
	data := make([]byte, 0, 4+len(context)+len(plaintext))
	data = binary.BigEndian.AppendUint32(data, uint32(len(context)))
	data = append(append(data, context...), plaintext...)
	sum, err := k.tokenMAC(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("crypto: token MAC: %w", err)
	}
	if len(sum) < gcmNonceSize {
		return nil, errors.New("crypto: token MAC: short output")
	}
	return sum[:gcmNonceSize], nil
}

// tokenOpen reverses tokenSeal. Failures that depend on body are ErrDecrypt.
func (k *Key) tokenOpen(body, context []byte) ([]byte, error) {
	if len(body) < gcmNonceSize+gcmTagSize {
		return nil, ErrDecrypt
	}
	var ad []byte
	if k.tokenMAC != nil {
		ad = context
	}
	return tokenDecrypted(k.token.Open(body[:gcmNonceSize], body[gcmNonceSize:], ad))
}

// tokenOAEPDecrypt decrypts RSA-OAEP (SHA-256, MGF1-SHA-256, no label) in
// the token. Failures that depend on body are ErrDecrypt.
func (k *Key) tokenOAEPDecrypt(body []byte) ([]byte, error) {
	if len(body) != rsaSize {
		return nil, ErrDecrypt
	}
	return tokenDecrypted(k.decrypter.Decrypt(nil, body, &rsa.OAEPOptions{Hash: gocrypto.SHA256, MGFHash: gocrypto.SHA256}))
}

// tokenDecrypted is what a decryption in the token answers: ErrDecrypt for
// every failure the token attributes to the input, any other error wrapped,
// and an empty (not nil) plaintext for an empty message.
func tokenDecrypted(pt []byte, err error) ([]byte, error) {
	if errors.Is(err, ErrDecrypt) {
		return nil, ErrDecrypt
	}
	if err != nil {
		return nil, fmt.Errorf("crypto: token decrypt: %w", err)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// tokenSign signs SHA-256(msg) in the token: RSASSA-PSS with MGF1-SHA-256
// and a 222-byte salt for RSA2048, ECDSA with a DER signature for ECDSA.
func (k *Key) tokenSign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	var opts gocrypto.SignerOpts = gocrypto.SHA256
	if k.alg == RSA2048 {
		opts = &rsa.PSSOptions{SaltLength: pssSaltSize, Hash: gocrypto.SHA256}
	}
	sig, err := k.signer.Sign(nil, digest[:], opts)
	if err != nil {
		return nil, fmt.Errorf("crypto: token sign: %w", err)
	}
	if k.alg == ECDSA && !isDERSignature(sig) {
		return nil, errors.New("crypto: token sign: not a DER ECDSA signature")
	}
	return sig, nil
}
