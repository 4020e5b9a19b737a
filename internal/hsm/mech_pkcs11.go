//go:build cgo && !noetcd

package hsm

// What a token cannot do. A token may lack a mechanism a key type needs, or
// the parameters nkms uses with it: it refuses to generate the key
// (mechanismRefused), or it generates an AES key but cannot use it with
// CKM_AES_GCM (opencryptoki 3.8.1's software token has no CKM_AES_GCM).
// Either is ErrTokenMechanism, which the Service answers with 400 "this
// server's HSM does not support COMMON_HSM <type> keys" and remembers; a
// key it could never use is never handed out. AES keys are probed once per
// Token, with the first one generated (probeGCM, probeHMAC), as RSA-OAEP
// decryption is (rsa_pkcs11.go) and signing with the first RSA2048 and
// ECDSA pair (checkSign in pkcs11.go).

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
)

// mechanismRefused reports whether err is a token's answer that it does not
// support what was asked — the mechanism, its parameters, the key size or
// curve, the key type with that mechanism — rather than a failure of the
// token (a lost session, a device error, no memory), which may pass. crypto11
// returns the pkcs11.Error of key generation as it is; errors.As finds it
// under wrapping too.
func mechanismRefused(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID,
		pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_DOMAIN_PARAMS_INVALID, pkcs11.CKR_CURVE_NOT_SUPPORTED,
		pkcs11.CKR_FUNCTION_NOT_SUPPORTED,
		// nShield's answer to a key type it does not make with a mechanism
		// (crypto11 names it so).
		pkcs11.CKR_TEMPLATE_INCONSISTENT,
		// A key the token made but will not use with the mechanism.
		pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
		return true
	}
	return false
}

// mechanismError returns err as ErrTokenMechanism when the token refused
// the mechanism, and unchanged otherwise.
func mechanismError(what string, err error) error {
	if err != nil && mechanismRefused(err) {
		return fmt.Errorf("%w: %s: %w", ErrTokenMechanism, what, err)
	}
	return err
}

// checkAES makes sure the token can use the new AES key id (and, for a
// convergent key, its HMAC key) as nkms does: the first such key of a
// Token probes the mechanisms (probeAES). If it cannot, the new objects are
// deleted and the error wraps ErrTokenMechanism; a failure of the token
// itself deletes them too and is returned as it is.
func (t *Token) checkAES(id []byte, convergent bool) error {
	if t.gcmOK.Load() && (!convergent || t.hmacOK.Load()) {
		return nil
	}
	t.aesProbe.Lock()
	defer t.aesProbe.Unlock()
	var err error
	if !t.gcmOK.Load() {
		if err = t.probeGCM(id); err == nil {
			t.gcmOK.Store(true)
		}
	}
	if err == nil && convergent && !t.hmacOK.Load() {
		if err = t.probeHMAC(id); err == nil {
			t.hmacOK.Store(true)
		}
	}
	if err == nil {
		return nil
	}
	if derr := t.Destroy(id); derr != nil {
		return fmt.Errorf("hsm: deleting a key whose mechanism probe failed (%v): %w", err, derr)
	}
	if errors.Is(err, ErrTokenMechanism) {
		return err
	}
	return fmt.Errorf("hsm: checking a new AES key: %w", err)
}

// findSecret returns the handle of the secret key of type keyType with
// CKA_ID id.
func findSecret(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, keyType uint, id []byte) (pkcs11.ObjectHandle, error) {
	hs, err := findObjects(ctx, sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	switch {
	case err != nil:
		return 0, err
	case len(hs) != 1:
		return 0, fmt.Errorf("hsm: %d secret keys of type %#x with the new id, want 1", len(hs), keyType)
	}
	return hs[0], nil
}

// Probe parameters: what tokenGCM (crypto11) uses, a 12-byte IV and a
// 16-byte tag, with associated data as every nkms ciphertext has.
const (
	probeIVSize  = 12
	probeTagBits = 128
)

// probeGCM encrypts and decrypts a random plaintext with CKM_AES_GCM under
// the AES key id, with the parameters of tokenGCM, and checks that the
// ciphertext has the length nkms's format needs (plaintext and tag), that
// it decrypts to the plaintext, and that a flipped tag bit is refused. A
// token that refuses the mechanism or its parameters, or gets any of that
// wrong, gives an error that wraps ErrTokenMechanism.
func (t *Token) probeGCM(id []byte) error {
	iv, pt, ad := make([]byte, probeIVSize), make([]byte, 32), []byte("nkms CKM_AES_GCM probe")
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	if _, err := rand.Read(pt); err != nil {
		return err
	}
	var h pkcs11.ObjectHandle // found by the first call
	gcm := func(encrypt bool, in []byte) ([]byte, error) {
		var out []byte
		err := t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
			if h == 0 { // CK_INVALID_HANDLE
				var err error
				if h, err = findSecret(ctx, sh, pkcs11.CKK_AES, id); err != nil {
					return err
				}
			}
			params := pkcs11.NewGCMParams(iv, ad, probeTagBits)
			defer params.Free()
			mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}
			var err error
			if encrypt {
				if err = ctx.EncryptInit(sh, mech, h); err != nil {
					return mechanismError("C_EncryptInit (CKM_AES_GCM)", err)
				}
				out, err = ctx.Encrypt(sh, in)
				return mechanismError("C_Encrypt (CKM_AES_GCM)", err)
			}
			if err = ctx.DecryptInit(sh, mech, h); err != nil {
				return mechanismError("C_DecryptInit (CKM_AES_GCM)", err)
			}
			out, err = ctx.Decrypt(sh, in)
			return mechanismError("C_Decrypt (CKM_AES_GCM)", err)
		})
		return out, err
	}
	ct, err := gcm(true, pt)
	if err != nil {
		return err
	}
	if len(ct) != len(pt)+probeTagBits/8 {
		return fmt.Errorf("%w: CKM_AES_GCM gave %d bytes for %d, want the ciphertext and a 16-byte tag", ErrTokenMechanism, len(ct), len(pt))
	}
	got, err := gcm(false, ct)
	switch {
	case errors.Is(err, ErrTokenMechanism):
		return err
	case errors.Is(err, pkcs11.Error(pkcs11.CKR_ENCRYPTED_DATA_INVALID)), err == nil && !bytes.Equal(got, pt):
		return fmt.Errorf("%w: CKM_AES_GCM does not decrypt its own ciphertext", ErrTokenMechanism)
	case err != nil:
		return err
	}
	ct[len(ct)-1] ^= 1
	if _, err := gcm(false, ct); err == nil {
		return fmt.Errorf("%w: CKM_AES_GCM decrypted a ciphertext with a wrong tag", ErrTokenMechanism)
	}
	return nil
}

// loadHMAC returns CKM_SHA256_HMAC under the HMAC key (CKK_GENERIC_SECRET)
// with CKA_ID id; ErrNoObject when the token has none.
func (t *Token) loadHMAC(id []byte) (crypto.TokenMAC, error) {
	var h pkcs11.ObjectHandle
	err := t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		hs, err := findObjects(ctx, sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_GENERIC_SECRET),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		})
		switch {
		case err != nil:
			return err
		case len(hs) == 0:
			return ErrNoObject
		case len(hs) > 1:
			return errors.New("hsm: two HMAC keys with the same id")
		}
		h = hs[0]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t.tokenHMAC(h), nil
}

// probeHMAC computes CKM_SHA256_HMAC twice over the same data with the
// HMAC key id, as Load's keys do (tokenHMAC), and checks that it gives the
// same 32 bytes both times: a convergent key's nonces depend on it.
func (t *Token) probeHMAC(id []byte) error {
	mac, err := t.loadHMAC(id)
	if err != nil {
		return err
	}
	data := []byte("nkms CKM_SHA256_HMAC probe")
	a, err := mac(data)
	if err != nil {
		return mechanismError("CKM_SHA256_HMAC", err)
	}
	b, err := mac(data)
	if err != nil {
		return mechanismError("CKM_SHA256_HMAC", err)
	}
	if len(a) != 32 || !bytes.Equal(a, b) {
		return fmt.Errorf("%w: CKM_SHA256_HMAC gave %d and %d bytes, not the same 32 twice", ErrTokenMechanism, len(a), len(b))
	}
	return nil
}
