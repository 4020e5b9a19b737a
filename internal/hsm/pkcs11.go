//go:build cgo && !noetcd

package hsm

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
)

// Supported reports whether this binary can talk to a PKCS#11 module.
const Supported = true

// Token is a logged-in session pool on one token. It is safe for concurrent use.
type Token struct {
	ctx *crypto11.Context
	raw *rawSessions // RSA decryption, which crypto11 cannot do on every token

	// gate, on SoftHSM2 only (nil elsewhere), lets objects be made or
	// deleted (exclusive) only while no other call uses the token
	// (shared): SoftHSM2 2.6's file store fails a C_GenerateKey or
	// C_GenerateKeyPair now and then with CKR_GENERAL_ERROR (or a probe
	// of the new key with a wrong answer) while other threads of the
	// process find or use objects (SoftHSMv2 issue 573). Crypto calls stay
	// concurrent with each other; PKCS#11 tokens that lock as the
	// standard says (CKF_OS_LOCKING_OK) need no gate.
	gate *sync.RWMutex

	rsaProbe sync.Mutex   // held while the RSA-OAEP mechanism is probed
	rsaMech  atomic.Int32 // an rsaMechanism; rsaUnprobed until a probe succeeded

	aesProbe sync.Mutex  // held while CKM_AES_GCM or CKM_SHA256_HMAC is probed
	gcmOK    atomic.Bool // a CKM_AES_GCM probe succeeded
	hmacOK   atomic.Bool // a CKM_SHA256_HMAC probe succeeded

	signProbe sync.Mutex  // held while a signing mechanism is probed
	pssOK     atomic.Bool // a CKM_RSA_PKCS_PSS (salt 222) probe succeeded
	ecdsaOK   atomic.Bool // a CKM_ECDSA probe succeeded
}

// Open loads the module, finds the token by its label and logs in with the
// PIN. A wrong module, token label or PIN is an error that names what is
// wrong, never the PIN.
func Open(c Config) (*Token, error) {
	if err := checkConfig(c); err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: c.Module, TokenLabel: c.Token, Pin: c.PIN})
	if err != nil {
		msg := redact(err, c.PIN).Error()
		switch {
		case strings.Contains(msg, "CKR_PIN_INCORRECT"), strings.Contains(msg, "CKR_PIN_LOCKED"),
			strings.Contains(msg, "CKR_PIN_INVALID"), strings.Contains(msg, "CKR_PIN_LEN_RANGE"):
			return nil, fmt.Errorf("hsm: logging in to token %q refused: wrong PIN (%s)", c.Token, msg)
		case strings.Contains(msg, "could not find PKCS#11 token"):
			return nil, fmt.Errorf("hsm: no token labelled %q in %s", c.Token, c.Module)
		}
		return nil, fmt.Errorf("hsm: opening token %q of %s: %s", c.Token, c.Module, msg)
	}
	raw, err := openRaw(c.Module, c.Token)
	if err != nil {
		ctx.Close()
		return nil, err
	}
	t := &Token{ctx: ctx, raw: raw}
	if strings.HasPrefix(raw.manufacturer, "SoftHSM") {
		t.gate = new(sync.RWMutex)
	}
	return t, nil
}

// shared holds t's gate for a call that finds or uses objects, and returns
// its release; exclusive, for one that makes or deletes them. Neither may
// be taken again by the goroutine that holds it. Without a gate both do
// nothing.
func (t *Token) shared() (release func()) {
	if t.gate == nil {
		return func() {}
	}
	t.gate.RLock()
	return t.gate.RUnlock
}

func (t *Token) exclusive() (release func()) {
	if t.gate == nil {
		return func() {}
	}
	t.gate.Lock()
	return t.gate.Unlock
}

// do runs f on a session of the raw pool, under the shared gate.
func (t *Token) do(f func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error) error {
	defer t.shared()()
	return t.raw.do(f)
}

// findKeys and findKeyPairs are crypto11's, under the shared gate.
func (t *Token) findKeys(id []byte) ([]*crypto11.SecretKey, error) {
	defer t.shared()()
	return t.ctx.FindKeys(id, nil)
}

func (t *Token) findKeyPairs(id []byte) ([]crypto11.Signer, error) {
	defer t.shared()()
	return t.ctx.FindKeyPairs(id, nil)
}

// Close waits for running operations, closes the sessions, logs out and
// releases the module.
func (t *Token) Close() error {
	t.raw.close()
	return t.ctx.Close()
}

// Generate makes a new non-extractable key of type alg in the token with
// CKA_ID id and CKA_LABEL label: an AES-256 secret key (CKM_AES_KEY_GEN),
// an RSA-2048 key pair (CKM_RSA_PKCS_KEY_PAIR_GEN, e = 65537) or a P-256
// key pair (CKM_EC_KEY_PAIR_GEN). A convergent AES256 key also gets a
// 256-bit generic secret (CKM_GENERIC_SECRET_KEY_GEN) for the
// CKM_SHA256_HMAC of its nonces, with the same id and label. Secret and
// private keys are CKA_PRIVATE (set here) and CKA_SENSITIVE, not
// CKA_EXTRACTABLE (crypto11's defaults).
//
// A token that refuses the generation for its mechanism, or cannot use the
// new key as nkms does (checkAES, checkRSA, checkSign: probed with the
// first key of each type), gives an error that wraps ErrTokenMechanism; the new objects
// are deleted whenever Generate fails.
func (t *Token) Generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error {
	if convergent && alg != crypto.AES256 {
		return fmt.Errorf("hsm: convergent %s keys: %w", alg, crypto.ErrUnsupported)
	}
	if !strings.HasPrefix(label, LabelPrefix) || len(id) == 0 {
		return errors.New("hsm: an nkms object needs an id and a label starting with " + LabelPrefix)
	}
	if alg != crypto.AES256 && alg != crypto.RSA2048 && alg != crypto.ECDSA {
		return fmt.Errorf("hsm: key type %q: %w", alg, crypto.ErrUnsupported)
	}
	if err := t.generate(alg, convergent, id, label); err != nil {
		if mechanismRefused(err) {
			return mechanismError("generating a "+string(alg)+" key", err)
		}
		return fmt.Errorf("hsm: generating a %s key in the token: %w", alg, err)
	}
	// The checks use the new key as any call does, not under the
	// exclusive gate.
	switch alg {
	case crypto.AES256:
		return t.checkAES(id, convergent)
	case crypto.RSA2048:
		if err := t.checkRSA(id); err != nil {
			return err
		}
		return t.checkSign(alg, id, &t.pssOK)
	case crypto.ECDSA:
		return t.checkSign(alg, id, &t.ecdsaOK)
	}
	return nil
}

// generate makes the objects of Generate, holding the gate exclusively,
// and deletes what it made when it fails: the AES key of a convergent key
// whose HMAC key was refused, or a pair whose public key crypto11 could
// not read. Should that fail too, the start-up sweep deletes them.
func (t *Token) generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error {
	public, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return err
	}
	// Secret and private keys: CKA_PRIVATE, so that no session of the
	// token can use them without logging in, whatever the token's default.
	private := public.Copy()
	if err := private.Set(crypto11.CkaPrivate, true); err != nil {
		return err
	}
	defer t.exclusive()()
	switch alg {
	case crypto.AES256:
		_, err = t.ctx.GenerateSecretKeyWithAttributes(private.Copy(), 256, crypto11.CipherAES)
		if err == nil && convergent {
			_, err = t.ctx.GenerateSecretKeyWithAttributes(private.Copy(), 256, crypto11.CipherGeneric)
		}
	case crypto.RSA2048:
		_, err = t.ctx.GenerateRSAKeyPairWithAttributes(public, private, 2048)
	case crypto.ECDSA:
		_, err = t.ctx.GenerateECDSAKeyPairWithAttributes(public, private, elliptic.P256())
	}
	if err != nil {
		_ = t.destroy(id)
	}
	return err
}

// checkSign makes sure the token signs with the new key pair id as nkms
// does — RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 222-byte salt (some
// tokens cap the salt at the hash length), or ECDSA over a SHA-256 digest —
// and that the signature verifies with the public key: once per Token and
// key type, while ok is false. If it cannot, the pair is deleted and the
// error wraps ErrTokenMechanism; a failure of the token itself deletes it
// too and is returned as it is.
func (t *Token) checkSign(alg crypto.Algorithm, id []byte, ok *atomic.Bool) error {
	if ok.Load() {
		return nil
	}
	t.signProbe.Lock()
	defer t.signProbe.Unlock()
	if ok.Load() {
		return nil
	}
	err := probeSign(t, alg, id)
	if err == nil {
		ok.Store(true)
		return nil
	}
	if derr := t.Destroy(id); derr != nil {
		return fmt.Errorf("hsm: deleting a key pair whose signing probe failed (%v): %w", err, derr)
	}
	if errors.Is(err, ErrTokenMechanism) {
		return err
	}
	return fmt.Errorf("hsm: checking a new %s key pair: %w", alg, err)
}

// probeSign signs a random message with the key pair id through the same
// crypto.Key the Service uses, and verifies the signature in software.
func probeSign(t *Token, alg crypto.Algorithm, id []byte) error {
	k, err := t.Load(alg, false, id)
	if err != nil {
		return err
	}
	msg, err := crypto.RandomBytes(32)
	if err != nil {
		return err
	}
	sig, err := k.Sign(msg)
	if err != nil {
		return mechanismError("signing with a new "+string(alg)+" key", err)
	}
	if good, err := k.Verify(msg, sig); err != nil || !good {
		return fmt.Errorf("%w: the token's %s signature does not verify with its public key (%v)", ErrTokenMechanism, alg, err)
	}
	return nil
}

// checkRSA makes sure the token can decrypt RSA-OAEP with SHA-256 and
// MGF1-SHA-256 (decisions.md D5) with the new key pair id: the first pair
// of a Token probes its mechanism (see rsaMechanism). If it cannot, the
// pair is deleted again and the error wraps ErrTokenMechanism.
func (t *Token) checkRSA(id []byte) error {
	kps, err := t.findKeyPairs(id)
	if err == nil && len(kps) != 1 {
		err = fmt.Errorf("found %d key pairs with the new id", len(kps))
	}
	var k *tokenRSA
	if err == nil {
		k, err = t.loadRSA(kps[0], id)
	}
	if err == nil {
		_, err = t.rsaMechanism(k)
	}
	if err == nil {
		return nil
	}
	if derr := t.Destroy(id); derr != nil {
		return fmt.Errorf("hsm: deleting a key pair whose RSA-OAEP probe failed (%v): %w", err, derr)
	}
	if errors.Is(err, ErrTokenMechanism) {
		return err
	}
	return fmt.Errorf("hsm: checking a new RSA key pair: %w", err)
}

// Load finds the key object with CKA_ID id and returns it as a crypto.Key
// whose secret operations run in the token.
func (t *Token) Load(alg crypto.Algorithm, convergent bool, id []byte) (*crypto.Key, error) {
	switch alg {
	case crypto.AES256:
		sks, err := t.findKeys(id)
		if err != nil {
			return nil, fmt.Errorf("hsm: finding an AES key: %w", err)
		}
		var aes *crypto11.SecretKey
		for _, sk := range sks {
			if sk.Cipher == crypto11.CipherAES {
				aes = sk
			}
		}
		if aes == nil {
			return nil, ErrNoObject
		}
		gcm, err := aes.NewGCM()
		if err != nil {
			return nil, fmt.Errorf("hsm: AES-GCM: %w", err)
		}
		var nonceMAC crypto.TokenMAC
		if convergent {
			if nonceMAC, err = t.loadHMAC(id); err != nil {
				return nil, err
			}
		}
		return crypto.NewTokenAESKey(tokenGCM{gcm, t}, nonceMAC)
	case crypto.RSA2048, crypto.ECDSA:
		kps, err := t.findKeyPairs(id)
		if err != nil {
			return nil, fmt.Errorf("hsm: finding a key pair: %w", err)
		}
		if len(kps) == 0 {
			return nil, ErrNoObject
		}
		if alg == crypto.ECDSA {
			return crypto.NewTokenKeyPair(alg, tokenSigner{kps[0], t})
		}
		k, err := t.loadRSA(kps[0], id)
		if err != nil {
			return nil, err
		}
		return crypto.NewTokenKeyPair(alg, k)
	default:
		return nil, fmt.Errorf("hsm: key type %q: %w", alg, crypto.ErrUnsupported)
	}
}
