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
	// MaxItems bounds the plaintexts or ciphertexts of one request (an
	// array on the wire): API 3.0's batches take 1-100 items too. Each item
	// costs a fixed amount of work (an RSA operation, an allocation) however
	// short it is.
	MaxItems = 100
	// itemOverhead is what every item of an encrypt request counts against
	// the key type's plaintext limit besides its own bytes, so that empty
	// items are not free.
	itemOverhead = 1
)

// versionKey is one usable version of a key, ready for crypto.
type versionKey struct {
	key     *Key
	version int
	ck      *crypto.Key
	s       *Service // for token keys' failures (Service.tokenResult)
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
		return &versionKey{key: k, version: n, ck: ck, s: s}, nil
	}
	m, err := s.Root.Open(v.Sealed, crypto.SealAD(k.Tag, n))
	if err != nil {
		return nil, fmt.Errorf("unseal %s v%d: %w", k.Tag, n, err)
	}
	ck, err := s.loadVersion(k, n, m)
	clear(m)
	if err != nil {
		return nil, fmt.Errorf("load %s v%d: %w", k.Tag, n, err)
	}
	s.keys.put(k.Tag, n, ck)
	return &versionKey{key: k, version: n, ck: ck, s: s}, nil
}

// cryptoKey fetches one of the caller's keys and checks that its type can do
// the operation (encrypt or sign).
func (s *Service) cryptoKey(ctx context.Context, c Caller, tag Tag, sign bool) (*Key, error) {
	k, err := s.get(ctx, c, tag)
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

// Ciphertexts are what Encrypt and ReEncrypt make: one ciphertext per input,
// in order, all under one key version.
type Ciphertexts struct {
	Values  []string
	Version int
}

// Plaintexts are what Decrypt recovers. Version is the key version the
// ciphertexts named, or 0 when they named several; a failed Decrypt still
// reports it.
type Plaintexts struct {
	Values  [][]byte
	Version int
}

// checkItems bounds the items of one request: 1 to MaxItems.
func checkItems(field string, n int) error {
	if n == 0 {
		return invalid("%s is required", field)
	}
	if n > MaxItems {
		return invalid("%s may have at most %d items", field, MaxItems)
	}
	return nil
}

// Encrypt encrypts each plaintext with the current version of the key. The
// plaintexts together, each counted with a small per-item overhead, obey the
// key type's limit (decisions.md D4); there are at most MaxItems.
func (s *Service) Encrypt(ctx context.Context, c Caller, tag Tag, plaintexts [][]byte, context string) (Ciphertexts, error) {
	return call(ctx, s, c, ActEncrypt, tag, func() (Ciphertexts, error) {
		k, err := s.cryptoKey(ctx, c, tag, false)
		if err != nil {
			return Ciphertexts{}, err
		}
		if err := checkItems("plaintext", len(plaintexts)); err != nil {
			return Ciphertexts{}, err
		}
		total := 0
		for _, p := range plaintexts {
			total += len(p) + itemOverhead
		}
		if total-itemOverhead > k.Type.MaxPlaintext() {
			return Ciphertexts{}, invalid("plaintext must be at most %d bytes for %s (each further item counts %d byte)",
				k.Type.MaxPlaintext(), k.Type, itemOverhead)
		}
		aad, err := convergentContext(k, context)
		if err != nil {
			return Ciphertexts{}, err
		}
		vk, err := s.useVersion(k, 0)
		if err != nil {
			return Ciphertexts{}, err
		}
		out, err := vk.encryptAll(ctx, plaintexts, aad)
		return Ciphertexts{Values: out, Version: vk.version}, err
	})
}

// encryptAll encrypts each plaintext; it stops when ctx ends.
func (vk *versionKey) encryptAll(ctx context.Context, plaintexts [][]byte, aad []byte) ([]string, error) {
	out := make([]string, len(plaintexts))
	for i, p := range plaintexts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		body, err := vk.ck.Encrypt(p, aad)
		if err = vk.tokenResult("encrypt", err); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		out[i] = crypto.FormatCiphertext(vk.version, body)
	}
	return out, nil
}

// Decrypt decrypts each ciphertext with the version named in its prefix.
func (s *Service) Decrypt(ctx context.Context, c Caller, tag Tag, ciphertexts []string, context string) (Plaintexts, error) {
	return call(ctx, s, c, ActDecrypt, tag, func() (Plaintexts, error) {
		k, err := s.cryptoKey(ctx, c, tag, false)
		if err != nil {
			return Plaintexts{}, err
		}
		return s.decrypt(ctx, k, ciphertexts, context)
	})
}

func (s *Service) decrypt(ctx context.Context, k *Key, ciphertexts []string, context string) (Plaintexts, error) {
	if err := checkItems("ciphertext", len(ciphertexts)); err != nil {
		return Plaintexts{}, err
	}
	aad, err := convergentContext(k, context)
	if err != nil {
		return Plaintexts{}, err
	}
	versions := map[int]*versionKey{}
	out := Plaintexts{Values: make([][]byte, len(ciphertexts))}
	// The place in the Heavy pool is taken once, before the first
	// decryption, and held for the whole request (heavy.go).
	var run func(func())
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	// A failure still names the version the ciphertexts asked for (the
	// audit line's), never any plaintext.
	fail := func(err error) (Plaintexts, error) {
		for _, p := range out.Values {
			clear(p)
		}
		return Plaintexts{Version: out.Version}, err
	}
	for i, ct := range ciphertexts {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n, body, err := crypto.ParseCiphertext(ct)
		if err != nil {
			return fail(invalid("ciphertext must be ncpkms:v<version>:<Base64>"))
		}
		if (k.Type == AES256 && len(body) > maxAESBody) || (k.Type == RSA2048 && len(body) != rsaBodySize) {
			return fail(ErrDecrypt)
		}
		if i == 0 {
			out.Version = n
		} else if n != out.Version {
			out.Version = 0
		}
		vk := versions[n]
		if vk == nil {
			if vk, err = s.useVersion(k, n); err != nil {
				return fail(err)
			}
			versions[n] = vk
		}
		if release == nil {
			if run, release, err = s.heavy(ctx, k.Type); err != nil {
				return fail(err)
			}
		}
		run(func() { out.Values[i], err = vk.ck.Decrypt(body, aad) })
		if err = vk.tokenResult("decrypt", err); err != nil {
			if errors.Is(err, crypto.ErrDecrypt) {
				return fail(ErrDecrypt)
			}
			return fail(fmt.Errorf("decrypt: %w", err))
		}
	}
	return out, nil
}

// ReEncrypt decrypts each ciphertext and encrypts it again with the current
// version; Version of the answer is that current version.
func (s *Service) ReEncrypt(ctx context.Context, c Caller, tag Tag, ciphertexts []string, context string) (Ciphertexts, error) {
	return call(ctx, s, c, ActReEncrypt, tag, func() (Ciphertexts, error) {
		k, err := s.cryptoKey(ctx, c, tag, false)
		if err != nil {
			return Ciphertexts{}, err
		}
		plain, err := s.decrypt(ctx, k, ciphertexts, context)
		if err != nil {
			return Ciphertexts{}, err
		}
		defer func() {
			for _, p := range plain.Values {
				clear(p)
			}
		}()
		aad, _ := convergentContext(k, context) // validated by decrypt
		vk, err := s.useVersion(k, 0)
		if err != nil {
			return Ciphertexts{}, err
		}
		out, err := vk.encryptAll(ctx, plain.Values, aad)
		return Ciphertexts{Values: out, Version: vk.version}, err
	})
}

// CustomKey is a data key made by Create Custom Key.
type CustomKey struct {
	Ciphertext string
	Plaintext  []byte // only when requested
	Version    int
}

// CreateCustomKey generates bits of random key material and returns it
// encrypted under the current version (and in plain when requestPlain).
func (s *Service) CreateCustomKey(ctx context.Context, c Caller, tag Tag, bits int, requestPlain bool, context string) (*CustomKey, error) {
	return call(ctx, s, c, ActCreateCustomKey, tag, func() (*CustomKey, error) {
		k, err := s.cryptoKey(ctx, c, tag, false)
		if err != nil {
			return nil, err
		}
		if bits == 0 {
			bits = DefaultKeyBits
		}
		if bits != 128 && bits != 256 && bits != 512 {
			return nil, invalid("bits must be 128, 256 or 512")
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
		cts, err := vk.encryptAll(ctx, [][]byte{material}, aad)
		if err != nil {
			clear(material)
			return nil, err
		}
		out := &CustomKey{Ciphertext: cts[0], Version: vk.version}
		if requestPlain {
			out.Plaintext = material
		} else {
			clear(material)
		}
		return out, nil
	})
}

// Signature is what Sign makes: "ncpkms:v<N>:<Base64>" and that N.
type Signature struct {
	Value   string
	Version int
}

// Sign signs msg with the current version of an RSA2048 or ECDSA key.
func (s *Service) Sign(ctx context.Context, c Caller, tag Tag, msg []byte) (Signature, error) {
	return call(ctx, s, c, ActSign, tag, func() (Signature, error) {
		k, err := s.cryptoKey(ctx, c, tag, true)
		if err != nil {
			return Signature{}, err
		}
		if len(msg) > MaxSignData {
			return Signature{}, invalid("data must be at most %d bytes", MaxSignData)
		}
		vk, err := s.useVersion(k, 0)
		if err != nil {
			return Signature{}, err
		}
		run, release, err := s.heavy(ctx, k.Type)
		if err != nil {
			return Signature{}, err
		}
		var sig []byte
		run(func() { sig, err = vk.ck.Sign(msg) })
		release()
		if err = vk.tokenResult("sign", err); err != nil {
			return Signature{}, fmt.Errorf("sign: %w", err)
		}
		return Signature{Value: crypto.FormatCiphertext(vk.version, sig), Version: vk.version}, nil
	})
}

// Verification is the answer of Verify: whether the signature matches, and
// the key version it named.
type Verification struct {
	Valid   bool
	Version int
}

// Verify checks a signature made by Sign with the version named in its prefix.
// A well-formed signature that does not match is Valid false, not an error.
func (s *Service) Verify(ctx context.Context, c Caller, tag Tag, msg []byte, signature string) (Verification, error) {
	return call(ctx, s, c, ActVerify, tag, func() (Verification, error) {
		k, err := s.cryptoKey(ctx, c, tag, true)
		if err != nil {
			return Verification{}, err
		}
		if len(msg) > MaxSignData {
			return Verification{}, invalid("data must be at most %d bytes", MaxSignData)
		}
		n, sig, err := crypto.ParseCiphertext(signature)
		if err != nil {
			return Verification{}, invalid("signature must be ncpkms:v<version>:<Base64>")
		}
		vk, err := s.useVersion(k, n)
		if err != nil {
			return Verification{}, err
		}
		ok, err := vk.ck.Verify(msg, sig)
		if errors.Is(err, crypto.ErrMalformedSignature) {
			return Verification{}, invalid("signature is not a valid %s signature", k.Type)
		}
		if err != nil {
			return Verification{}, fmt.Errorf("verify: %w", err)
		}
		return Verification{Valid: ok, Version: n}, nil
	})
}

// PublicKey is a version's public key in PEM (SPKI).
type PublicKey struct {
	PEM     string
	Version int
}

// PublicKey returns the PEM public key of version n (0: current) of an RSA2048 or ECDSA key.
func (s *Service) PublicKey(ctx context.Context, c Caller, tag Tag, n int) (PublicKey, error) {
	return call(ctx, s, c, ActGetPublicKey, tag, func() (PublicKey, error) {
		k, err := s.cryptoKey(ctx, c, tag, true)
		if err != nil {
			return PublicKey{}, err
		}
		if n < 0 {
			return PublicKey{}, invalid("keyVersion must be a positive integer")
		}
		vk, err := s.useVersion(k, n)
		if err != nil {
			return PublicKey{}, err
		}
		pem, err := vk.ck.PublicKeyPEM()
		if err != nil {
			return PublicKey{}, fmt.Errorf("public key: %w", err)
		}
		return PublicKey{PEM: pem, Version: vk.version}, nil
	})
}
