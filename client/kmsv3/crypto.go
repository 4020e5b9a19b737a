package kmsv3

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
)

// The crypto methods call the account route (/kms/v3/keys/{keyTag}/…) on
// an account client and the token route (/kms/v3/token/keys/{keyTag}/…,
// operation …WithToken) on a token client with an access token. They change
// nothing on the server and are retried as the package documentation says.

// crypto sends a crypto call of key tag on the route of c's kind.
func (c *Client) crypto(ctx context.Context, tag, suffix string, cl call, out any) error {
	p, err := keyPath(tag, suffix)
	if c.token != "" {
		p, err = tokenPath(tag, suffix)
	}
	if err != nil {
		return err
	}
	cl.path, cl.idem = p, true
	return c.do(ctx, cl, out)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// optB64 is the Base64 of b, or nil (not sent) for nil.
func optB64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := b64(b)
	return &s
}

// unb64 decodes a Base64 field of an answer.
func unb64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("kmsv3: malformed response: %s is not Base64: %w", field, err)
	}
	return b, nil
}

type encryptBody struct {
	Plaintext string  `json:"plaintext"`
	Context   *string `json:"context,omitempty"`
}

type decryptBody struct {
	Ciphertext string  `json:"ciphertext"`
	Context    *string `json:"context,omitempty"`
}

type ciphertextAnswer struct {
	Ciphertext *string `json:"ciphertext"`
}

type plaintextAnswer struct {
	Plaintext *string `json:"plaintext"`
}

// Encrypt encrypts plaintext with the key's current version and returns the
// ciphertext "ncpkms:v<N>:…" (encrypt / encryptWithToken, POST …/encrypt).
// encContext (the wire's context; nil: not sent) is required for a convergent key.
func (c *Client) Encrypt(ctx context.Context, tag string, plaintext, encContext []byte) (string, error) {
	var a ciphertextAnswer
	if err := c.crypto(ctx, tag, "/encrypt", call{method: http.MethodPost,
		body: encryptBody{Plaintext: b64(plaintext), Context: optB64(encContext)}}, &a); err != nil {
		return "", err
	}
	if a.Ciphertext == nil {
		return "", fmt.Errorf("kmsv3: malformed response: no ciphertext")
	}
	return *a.Ciphertext, nil
}

// Decrypt decrypts a ciphertext with the version it names (decrypt /
// decryptWithToken, POST …/decrypt).
func (c *Client) Decrypt(ctx context.Context, tag, ciphertext string, encContext []byte) ([]byte, error) {
	var a plaintextAnswer
	if err := c.crypto(ctx, tag, "/decrypt", call{method: http.MethodPost,
		body: decryptBody{Ciphertext: ciphertext, Context: optB64(encContext)}}, &a); err != nil {
		return nil, err
	}
	if a.Plaintext == nil {
		return nil, fmt.Errorf("kmsv3: malformed response: no plaintext")
	}
	return unb64("plaintext", *a.Plaintext)
}

// ReEncrypt encrypts a ciphertext again with the key's current version,
// without exposing the plaintext (reEncrypt / reEncryptWithToken, POST …/re-encrypt).
func (c *Client) ReEncrypt(ctx context.Context, tag, ciphertext string, encContext []byte) (string, error) {
	var a ciphertextAnswer
	if err := c.crypto(ctx, tag, "/re-encrypt", call{method: http.MethodPost,
		body: decryptBody{Ciphertext: ciphertext, Context: optB64(encContext)}}, &a); err != nil {
		return "", err
	}
	if a.Ciphertext == nil {
		return "", fmt.Errorf("kmsv3: malformed response: no ciphertext")
	}
	return *a.Ciphertext, nil
}

// batch sends {"requests": items} to a batch route and returns the results
// in request order: the answer's map keyed "0"…"n-1" must hold exactly the
// n indexes.
func batch[T any](ctx context.Context, c *Client, tag, suffix string, items any, n int) ([]T, error) {
	var a struct {
		Results map[string]T `json:"results"`
	}
	if err := c.crypto(ctx, tag, suffix, call{method: http.MethodPost,
		body: map[string]any{"requests": items}, batch: true}, &a); err != nil {
		return nil, err
	}
	if len(a.Results) != n {
		return nil, fmt.Errorf("kmsv3: malformed response: %d results for %d requests", len(a.Results), n)
	}
	out := make([]T, n)
	for i := range n {
		r, ok := a.Results[strconv.Itoa(i)]
		if !ok {
			return nil, fmt.Errorf("kmsv3: malformed response: no result %d", i)
		}
		out[i] = r
	}
	return out, nil
}

// BatchEncrypt encrypts 1–100 plaintexts in one all-or-nothing call and
// returns the ciphertexts in request order (batchEncrypt /
// batchEncryptWithToken, POST …/batch-encrypt). When items fail, nothing is
// encrypted and the error is a *BatchError keyed by item index.
func (c *Client) BatchEncrypt(ctx context.Context, tag string, items []EncryptRequest) ([]string, error) {
	body := make([]encryptBody, len(items))
	for i, it := range items {
		body[i] = encryptBody{Plaintext: b64(it.Plaintext), Context: optB64(it.Context)}
	}
	rs, err := batch[ciphertextAnswer](ctx, c, tag, "/batch-encrypt", body, len(items))
	if err != nil {
		return nil, err
	}
	return ciphertexts(rs)
}

func ciphertexts(rs []ciphertextAnswer) ([]string, error) {
	out := make([]string, len(rs))
	for i, r := range rs {
		if r.Ciphertext == nil {
			return nil, fmt.Errorf("kmsv3: malformed response: result %d has no ciphertext", i)
		}
		out[i] = *r.Ciphertext
	}
	return out, nil
}

func decryptBodies(items []DecryptRequest) []decryptBody {
	body := make([]decryptBody, len(items))
	for i, it := range items {
		body[i] = decryptBody{Ciphertext: it.Ciphertext, Context: optB64(it.Context)}
	}
	return body
}

// BatchDecrypt decrypts 1–100 ciphertexts in one all-or-nothing call and
// returns the plaintexts in request order (batchDecrypt /
// batchDecryptWithToken, POST …/batch-decrypt). Failures as BatchEncrypt.
func (c *Client) BatchDecrypt(ctx context.Context, tag string, items []DecryptRequest) ([][]byte, error) {
	rs, err := batch[plaintextAnswer](ctx, c, tag, "/batch-decrypt", decryptBodies(items), len(items))
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(rs))
	for i, r := range rs {
		if r.Plaintext == nil {
			return nil, fmt.Errorf("kmsv3: malformed response: result %d has no plaintext", i)
		}
		if out[i], err = unb64("plaintext "+strconv.Itoa(i), *r.Plaintext); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BatchReEncrypt re-encrypts 1–100 ciphertexts with the key's current
// version in one all-or-nothing call (batchReEncrypt /
// batchReEncryptWithToken, POST …/batch-re-encrypt). Failures as BatchEncrypt.
func (c *Client) BatchReEncrypt(ctx context.Context, tag string, items []DecryptRequest) ([]string, error) {
	rs, err := batch[ciphertextAnswer](ctx, c, tag, "/batch-re-encrypt", decryptBodies(items), len(items))
	if err != nil {
		return nil, err
	}
	return ciphertexts(rs)
}

// Sign signs data (the message, not a digest) with the current version of
// an RSA2048 or ECDSA key and returns the signature "ncpkms:v<N>:…" (sign /
// signWithToken, POST …/sign).
func (c *Client) Sign(ctx context.Context, tag string, data []byte) (string, error) {
	var a struct {
		Signature *string `json:"signature"`
	}
	if err := c.crypto(ctx, tag, "/sign", call{method: http.MethodPost,
		body: map[string]string{"data": b64(data)}}, &a); err != nil {
		return "", err
	}
	if a.Signature == nil {
		return "", fmt.Errorf("kmsv3: malformed response: no signature")
	}
	return *a.Signature, nil
}

// Verify checks a signature of data with the version the signature names
// (verify / verifyWithToken, POST …/verify). A signature that does not
// match is false, not an error.
func (c *Client) Verify(ctx context.Context, tag string, data []byte, signature string) (bool, error) {
	var a struct {
		Valid *bool `json:"valid"`
	}
	if err := c.crypto(ctx, tag, "/verify", call{method: http.MethodPost,
		body: map[string]string{"data": b64(data), "signature": signature}}, &a); err != nil {
		return false, err
	}
	if a.Valid == nil {
		return false, fmt.Errorf("kmsv3: malformed response: no valid")
	}
	return *a.Valid, nil
}

// IssueCustomKey issues a data key for envelope encryption (issueCustomKey
// / issueCustomKeyWithToken, POST …/issue-custom-key). The zero request
// sends {} (a 256-bit key, ciphertext only).
func (c *Client) IssueCustomKey(ctx context.Context, tag string, r CustomKeyRequest) (*CustomKey, error) {
	body := struct {
		RequestPlainKey bool    `json:"requestPlainKey,omitempty"`
		Bits            int     `json:"bits,omitempty"`
		Context         *string `json:"context,omitempty"`
	}{r.RequestPlainKey, r.Bits, optB64(r.Context)}
	var a struct {
		Ciphertext *string `json:"ciphertext"`
		Plaintext  *string `json:"plaintext"`
		Version    int     `json:"version"`
	}
	if err := c.crypto(ctx, tag, "/issue-custom-key", call{method: http.MethodPost, body: body}, &a); err != nil {
		return nil, err
	}
	if a.Ciphertext == nil {
		return nil, fmt.Errorf("kmsv3: malformed response: no ciphertext")
	}
	k := &CustomKey{Ciphertext: *a.Ciphertext, Version: a.Version}
	if a.Plaintext != nil {
		p, err := unb64("plaintext", *a.Plaintext)
		if err != nil {
			return nil, err
		}
		k.Plaintext = p
	} else if r.RequestPlainKey {
		return nil, fmt.Errorf("kmsv3: malformed response: no plaintext")
	}
	return k, nil
}

// GetPublicKey returns the PEM public key of one version of an asymmetric
// key (getPublicKey / getPublicKeyWithToken, GET …/versions/{version}/public-key).
func (c *Client) GetPublicKey(ctx context.Context, tag string, version int) (*PublicKey, error) {
	s, err := versionSuffix(version)
	if err != nil {
		return nil, err
	}
	var p PublicKey
	if err := c.crypto(ctx, tag, s+"/public-key", call{method: http.MethodGet}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
