package crypto

import (
	gocrypto "crypto"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
)

const convergentNonceInfo = "nkms convergent nonce v1" // HKDF info for the convergent nonce key

var errInvalidKeySize = errors.New("crypto: AES256 material must be 32 bytes")

// GenerateMaterial returns fresh key material for a new key version:
// 32 random bytes for AES256, the PKCS#8 DER of a fresh 2048-bit RSA key for
// RSA2048, and the PKCS#8 DER of a fresh P-256 key for ECDSA.
func GenerateMaterial(alg Algorithm) ([]byte, error) {
	switch alg {
	case AES256:
		return RandomBytes(32)
	case RSA2048:
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("crypto: generating RSA2048 key: %w", err)
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	case ECDSA:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("crypto: generating ECDSA key: %w", err)
		}
		return x509.MarshalPKCS8PrivateKey(priv)
	default:
		return nil, unknownAlgorithm(alg)
	}
}

func unknownAlgorithm(alg Algorithm) error {
	return fmt.Errorf("crypto: unknown algorithm %q: %w", alg, ErrUnsupported)
}

// Key is one key version's material, parsed once and ready to use. It is safe
// for concurrent use. Every secret field is behind a pointer, so that even
// printing a Key value with fmt shows addresses, never key bytes.
type Key struct {
	alg        Algorithm
	convergent bool
	aead       cipher.AEAD       // AES256
	nonceKey   *[32]byte         // convergent AES256: HMAC key for the nonce
	rsa        *rsa.PrivateKey   // RSA2048
	ec         *ecdsa.PrivateKey // ECDSA
	publicPEM  string            // RSA2048 and ECDSA

	// A key in a hardware token (token.go) has no private material here:
	// token (AES256) or signer (RSA2048, ECDSA; decrypter for RSA2048) run
	// its secret operations, and rsaPub / ecPub its public ones. Software
	// keys set rsaPub and ecPub too.
	token     TokenAEAD
	tokenMAC  TokenMAC // convergent token AES256: the nonce key's HMAC
	signer    TokenSigner
	decrypter gocrypto.Decrypter
	rsaPub    *rsa.PublicKey
	ecPub     *ecdsa.PublicKey
}

// LoadKey parses material produced by GenerateMaterial for alg. convergent
// selects deterministic encryption and is allowed only for AES256. The
// material is not retained: the Key keeps only what it derives from it.
func LoadKey(alg Algorithm, convergent bool, material []byte) (*Key, error) {
	if convergent && alg != AES256 {
		return nil, fmt.Errorf("crypto: convergent %s keys: %w", alg, ErrUnsupported)
	}
	k := &Key{alg: alg, convergent: convergent}
	switch alg {
	case AES256:
		aead, err := newGCM(material)
		if err != nil {
			return nil, err
		}
		k.aead = aead
		if convergent {
			nk, err := hkdf.Key(sha256.New, material, nil, convergentNonceInfo, 32)
			if err != nil {
				return nil, fmt.Errorf("crypto: deriving the convergent nonce key: %w", err)
			}
			k.nonceKey = (*[32]byte)(nk)
		}
		return k, nil
	case RSA2048:
		priv, err := x509.ParsePKCS8PrivateKey(material)
		rk, ok := priv.(*rsa.PrivateKey)
		if err != nil || !ok || rk.N.BitLen() != 2048 {
			return nil, errors.New("crypto: RSA2048 material is not a PKCS#8 2048-bit RSA private key")
		}
		k.rsa, k.rsaPub = rk, &rk.PublicKey
		return k, k.setPublicPEM(&rk.PublicKey)
	case ECDSA:
		priv, err := x509.ParsePKCS8PrivateKey(material)
		ek, ok := priv.(*ecdsa.PrivateKey)
		if err != nil || !ok || ek.Curve != elliptic.P256() {
			return nil, errors.New("crypto: ECDSA material is not a PKCS#8 P-256 private key")
		}
		k.ec, k.ecPub = ek, &ek.PublicKey
		return k, k.setPublicPEM(&ek.PublicKey)
	default:
		return nil, unknownAlgorithm(alg)
	}
}

func (k *Key) setPublicPEM(pub any) error {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("crypto: encoding the %s public key: %w", k.alg, err)
	}
	k.publicPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return nil
}

// Encrypt encrypts plaintext and returns the body of an ncpkms value.
//
//   - AES256: AES-256-GCM; body = 12-byte nonce ‖ ciphertext ‖ 16-byte tag.
//     Non-convergent keys use a random nonce and ignore context. Convergent
//     keys use context as associated data and derive the nonce from the key,
//     context and plaintext, so equal inputs give equal bodies.
//   - RSA2048: RSA-OAEP with SHA-256 and MGF1-SHA-256, no label; body is 256
//     bytes; context is ignored. Plaintexts longer than RSAMaxPlaintext give
//     ErrPlaintextTooLong.
//   - ECDSA: ErrUnsupported.
func (k *Key) Encrypt(plaintext, context []byte) ([]byte, error) {
	switch k.alg {
	case AES256:
		if k.token != nil {
			return k.tokenSeal(plaintext, context)
		}
		if !k.convergent {
			return gcmSealRandom(k.aead, plaintext, nil)
		}
		nonce, err := k.convergentNonce(plaintext, context)
		if err != nil {
			return nil, err
		}
		return gcmSeal(k.aead, nonce, plaintext, context), nil
	case RSA2048:
		return oaepEncrypt(k.rsaPub, plaintext)
	default:
		return nil, ErrUnsupported
	}
}

// convergentNonce returns the first 12 bytes of
// HMAC-SHA256(nonceKey, uint32be(len(context)) ‖ context ‖ plaintext).
func (k *Key) convergentNonce(plaintext, context []byte) ([]byte, error) {
	if uint64(len(context)) > math.MaxUint32 {
		return nil, errors.New("crypto: context too long")
	}
	mac := NewMAC(k.nonceKey[:])
	mac.Write(binary.BigEndian.AppendUint32(nil, uint32(len(context))))
	mac.Write(context)
	mac.Write(plaintext)
	return mac.Sum(nil)[:gcmNonceSize], nil
}

// Decrypt reverses Encrypt. context must be the one given to Encrypt for a
// convergent key and is ignored otherwise. Every failure — short, truncated or
// tampered body, wrong key or wrong context — is ErrDecrypt. ECDSA keys give
// ErrUnsupported.
func (k *Key) Decrypt(body, context []byte) ([]byte, error) {
	switch k.alg {
	case AES256:
		if k.token != nil {
			return k.tokenOpen(body, context)
		}
		var ad []byte
		if k.convergent {
			ad = context
		}
		return gcmOpen(k.aead, body, ad)
	case RSA2048:
		if k.decrypter != nil {
			return k.tokenOAEPDecrypt(body)
		}
		return oaepDecrypt(k.rsa, body, nil)
	default:
		return nil, ErrUnsupported
	}
}

// Sign signs msg, which it hashes with SHA-256 itself. RSA2048 keys produce a
// 256-byte RSASSA-PSS signature (MGF1-SHA-256, 222-byte salt); ECDSA keys
// produce an ASN.1 DER ECDSA-Sig-Value over P-256. AES256 keys give
// ErrUnsupported.
func (k *Key) Sign(msg []byte) ([]byte, error) {
	if k.signer != nil && (k.alg == RSA2048 || k.alg == ECDSA) {
		return k.tokenSign(msg)
	}
	switch k.alg {
	case RSA2048:
		return pssSign(k.rsa, msg, pssSaltSize)
	case ECDSA:
		return ecdsaSign(k.ec, msg)
	default:
		return nil, ErrUnsupported
	}
}

// Verify reports whether sig is a valid signature of msg by this key.
// A well-formed signature that does not match gives (false, nil). For RSA2048
// every signature is well formed (one of the wrong length simply does not
// verify); for ECDSA a sig that is not a strict DER ECDSA-Sig-Value gives
// (false, ErrMalformedSignature). AES256 keys give ErrUnsupported.
func (k *Key) Verify(msg, sig []byte) (bool, error) {
	switch k.alg {
	case RSA2048:
		return pssVerify(k.rsaPub, msg, sig, pssSaltSize), nil
	case ECDSA:
		return ecdsaVerifyDER(k.ecPub, msg, sig)
	default:
		return false, ErrUnsupported
	}
}

// PublicKeyPEM returns the public key as a PEM "PUBLIC KEY" block (PKIX,
// SubjectPublicKeyInfo). AES256 keys give ErrUnsupported.
func (k *Key) PublicKeyPEM() (string, error) {
	if k.publicPEM == "" {
		return "", ErrUnsupported
	}
	return k.publicPEM, nil
}

// Algorithm returns the key's type.
func (k *Key) Algorithm() Algorithm { return k.alg }

// String describes the key, for example "crypto.Key(RSA2048)", never its bytes.
func (k *Key) String() string {
	switch {
	case k == nil:
		return "crypto.Key(nil)"
	case k.convergent:
		return "crypto.Key(" + string(k.alg) + ", convergent)"
	default:
		return "crypto.Key(" + string(k.alg) + ")"
	}
}

// GoString is String, so that %#v does not print key internals either.
func (k *Key) GoString() string { return k.String() }
