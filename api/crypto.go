package api

import (
	"context"
	"encoding/base64"
	"net/http"

	"github.com/nkms/nkms"
)

// Handlers of the crypto routes (ncp-kms-api.md §6.3).

func (s *Server) encrypt(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req encryptRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if !req.Plaintext.Set {
		return nil, nkms.Errorf(nkms.Invalid, "plaintext is required")
	}
	plain := make([][]byte, len(req.Plaintext.Items))
	for i, p := range req.Plaintext.Items {
		b, err := nkms.DecodeBase64("plaintext", p)
		if err != nil {
			return nil, err
		}
		plain[i] = b
	}
	cts, err := s.svc.Encrypt(ctx, c, r.PathValue("keyTag"), plain, req.Context)
	if err != nil {
		return nil, err
	}
	setVersion(ctx, cts...)
	return encryptResponse{Ciphertext: req.Plaintext.mirror(cts)}, nil
}

func (s *Server) decrypt(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req decryptRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if !req.Ciphertext.Set {
		return nil, nkms.Errorf(nkms.Invalid, "ciphertext is required")
	}
	setVersion(ctx, req.Ciphertext.Items...)
	plain, err := s.svc.Decrypt(ctx, c, r.PathValue("keyTag"), req.Ciphertext.Items, req.Context)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(plain))
	for i, p := range plain {
		out[i] = base64.StdEncoding.EncodeToString(p)
		clear(p)
	}
	return decryptResponse{Plaintext: req.Ciphertext.mirror(out)}, nil
}

func (s *Server) reEncrypt(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req decryptRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if !req.Ciphertext.Set {
		return nil, nkms.Errorf(nkms.Invalid, "ciphertext is required")
	}
	setVersion(ctx, req.Ciphertext.Items...) // the version decrypted with
	cts, err := s.svc.ReEncrypt(ctx, c, r.PathValue("keyTag"), req.Ciphertext.Items, req.Context)
	if err != nil {
		return nil, err
	}
	return reEncryptResponse{NewCiphertext: req.Ciphertext.mirror(cts)}, nil
}

func (s *Server) customKey(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req customKeyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	ck, err := s.svc.CreateCustomKey(ctx, c, r.PathValue("keyTag"), req.Bits, req.RequestPlainKey, req.Context)
	if err != nil {
		return nil, err
	}
	state(ctx).version = ck.Version
	out := customKeyResponse{Ciphertext: ck.Ciphertext, KeyVersion: ck.Version}
	if ck.Plaintext != nil {
		out.Plaintext = base64.StdEncoding.EncodeToString(ck.Plaintext)
		clear(ck.Plaintext)
	}
	return out, nil
}

func (s *Server) sign(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req signRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Data == nil {
		return nil, nkms.Errorf(nkms.Invalid, "data is required")
	}
	msg, err := nkms.DecodeBase64("data", *req.Data)
	if err != nil {
		return nil, err
	}
	sig, err := s.svc.Sign(ctx, c, r.PathValue("keyTag"), msg)
	if err != nil {
		return nil, err
	}
	setVersion(ctx, sig)
	return signResponse{Signature: sig}, nil
}

func (s *Server) verify(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req verifyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Data == nil || req.Signature == nil {
		return nil, nkms.Errorf(nkms.Invalid, "data and signature are required")
	}
	msg, err := nkms.DecodeBase64("data", *req.Data)
	if err != nil {
		return nil, err
	}
	setVersion(ctx, *req.Signature)
	ok, err := s.svc.Verify(ctx, c, r.PathValue("keyTag"), msg, *req.Signature)
	if err != nil {
		return nil, err
	}
	return verifyResponse{Valid: ok}, nil
}

func (s *Server) publicKey(ctx context.Context, c nkms.Caller, r *http.Request) (any, error) {
	var req publicKeyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	state(ctx).version = max(req.KeyVersion, 0) // 0: the current version, not known here
	pem, err := s.svc.PublicKey(ctx, c, r.PathValue("keyTag"), req.KeyVersion)
	if err != nil {
		return nil, err
	}
	return publicKeyResponse{PublicKey: pem}, nil
}
