package api

import (
	"context"
	"encoding/base64"

	"github.com/nkms/nkms"
)

// Handlers of the crypto routes (ncp-kms-api.md §6.3).

func (s *Server) encrypt(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	req, err := decodeEncrypt(rq)
	if err != nil {
		return result{}, err
	}
	if !req.Plaintext.Set {
		return result{}, nkms.Errorf(nkms.Invalid, "plaintext is required")
	}
	plain := make([][]byte, len(req.Plaintext.Items))
	for i, p := range req.Plaintext.Items {
		b, err := nkms.DecodeBase64("plaintext", p)
		if err != nil {
			return result{}, err
		}
		plain[i] = b
	}
	cts, err := s.svc.Encrypt(ctx, c, rq.tag, plain, req.Context)
	if err != nil {
		return result{}, err
	}
	return result{version: cts.Version, data: encryptResponse{Ciphertext: req.Plaintext.mirror(cts.Values)}}, nil
}

func (s *Server) decrypt(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	req, err := decodeDecrypt(rq)
	if err != nil {
		return result{}, err
	}
	if !req.Ciphertext.Set {
		return result{}, nkms.Errorf(nkms.Invalid, "ciphertext is required")
	}
	plain, err := s.svc.Decrypt(ctx, c, rq.tag, req.Ciphertext.Items, req.Context)
	if err != nil {
		return result{version: plain.Version}, err
	}
	out := make([]string, len(plain.Values))
	for i, p := range plain.Values {
		out[i] = base64.StdEncoding.EncodeToString(p)
		clear(p)
	}
	return result{version: plain.Version, data: decryptResponse{Plaintext: req.Ciphertext.mirror(out)}}, nil
}

func (s *Server) reEncrypt(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	req, err := decodeDecrypt(rq)
	if err != nil {
		return result{}, err
	}
	if !req.Ciphertext.Set {
		return result{}, nkms.Errorf(nkms.Invalid, "ciphertext is required")
	}
	cts, err := s.svc.ReEncrypt(ctx, c, rq.tag, req.Ciphertext.Items, req.Context)
	if err != nil {
		return result{}, err
	}
	return result{version: cts.Version, data: reEncryptResponse{NewCiphertext: req.Ciphertext.mirror(cts.Values)}}, nil
}

func (s *Server) customKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req customKeyRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	ck, err := s.svc.CreateCustomKey(ctx, c, rq.tag, req.Bits, req.RequestPlainKey, req.Context)
	if err != nil {
		return result{}, err
	}
	out := customKeyResponse{Ciphertext: ck.Ciphertext, KeyVersion: ck.Version}
	if ck.Plaintext != nil {
		out.Plaintext = base64.StdEncoding.EncodeToString(ck.Plaintext)
		clear(ck.Plaintext)
	}
	return result{version: ck.Version, data: out}, nil
}

func (s *Server) sign(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req signRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.Data == nil {
		return result{}, nkms.Errorf(nkms.Invalid, "data is required")
	}
	msg, err := nkms.DecodeBase64("data", *req.Data)
	if err != nil {
		return result{}, err
	}
	sig, err := s.svc.Sign(ctx, c, rq.tag, msg)
	if err != nil {
		return result{}, err
	}
	return result{version: sig.Version, data: signResponse{Signature: sig.Value}}, nil
}

func (s *Server) verify(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req verifyRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	if req.Data == nil || req.Signature == nil {
		return result{}, nkms.Errorf(nkms.Invalid, "data and signature are required")
	}
	msg, err := nkms.DecodeBase64("data", *req.Data)
	if err != nil {
		return result{}, err
	}
	v, err := s.svc.Verify(ctx, c, rq.tag, msg, *req.Signature)
	if err != nil {
		return result{}, err
	}
	return result{version: v.Version, data: verifyResponse{Valid: v.Valid}}, nil
}

func (s *Server) publicKey(ctx context.Context, c nkms.Caller, rq *request) (result, error) {
	var req publicKeyRequest
	if err := decode(rq, &req); err != nil {
		return result{}, err
	}
	pub, err := s.svc.PublicKey(ctx, c, rq.tag, req.KeyVersion)
	if err != nil {
		return result{}, err
	}
	return result{version: pub.Version, data: publicKeyResponse{PublicKey: pub.PEM}}, nil
}
