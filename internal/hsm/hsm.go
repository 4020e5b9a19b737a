// Package hsm keeps COMMON_HSM key versions in a PKCS#11 token (an HSM, or
// SoftHSM2 in tests) through github.com/ThalesGroup/crypto11 over
// github.com/miekg/pkcs11. Every version is a non-extractable, sensitive
// token object generated in the token; its operations run there, wrapped by
// internal/crypto in the same Key type as software keys.
//
// PKCS#11 needs cgo. Built with CGO_ENABLED=0, or with -tags noetcd (the
// small build: +2 MiB of idle RSS with PKCS#11 linked), this package still compiles,
// Supported is false and Open says that the binary has no HSM support.
//
// Mechanisms: CKM_AES_KEY_GEN and CKM_AES_GCM (AES256; convergent keys also
// CKM_GENERIC_SECRET_KEY_GEN and CKM_SHA256_HMAC for their nonces);
// CKM_RSA_PKCS_KEY_PAIR_GEN and CKM_RSA_PKCS_PSS (SHA-256, MGF1-SHA-256,
// salt 222) (RSA2048), and for RSA-OAEP decryption (SHA-256, MGF1-SHA-256)
// either CKM_RSA_PKCS_OAEP with those parameters or, on tokens that refuse
// them (SoftHSM2 2.6 takes only SHA-1), CKM_RSA_X_509 — the raw
// private-key operation, still in the token — with the EME-OAEP decoding
// done in constant time by nkms (oaep.go); each Token probes which once,
// with its first RSA2048 key, and RSADecryptMechanism names it;
// CKM_EC_KEY_PAIR_GEN (P-256) and CKM_ECDSA over a SHA-256 digest (ECDSA).
// Encryption and verification need no secret: internal/crypto does them in
// software with the public key. crypto11 generates keys, runs AES-GCM and
// signs; through github.com/miekg/pkcs11 directly go RSA decryption
// (rsa_pkcs11.go: crypto11 has no raw RSA decryption), the convergent
// nonces' single-part CKM_SHA256_HMAC (ops.go: crypto11 signs in parts,
// which crashes opencryptoki 3.8.1), the mechanism probes (mech_pkcs11.go),
// and listing and deleting objects (objects_pkcs11.go: crypto11 sees a key
// pair only whole, so not the lone half a crash or another tool leaves).
package hsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
)

// Config selects a token and logs in to it.
type Config struct {
	Module string // path of the PKCS#11 module (a .so file)
	Token  string // the token's label
	PIN    string // the user PIN; never logged, never in an error
}

// ErrNotBuilt is what Open returns in a binary built without cgo.
var ErrNotBuilt = errors.New("this nkms binary was built without HSM support (PKCS#11 needs cgo, and the small build -tags noetcd leaves it out: use a default build with CGO_ENABLED=1)")

// ErrTokenMechanism wraps crypto.ErrUnsupported: the token lacks a
// mechanism (or mechanism parameters) that a key type needs.
var ErrTokenMechanism = fmt.Errorf("hsm: the token does not support this key type's mechanisms: %w", crypto.ErrUnsupported)

// ErrNoObject is returned by Load when the token has no key with the id. It
// is nkms.ErrHSMNoObject, which the Service tells apart from a token failure.
var ErrNoObject = fmt.Errorf("hsm: %w", nkms.ErrHSMNoObject)

// LabelPrefix starts the CKA_LABEL of every object nkms makes; objects with
// other labels are never listed or deleted.
const LabelPrefix = "nkms:"

// Object is one nkms key object in the token: its CKA_ID and CKA_LABEL.
type Object = nkms.HSMObject

// checkConfig refuses an incomplete Config before the module is loaded.
func checkConfig(c Config) error {
	switch {
	case c.Module == "":
		return errors.New("hsm: no PKCS#11 module")
	case c.Token == "":
		return errors.New("hsm: no token label")
	case c.PIN == "":
		return errors.New("hsm: no PIN")
	}
	return nil
}

// redact removes the PIN from a message of the PKCS#11 library, in case one
// ever quotes it.
func redact(err error, pin string) error {
	if err == nil || pin == "" || !strings.Contains(err.Error(), pin) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), pin, "***"))
}
