//go:build cgo && !noetcd

package hsm

// RSA-OAEP decryption in the token. crypto11 decrypts OAEP only with the
// token's CKM_RSA_PKCS_OAEP and offers no raw RSA decryption and no access
// to its sessions or object handles, so this file talks to the module
// through github.com/miekg/pkcs11 directly: a second *pkcs11.Ctx on the
// module crypto11 loaded (the login of crypto11's long-lived session
// covers it: PKCS#11 logs in per application, not per session) and a small
// pool of its own sessions on the token's slot.
//
// Which mechanism a token uses is found once per Token, with the first
// RSA2048 key it generates or decrypts with (probeRSA):
//
//   - CKM_RSA_PKCS_OAEP with CKM_SHA256 and CKG_MGF1_SHA256 (decisions.md
//     D5) when the token takes those parameters;
//   - otherwise CKM_RSA_X_509, the raw private-key operation, in the token,
//     and the EME-OAEP decoding in nkms (decodeOAEP, constant time);
//   - otherwise neither: RSA2048 keys are refused with ErrTokenMechanism.

import (
	gocrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
)

// rsaMechanism is how a Token decrypts RSA-OAEP; the zero value is "not
// probed yet".
type rsaMechanism int32

const (
	rsaUnprobed rsaMechanism = iota
	rsaOAEP                  // CKM_RSA_PKCS_OAEP, SHA-256, MGF1-SHA-256, in the token
	rsaRaw                   // CKM_RSA_X_509 in the token, EME-OAEP decoded in nkms
)

func (m rsaMechanism) String() string {
	switch m {
	case rsaOAEP:
		return "CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256)"
	case rsaRaw:
		return "CKM_RSA_X_509 (EME-OAEP SHA-256 decoded by nkms)"
	}
	return ""
}

// maxIdleSessions bounds the sessions rawSessions keeps open between calls.
const maxIdleSessions = 16

// rawSessions is a pool of PKCS#11 sessions on one token, through a
// *pkcs11.Ctx of its own. It is safe for concurrent use.
type rawSessions struct {
	life   sync.RWMutex // every call holds it for reading; close for writing
	closed bool         // under life
	ctx    *pkcs11.Ctx
	slot   uint

	manufacturer string // the token's CK_TOKEN_INFO manufacturerID

	mu   sync.Mutex
	idle []pkcs11.SessionHandle
}

// openRaw loads module (already initialised by crypto11 in this process)
// and finds the slot of the token labelled label.
func openRaw(module, label string) (*rawSessions, error) {
	ctx := pkcs11.New(module)
	if ctx == nil {
		return nil, fmt.Errorf("hsm: loading %s a second time failed", module)
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		return nil, fmt.Errorf("hsm: C_Initialize: %w", err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("hsm: C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		info, err := ctx.GetTokenInfo(s)
		if err == nil && info.Label == label {
			return &rawSessions{ctx: ctx, slot: s, manufacturer: info.ManufacturerID}, nil
		}
	}
	ctx.Destroy()
	return nil, fmt.Errorf("hsm: no token labelled %q in %s", label, module)
}

// do runs f on a session of the pool. A session whose state f may have
// broken (see sessionBroken) is closed rather than reused.
func (r *rawSessions) do(f func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error) error {
	r.life.RLock()
	defer r.life.RUnlock()
	if r.closed {
		return errors.New("hsm: the token is closed")
	}
	r.mu.Lock()
	var sh pkcs11.SessionHandle
	if n := len(r.idle); n > 0 {
		sh = r.idle[n-1]
		r.idle = r.idle[:n-1]
		r.mu.Unlock()
	} else {
		r.mu.Unlock()
		var err error
		if sh, err = r.ctx.OpenSession(r.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			return fmt.Errorf("hsm: C_OpenSession: %w", err)
		}
	}
	err := f(r.ctx, sh)
	r.mu.Lock()
	if sessionBroken(err) || len(r.idle) >= maxIdleSessions {
		r.mu.Unlock()
		_ = r.ctx.CloseSession(sh)
		return err
	}
	r.idle = append(r.idle, sh)
	r.mu.Unlock()
	return err
}

// sessionBroken reports whether err leaves a session unfit for reuse.
func sessionBroken(err error) bool {
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
		pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_ARGUMENTS_BAD,
		pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED,
		pkcs11.CKR_TEMPLATE_INCOMPLETE, pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID:
		// Refused for its input; PKCS#11 ends a failed C_Decrypt's
		// operation, and a failed C_DecryptInit starts none.
		return false
	}
	return true
}

// close closes the pool's sessions once no call is running, and releases
// the module handle. It never calls C_Finalize: crypto11 owns the module's
// initialisation, and other Tokens in the process may use it.
func (r *rawSessions) close() {
	r.life.Lock()
	defer r.life.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, sh := range r.idle {
		_ = r.ctx.CloseSession(sh)
	}
	r.idle = nil
	r.ctx.Destroy()
}

// findRSAPrivate returns the handle of the RSA private key with CKA_ID id.
func findRSAPrivate(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, id []byte) (pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return 0, fmt.Errorf("hsm: C_FindObjectsInit: %w", err)
	}
	hs, _, err := ctx.FindObjects(sh, 2)
	if ferr := ctx.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("hsm: C_FindObjects: %w", err)
	case len(hs) == 0:
		return 0, ErrNoObject
	case len(hs) > 1:
		return 0, errors.New("hsm: two RSA private keys with the same id")
	}
	return hs[0], nil
}

// tokenRSA is an RSA2048 key pair in the token: crypto11 signs
// (CKM_RSA_PKCS_PSS), Decrypt runs the Token's RSA-OAEP mechanism on the
// private key handle.
type tokenRSA struct {
	kp     crypto11.Signer
	pub    *rsa.PublicKey
	tok    *Token
	handle pkcs11.ObjectHandle
}

// loadRSA wraps the crypto11 pair kp with CKA_ID id.
func (t *Token) loadRSA(kp crypto11.Signer, id []byte) (*tokenRSA, error) {
	pub, ok := kp.Public().(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("hsm: the key pair is not an RSA key")
	}
	k := &tokenRSA{kp: kp, pub: pub, tok: t}
	err := t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) (err error) {
		k.handle, err = findRSAPrivate(ctx, sh, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

func (k *tokenRSA) Public() gocrypto.PublicKey { return k.pub }

func (k *tokenRSA) Sign(rand io.Reader, digest []byte, opts gocrypto.SignerOpts) ([]byte, error) {
	defer k.tok.shared()()
	return k.kp.Sign(rand, digest, opts)
}

// Decrypt decrypts RSA-OAEP with SHA-256 and MGF1-SHA-256 and no label in
// the token; opts must be *rsa.OAEPOptions saying so. Every failure that
// depends on msg is crypto.ErrDecrypt; a failure of the token itself (no
// session, the mechanism refused) is another error.
//
// A label is refused: nkms ciphertexts have none, the probe checks the
// token without one, and tokens differ there (opencryptoki 3.8.1 decrypts
// OAEP-SHA-256 without a label but fails every labelled ciphertext).
func (k *tokenRSA) Decrypt(_ io.Reader, msg []byte, opts gocrypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || o.Hash != gocrypto.SHA256 || (o.MGFHash != 0 && o.MGFHash != gocrypto.SHA256) || len(o.Label) != 0 {
		return nil, fmt.Errorf("hsm: RSA decryption other than OAEP with SHA-256 and no label: %w", crypto.ErrUnsupported)
	}
	// The modulus and the ciphertext are public: these checks may branch.
	if len(msg) != k.pub.Size() || new(big.Int).SetBytes(msg).Cmp(k.pub.N) >= 0 {
		return nil, crypto.ErrDecrypt
	}
	m, err := k.tok.rsaMechanism(k)
	if err != nil {
		return nil, err
	}
	return k.decrypt(m, msg, nil)
}

// decrypt decrypts msg with mechanism m and OAEP label label (only tests
// pass one: Wycheproof's labelled vectors through CKM_RSA_X_509).
func (k *tokenRSA) decrypt(m rsaMechanism, msg, label []byte) ([]byte, error) {
	var mech *pkcs11.Mechanism
	switch m {
	case rsaOAEP:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP,
			pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, label))
	case rsaRaw:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)
	default:
		return nil, ErrTokenMechanism
	}
	var out []byte
	// Every C_Decrypt failure is crypto.ErrDecrypt: tokens report bad
	// OAEP padding in their own ways (SoftHSM2, opencryptoki:
	// CKR_ENCRYPTED_DATA_INVALID; others CKR_GENERAL_ERROR), so none is
	// told apart from a bad ciphertext (decisions.md D3).
	var decErr error
	err := k.tok.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		if err := ctx.DecryptInit(sh, []*pkcs11.Mechanism{mech}, k.handle); err != nil {
			return fmt.Errorf("hsm: C_DecryptInit (%s): %w", m, err)
		}
		out, decErr = ctx.Decrypt(sh, msg)
		return decErr
	})
	if decErr != nil {
		return nil, crypto.ErrDecrypt
	}
	if err != nil {
		return nil, err
	}
	if m == rsaOAEP {
		return out, nil
	}
	em, err := leftPad(out, k.pub.Size())
	if err != nil {
		return nil, err
	}
	pt, err := decodeOAEP(em, k.pub.Size(), label)
	if err != nil {
		clear(em)
		return nil, err
	}
	return pt, nil
}

// rsaMechanism returns the Token's RSA-OAEP mechanism, probing it with k
// the first time.
func (t *Token) rsaMechanism(k *tokenRSA) (rsaMechanism, error) {
	if m := rsaMechanism(t.rsaMech.Load()); m != rsaUnprobed {
		return m, nil
	}
	t.rsaProbe.Lock()
	defer t.rsaProbe.Unlock()
	if m := rsaMechanism(t.rsaMech.Load()); m != rsaUnprobed {
		return m, nil
	}
	m, err := probeRSA(k)
	if err != nil {
		return rsaUnprobed, err
	}
	t.rsaMech.Store(int32(m))
	return m, nil
}

// probeRSA decrypts a fresh RSA-OAEP (SHA-256, no label: exactly what the
// service decrypts) ciphertext of the standard library with k: first with the token's CKM_RSA_PKCS_OAEP, then with
// CKM_RSA_X_509 and decodeOAEP, and returns the first that gives the
// plaintext back. When neither does the error wraps ErrTokenMechanism and
// nothing is recorded, so that the next RSA2048 key probes again.
func probeRSA(k *tokenRSA) (rsaMechanism, error) {
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return rsaUnprobed, err
	}
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, k.pub, probe, nil)
	if err != nil {
		return rsaUnprobed, err
	}
	var why [2]error
	for i, m := range []rsaMechanism{rsaOAEP, rsaRaw} {
		got, err := k.decrypt(m, ct, nil)
		if err == nil && subtle.ConstantTimeCompare(got, probe) != 1 {
			err = errors.New("wrong plaintext")
		}
		if err == nil {
			return m, nil
		}
		why[i] = err
	}
	return rsaUnprobed, fmt.Errorf("%w: neither CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256 (%v) nor CKM_RSA_X_509 (%v) decrypted a probe",
		ErrTokenMechanism, why[0], why[1])
}

// RSADecryptMechanism names the mechanism this Token decrypts RSA-OAEP
// with, or "" until the first RSA2048 key was generated or used.
func (t *Token) RSADecryptMechanism() string {
	return rsaMechanism(t.rsaMech.Load()).String()
}
