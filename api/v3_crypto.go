package api

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/nkms/nkms"
)

// API 3.0 crypto (ncp-kms-api-v3.md §3.6, decisions.md D9): the same
// operations as 2.0 on the same keys, ciphertexts and signatures, with bare
// bodies, strings only on single calls, and all-or-nothing batches
// (v3_batch.go). Each operation has an account route and an access-token
// route under /kms/v3/token/keys/.

// batchBody is the body limit of a batch: 100 items of a few KiB each. The
// work stays bounded by the items (at most nkms.MaxItems, each within the
// key type's limit), as on 2.0.
const batchBody = 1 << 20

// v3CryptoRoutes returns the API 3.0 routes of this file's operations.
func (s *Server) v3CryptoRoutes() []route {
	ops := []struct {
		method, path string
		limit        int64
		handle       handlerFunc
	}{
		{"POST", "encrypt", cryptoBody, s.encryptV3},
		{"POST", "decrypt", cryptoBody, s.decryptV3},
		{"POST", "re-encrypt", cryptoBody, s.reEncryptV3},
		{"POST", "batch-encrypt", batchBody, s.batchEncryptV3},
		{"POST", "batch-decrypt", batchBody, s.batchDecryptV3},
		{"POST", "batch-re-encrypt", batchBody, s.batchReEncryptV3},
		{"POST", "sign", cryptoBody, s.signV3},
		{"POST", "verify", cryptoBody, s.verifyV3},
		{"POST", "issue-custom-key", smallBody, s.customKeyV3},
		{"GET", "versions/{version}/public-key", smallBody, s.publicKeyV3},
	}
	var rs []route
	for _, prefix := range []struct {
		path string
		auth authKind
	}{{"/kms/v3/keys/{keyTag}/", authAccount}, {"/kms/v3/token/keys/{keyTag}/", authToken}} {
		for _, op := range ops {
			rs = append(rs, route{op.method, prefix.path + op.path, prefix.auth, op.limit, op.handle, v3OK})
		}
	}
	return rs
}

// Request and answer bodies (D9).

type v3EncryptRequest struct {
	Plaintext string `json:"plaintext"`
	Context   string `json:"context"`
}

type v3CiphertextRequest struct {
	Ciphertext string `json:"ciphertext"`
	Context    string `json:"context"`
}

type v3SignRequest struct {
	Data string `json:"data"`
}

type v3VerifyRequest struct {
	Data      string `json:"data"`
	Signature string `json:"signature"`
}

type v3CustomKeyRequest struct {
	RequestPlainKey bool    `json:"requestPlainKey"`
	Bits            bitsInt `json:"bits"`
	Context         string  `json:"context"`
}

// bitsInt is the strict integer "bits" of issue-custom-key.
type bitsInt struct{ strictInt }

func (b *bitsInt) UnmarshalJSON(data []byte) error {
	if err := b.strictInt.UnmarshalJSON(data); err != nil {
		return &fieldError{"bits", "bits must be 128, 256 or 512, written as a JSON integer"}
	}
	return nil
}

type v3Ciphertext struct {
	Ciphertext string `json:"ciphertext"`
}

type v3Plaintext struct {
	Plaintext string `json:"plaintext"`
}

type v3Signature struct {
	Signature string `json:"signature"`
}

type v3Valid struct {
	Valid bool `json:"valid"`
}

type v3CustomKey struct {
	Ciphertext string `json:"ciphertext"`
	Plaintext  string `json:"plaintext,omitempty"`
	Version    int    `json:"version"`
}

type v3PublicKey struct {
	Version   int    `json:"version"`
	PublicKey string `json:"publicKey"`
}

// isBase64V3 reports whether s matches the Base64 pattern of the 3.0 pages
// (^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2}==)$:
// standard alphabet, padded, not empty), without a regexp's cost on the
// batch path; FuzzV3Patterns checks it against the regexp.
func isBase64V3(s string) bool {
	if len(s) == 0 || len(s)%4 != 0 {
		return false
	}
	end := len(s)
	if s[end-1] == '=' {
		end--
		if s[end-1] == '=' {
			end--
		}
	}
	for i := 0; i < end; i++ {
		if !isBase64Char(s[i]) {
			return false
		}
	}
	return true
}

func isBase64Char(c byte) bool { return base64Chars[c] }

// base64Chars marks the bytes of the standard Base64 alphabet.
var base64Chars = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// isCipherV3 reports whether s matches the pattern of a ciphertext or
// signature field, ^ncpkms:v[1-9][0-9]{0,8}:<Base64 pattern>$
// (ncp-kms-api-v3.md §3.6.7).
func isCipherV3(s string) bool {
	const prefix = "ncpkms:v"
	if len(s) < len(prefix)+2 || s[:len(prefix)] != prefix || s[len(prefix)] < '1' || s[len(prefix)] > '9' {
		return false
	}
	i := len(prefix) + 1
	for i < len(s) && i < len(prefix)+9 && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	return i < len(s) && s[i] == ':' && isBase64V3(s[i+1:])
}

// required refuses an empty required string field.
func required(field, v string) error {
	if v == "" {
		return nkms.FieldErrorf(field, "%s is required", field)
	}
	return nil
}

// plaintextV3 checks and decodes a Base64 plaintext field.
func plaintextV3(field, v string) ([]byte, error) {
	if err := required(field, v); err != nil {
		return nil, err
	}
	if !isBase64V3(v) {
		return nil, nkms.FieldErrorf(field, "%s must be standard Base64", field)
	}
	return nkms.DecodeBase64(field, v)
}

// cipherTextV3 checks the format of a ciphertext or signature field.
func cipherTextV3(field, v string) error {
	if err := required(field, v); err != nil {
		return err
	}
	if !isCipherV3(v) {
		return nkms.FieldErrorf(field, "%s must be ncpkms:v<version>:<Base64>", field)
	}
	return nil
}

// noVersionOracle answers a ciphertext that names a version the key does not
// have as any other decryption failure (D9).
func noVersionOracle(err error) error {
	if errors.Is(err, nkms.ErrVersionNotFound) {
		return nkms.ErrDecrypt
	}
	return err
}

func (s *Server) encryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3EncryptRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	plain, err := plaintextV3("plaintext", req.Plaintext)
	if err != nil {
		return result{}, err
	}
	cts, err := s.svc.Encrypt(ctx, c, rq.tag, [][]byte{plain}, req.Context)
	clear(plain)
	if err != nil {
		return result{}, err
	}
	return result{version: cts.Version, data: v3Ciphertext{Ciphertext: cts.Values[0]}}, nil
}

func (s *Server) decryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3CiphertextRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	if err := cipherTextV3("ciphertext", req.Ciphertext); err != nil {
		return result{}, err
	}
	plain, err := s.svc.Decrypt(ctx, c, rq.tag, []string{req.Ciphertext}, req.Context)
	if err != nil {
		return result{version: plain.Version}, noVersionOracle(err)
	}
	out := base64.StdEncoding.EncodeToString(plain.Values[0])
	clear(plain.Values[0])
	return result{version: plain.Version, data: v3Plaintext{Plaintext: out}}, nil
}

func (s *Server) reEncryptV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3CiphertextRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	if err := cipherTextV3("ciphertext", req.Ciphertext); err != nil {
		return result{}, err
	}
	cts, err := s.svc.ReEncrypt(ctx, c, rq.tag, []string{req.Ciphertext}, req.Context)
	if err != nil {
		return result{}, noVersionOracle(err)
	}
	return result{version: cts.Version, data: v3Ciphertext{Ciphertext: cts.Values[0]}}, nil
}

func (s *Server) signV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3SignRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	msg, err := plaintextV3("data", req.Data)
	if err != nil {
		return result{}, err
	}
	sig, err := s.svc.Sign(ctx, c, rq.tag, msg)
	if err != nil {
		return result{}, err
	}
	return result{version: sig.Version, data: v3Signature{Signature: sig.Value}}, nil
}

// verifyV3: a signature whose field matches the documented pattern but names
// a version the key does not have is 404 (D9), whatever its bytes; only then
// are the signature's bytes looked at (an ECDSA signature that is not DER is
// 400, an RSA one of the wrong length is valid false).
func (s *Server) verifyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3VerifyRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	msg, err := plaintextV3("data", req.Data)
	if err != nil {
		return result{}, err
	}
	if err := cipherTextV3("signature", req.Signature); err != nil {
		return result{}, err
	}
	v, err := s.svc.Verify(ctx, c, rq.tag, msg, req.Signature)
	if err != nil {
		return result{version: v.Version}, err
	}
	return result{version: v.Version, data: v3Valid{Valid: v.Valid}}, nil
}

// customKeyV3: the body may be omitted (256 bits, no plaintext); a
// convergent key needs one with its context.
func (s *Server) customKeyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req v3CustomKeyRequest
	if err := decodeV3(rq, &req, false); err != nil {
		return result{}, err
	}
	bits := nkms.DefaultKeyBits
	if req.Bits.Set {
		bits = req.Bits.Value
		if bits != 128 && bits != 256 && bits != 512 {
			return result{}, nkms.FieldErrorf("bits", "bits must be 128, 256 or 512")
		}
	}
	ck, err := s.svc.CreateCustomKey(ctx, c, rq.tag, bits, req.RequestPlainKey, req.Context)
	if err != nil {
		return result{}, err
	}
	out := v3CustomKey{Ciphertext: ck.Ciphertext, Version: ck.Version}
	if ck.Plaintext != nil {
		out.Plaintext = base64.StdEncoding.EncodeToString(ck.Plaintext)
		clear(ck.Plaintext)
	}
	return result{version: ck.Version, data: out}, nil
}

// publicKeyV3 answers the PEM public key of the version in the path; a
// version the key does not have is 404.
func (s *Server) publicKeyV3(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	pub, err := s.svc.PublicKey(ctx, c, rq.tag, rq.version)
	if err != nil {
		return result{}, err
	}
	return result{version: pub.Version, data: v3PublicKey{Version: pub.Version, PublicKey: pub.PEM}}, nil
}
