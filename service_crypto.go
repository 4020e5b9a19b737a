package nkms

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/nkms/nkms/internal/crypto"
)

// Limits of the crypto operations (decisions.md D4, D5).
const (
	MaxContext     = 50
	MaxSignData    = 8192
	maxAESBody     = 32*1024 + 12 + 16
	rsaBodySize    = 256
	DefaultKeyBits = 256
)

// versionKey is one usable version of a key, ready for crypto.
type versionKey struct {
	key     *Key
	version int
	ck      *crypto.Key
}

// useVersion returns version n (0: current) of one of the caller's keys for
// a crypto operation, after the state checks of D6 on the key as read for
// this request; the unsealed version itself may come from the key cache.
func (s *Service) useVersion(k *Key, n int) (*versionKey, error) {
	if n == 0 {
		n = k.Current()
	}
	v, err := k.CryptoVersion(n)
	if err != nil {
		return nil, err
	}
	if ck := s.keys.get(k.Tag, n); ck != nil {
		return &versionKey{key: k, version: n, ck: ck}, nil
	}
	m, err := s.Root.Open(v.Sealed, crypto.SealAD(k.Tag, n))
	if err != nil {
		return nil, fmt.Errorf("unseal %s v%d: %w", k.Tag, n, err)
	}
	ck, err := crypto.LoadKey(crypto.Algorithm(k.Type), k.Convergent, m)
	clear(m)
	if err != nil {
		return nil, fmt.Errorf("load %s v%d: %w", k.Tag, n, err)
	}
	s.keys.put(k.Tag, n, ck)
	return &versionKey{key: k, version: n, ck: ck}, nil
}

// cryptoKey fetches one of the caller's keys and checks that its type can do
// the operation (encrypt or sign).
func (s *Service) cryptoKey(ctx context.Context, c Caller, tag string, sign bool) (*Key, error) {
	k, err := s.GetKey(ctx, c, tag)
	if err != nil {
		return nil, err
	}
	if sign && !k.Type.CanSign() {
		return nil, invalid("%s keys cannot sign or verify", k.Type)
	}
	if !sign && !k.Type.CanEncrypt() {
		return nil, invalid("%s keys cannot encrypt or decrypt", k.Type)
	}
	return k, nil
}

// convergentContext decodes the Base64 context of a convergent key, where it
// is required; for other keys the context is ignored (D5).
func convergentContext(k *Key, context string) ([]byte, error) {
	if !k.Convergent {
		return nil, nil
	}
	if context == "" {
		return nil, invalid("context is required for a convergent key")
	}
	b, err := DecodeBase64("context", context)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxContext {
		return nil, invalid("context must be at most %d bytes", MaxContext)
	}
	return b, nil
}

// DecodeBase64 decodes standard padded Base64 or returns an Invalid error naming field.
func DecodeBase64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, invalid("%s must be standard Base64", field)
	}
	return b, nil
}

// Encrypt encrypts each plaintext with the current version of the key.
func (s *Service) Encrypt(ctx context.Context, c Caller, tag string, plaintexts [][]byte, context string) ([]string, error) {
	k, err := s.cryptoKey(ctx, c, tag, false)
	if err != nil {
		return nil, err
	}
	if len(plaintexts) == 0 {
		return nil, invalid("plaintext is required")
	}
	total := 0
	for _, p := range plaintexts {
		total += len(p)
	}
	if total > k.Type.MaxPlaintext() {
		return nil, invalid("plaintext must be at most %d bytes for %s", k.Type.MaxPlaintext(), k.Type)
	}
	aad, err := convergentContext(k, context)
	if err != nil {
		return nil, err
	}
	vk, err := s.useVersion(k, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(plaintexts))
	for i, p := range plaintexts {
		if out[i], err = vk.encrypt(p, aad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (vk *versionKey) encrypt(p, aad []byte) (string, error) {
	body, err := vk.ck.Encrypt(p, aad)
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return crypto.FormatCiphertext(vk.version, body), nil
}

// Decrypt decrypts each ciphertext with the version named in its prefix.
func (s *Service) Decrypt(ctx context.Context, c Caller, tag string, ciphertexts []string, context string) ([][]byte, error) {
	k, err := s.cryptoKey(ctx, c, tag, false)
	if err != nil {
		return nil, err
	}
	return s.decrypt(k, ciphertexts, context)
}

func (s *Service) decrypt(k *Key, ciphertexts []string, context string) ([][]byte, error) {
	if len(ciphertexts) == 0 {
		return nil, invalid("ciphertext is required")
	}
	aad, err := convergentContext(k, context)
	if err != nil {
		return nil, err
	}
	versions := map[int]*versionKey{}
	out := make([][]byte, len(ciphertexts))
	for i, ct := range ciphertexts {
		n, body, err := crypto.ParseCiphertext(ct)
		if err != nil {
			return nil, invalid("ciphertext must be ncpkms:v<version>:<Base64>")
		}
		if (k.Type == AES256 && len(body) > maxAESBody) || (k.Type == RSA2048 && len(body) != rsaBodySize) {
			return nil, ErrDecrypt
		}
		vk := versions[n]
		if vk == nil {
			if vk, err = s.useVersion(k, n); err != nil {
				return nil, err
			}
			versions[n] = vk
		}
		if out[i], err = vk.ck.Decrypt(body, aad); err != nil {
			if errors.Is(err, crypto.ErrDecrypt) {
				return nil, ErrDecrypt
			}
			return nil, fmt.Errorf("decrypt: %w", err)
		}
	}
	return out, nil
}

// ReEncrypt decrypts each ciphertext and encrypts it again with the current version.
func (s *Service) ReEncrypt(ctx context.Context, c Caller, tag string, ciphertexts []string, context string) ([]string, error) {
	k, err := s.cryptoKey(ctx, c, tag, false)
	if err != nil {
		return nil, err
	}
	plain, err := s.decrypt(k, ciphertexts, context)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range plain {
			clear(p)
		}
	}()
	aad, _ := convergentContext(k, context) // validated by decrypt
	vk, err := s.useVersion(k, 0)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(plain))
	for i, p := range plain {
		if out[i], err = vk.encrypt(p, aad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CustomKey is a data key made by Create Custom Key.
type CustomKey struct {
	Ciphertext string
	Plaintext  []byte // only when requested
	Version    int
}

// CreateCustomKey generates bits of random key material and returns it
// encrypted under the current version (and in plain when requestPlain).
func (s *Service) CreateCustomKey(ctx context.Context, c Caller, tag string, bits int, requestPlain bool, context string) (*CustomKey, error) {
	if bits == 0 {
		bits = DefaultKeyBits
	}
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, invalid("bits must be 128, 256 or 512")
	}
	k, err := s.cryptoKey(ctx, c, tag, false)
	if err != nil {
		return nil, err
	}
	aad, err := convergentContext(k, context)
	if err != nil {
		return nil, err
	}
	vk, err := s.useVersion(k, 0)
	if err != nil {
		return nil, err
	}
	material, err := crypto.RandomBytes(bits / 8)
	if err != nil {
		return nil, err
	}
	ct, err := vk.encrypt(material, aad)
	if err != nil {
		return nil, err
	}
	out := &CustomKey{Ciphertext: ct, Version: vk.version}
	if requestPlain {
		out.Plaintext = material
	} else {
		clear(material)
	}
	return out, nil
}

// Sign signs msg with the current version of an RSA2048 or ECDSA key.
func (s *Service) Sign(ctx context.Context, c Caller, tag string, msg []byte) (string, error) {
	if len(msg) > MaxSignData {
		return "", invalid("data must be at most %d bytes", MaxSignData)
	}
	k, err := s.cryptoKey(ctx, c, tag, true)
	if err != nil {
		return "", err
	}
	vk, err := s.useVersion(k, 0)
	if err != nil {
		return "", err
	}
	sig, err := vk.ck.Sign(msg)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return crypto.FormatCiphertext(vk.version, sig), nil
}

// Verify checks a signature made by Sign with the version named in its prefix.
// A well-formed signature that does not match is (false, nil).
func (s *Service) Verify(ctx context.Context, c Caller, tag string, msg []byte, signature string) (bool, error) {
	if len(msg) > MaxSignData {
		return false, invalid("data must be at most %d bytes", MaxSignData)
	}
	k, err := s.cryptoKey(ctx, c, tag, true)
	if err != nil {
		return false, err
	}
	n, sig, err := crypto.ParseCiphertext(signature)
	if err != nil {
		return false, invalid("signature must be ncpkms:v<version>:<Base64>")
	}
	vk, err := s.useVersion(k, n)
	if err != nil {
		return false, err
	}
	ok, err := vk.ck.Verify(msg, sig)
	if errors.Is(err, crypto.ErrMalformedSignature) {
		return false, invalid("signature is not a valid %s signature", k.Type)
	}
	if err != nil {
		return false, fmt.Errorf("verify: %w", err)
	}
	return ok, nil
}

// PublicKey returns the PEM public key of version n (0: current) of an RSA2048 or ECDSA key.
func (s *Service) PublicKey(ctx context.Context, c Caller, tag string, n int) (string, error) {
	if n < 0 {
		return "", invalid("keyVersion must be a positive integer")
	}
	k, err := s.cryptoKey(ctx, c, tag, true)
	if err != nil {
		return "", err
	}
	vk, err := s.useVersion(k, n)
	if err != nil {
		return "", err
	}
	pem, err := vk.ck.PublicKeyPEM()
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	return pem, nil
}
