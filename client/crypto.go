package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
)

// In this file encContext is the encryption context of NAVER's API: raw
// bytes (at most 50), required by convergent keys and ignored by the others.
// It is sent only when not empty.

// Encrypt encrypts plaintext with the key's current version and returns the
// ciphertext "ncpkms:v<N>:<Base64>" (POST .../encrypt).
func (c *Client) Encrypt(ctx context.Context, tag string, plaintext, encContext []byte) (string, error) {
	var out struct {
		Ciphertext string `json:"ciphertext"`
	}
	body := encryptBody{Plaintext: b64(plaintext), Context: encContext}
	if err := c.call(ctx, http.MethodPost, tag, "/encrypt", body, &out); err != nil {
		return "", err
	}
	return out.Ciphertext, nil
}

// EncryptMany encrypts several plaintexts in one request; the ciphertexts
// come back in the same order. The plaintexts together obey the size limit
// of the key type.
func (c *Client) EncryptMany(ctx context.Context, tag string, plaintexts [][]byte, encContext []byte) ([]string, error) {
	in := make([]string, len(plaintexts))
	for i, p := range plaintexts {
		in[i] = b64(p)
	}
	var out struct {
		Ciphertext []string `json:"ciphertext"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/encrypt", encryptBody{Plaintext: in, Context: encContext}, &out); err != nil {
		return nil, err
	}
	return sameLength("encrypt", len(in), out.Ciphertext)
}

// Decrypt decrypts a ciphertext with the version named in its prefix
// (POST .../decrypt).
func (c *Client) Decrypt(ctx context.Context, tag, ciphertext string, encContext []byte) ([]byte, error) {
	var out struct {
		Plaintext []byte `json:"plaintext"` // Base64 on the wire
	}
	if err := c.call(ctx, http.MethodPost, tag, "/decrypt", decryptBody{Ciphertext: ciphertext, Context: encContext}, &out); err != nil {
		return nil, err
	}
	return out.Plaintext, nil
}

// DecryptMany decrypts several ciphertexts in one request; the plaintexts
// come back in the same order.
func (c *Client) DecryptMany(ctx context.Context, tag string, ciphertexts []string, encContext []byte) ([][]byte, error) {
	var out struct {
		Plaintext [][]byte `json:"plaintext"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/decrypt", decryptBody{Ciphertext: nonNil(ciphertexts), Context: encContext}, &out); err != nil {
		return nil, err
	}
	return sameLength("decrypt", len(ciphertexts), out.Plaintext)
}

// ReEncrypt decrypts a ciphertext with the version in its prefix and
// encrypts the result with the current version (POST .../re-encrypt).
func (c *Client) ReEncrypt(ctx context.Context, tag, ciphertext string, encContext []byte) (string, error) {
	var out struct {
		NewCiphertext string `json:"newCiphertext"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/re-encrypt", decryptBody{Ciphertext: ciphertext, Context: encContext}, &out); err != nil {
		return "", err
	}
	return out.NewCiphertext, nil
}

// ReEncryptMany re-encrypts several ciphertexts in one request; the new
// ciphertexts come back in the same order.
func (c *Client) ReEncryptMany(ctx context.Context, tag string, ciphertexts []string, encContext []byte) ([]string, error) {
	var out struct {
		NewCiphertext []string `json:"newCiphertext"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/re-encrypt", decryptBody{Ciphertext: nonNil(ciphertexts), Context: encContext}, &out); err != nil {
		return nil, err
	}
	return sameLength("re-encrypt", len(ciphertexts), out.NewCiphertext)
}

// CreateCustomKey generates fresh key material (a data key) and returns it
// encrypted under the key's current version, and in plain when
// req.RequestPlainKey is set (POST .../create-custom-key).
func (c *Client) CreateCustomKey(ctx context.Context, tag string, req CustomKeyRequest) (*CustomKey, error) {
	return callKey[CustomKey](ctx, c, http.MethodPost, tag, "/create-custom-key", req)
}

// Sign signs msg (the raw message, at most 8192 bytes; the server hashes it)
// with the key's current version and returns "ncpkms:v<N>:<Base64>"
// (POST .../sign).
func (c *Client) Sign(ctx context.Context, tag string, msg []byte) (string, error) {
	var out struct {
		Signature string `json:"signature"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/sign", signBody{Data: nonNilBytes(msg)}, &out); err != nil {
		return "", err
	}
	return out.Signature, nil
}

// Verify reports whether signature is a valid signature of msg by the
// version named in its prefix (POST .../verify). A well-formed signature
// that does not match gives false and no error; a malformed one gives an
// *Error with Code INVALID_REQUEST.
func (c *Client) Verify(ctx context.Context, tag string, msg []byte, signature string) (bool, error) {
	var out struct {
		Valid flexBool `json:"valid"`
	}
	body := signBody{Data: nonNilBytes(msg), Signature: signature}
	if err := c.call(ctx, http.MethodPost, tag, "/verify", body, &out); err != nil {
		return false, err
	}
	return bool(out.Valid), nil
}

// PublicKey returns the PEM public key of an asymmetric key's version, or of
// its current version when version is 0 (POST .../get-pub-key).
func (c *Client) PublicKey(ctx context.Context, tag string, version int) (string, error) {
	var out struct {
		PublicKey string `json:"publicKey"`
	}
	if err := c.call(ctx, http.MethodPost, tag, "/get-pub-key", publicKeyBody{KeyVersion: version}, &out); err != nil {
		return "", err
	}
	return out.PublicKey, nil
}

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nonNilBytes makes an empty message encode as "" rather than null.
func nonNilBytes(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	return p
}

// sameLength checks that an array answer has one item per item sent.
func sameLength[T any](op string, sent int, got []T) ([]T, error) {
	if len(got) != sent {
		return nil, fmt.Errorf("client: %s: sent %d items, got %d back", op, sent, len(got))
	}
	return got, nil
}
