//go:build cgo && !noetcd

package hsm

// Test-only doors into the token: importing known keys (Wycheproof) as
// sensitive, non-extractable objects with C_CreateObject, the token's
// CKM_AES_GCM wrapper of a key, an RSA key's Decrypter with a label, either
// RSA-OAEP mechanism on demand, and reading a secret attribute back (which
// the token must refuse).

import (
	gocrypto "crypto"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"math/big"

	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/crypto"
)

// Mechanism names of RSADecryptMechanism.
var (
	MechOAEP = rsaOAEP.String()
	MechRaw  = rsaRaw.String()
)

// ImportRSA stores priv in the token as a key pair with CKA_ID id and
// CKA_LABEL label: a private key with CKA_SENSITIVE and without
// CKA_EXTRACTABLE, and its public key.
func ImportRSA(t *Token, id []byte, label string, priv *rsa.PrivateKey) error {
	return ImportRSAUsage(t, id, label, priv, true)
}

// ImportRSAUsage is ImportRSA with CKA_SIGN of the private key set to sign:
// a key the token will not sign with is what a token that refuses the
// signing mechanism looks like to the probe.
func ImportRSAUsage(t *Token, id []byte, label string, priv *rsa.PrivateKey, sign bool) error {
	if len(priv.Primes) != 2 {
		return errors.New("ImportRSA: want a two-prime key")
	}
	priv.Precompute()
	e := big.NewInt(int64(priv.E)).Bytes()
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, priv.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, e),
		}
	}
	pub := append(common(pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true))
	prv := append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, sign),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, priv.D.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, priv.Primes[0].Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, priv.Primes[1].Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, priv.Precomputed.Dp.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, priv.Precomputed.Dq.Bytes()),
		pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, priv.Precomputed.Qinv.Bytes()))
	return t.createObjects(pub, prv)
}

// ImportAES stores key in the token as an AES secret key with CKA_ID id and
// CKA_LABEL label, CKA_SENSITIVE and without CKA_EXTRACTABLE.
func ImportAES(t *Token, id []byte, label string, key []byte) error {
	return ImportSecret(t, pkcs11.CKK_AES, id, label, key, true)
}

func (t *Token) createObjects(templates ...[]*pkcs11.Attribute) error {
	defer t.exclusive()()
	return t.raw.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		for _, tmpl := range templates {
			if _, err := ctx.CreateObject(sh, tmpl); err != nil {
				return err
			}
		}
		return nil
	})
}

// TokenGCM returns the token's CKM_AES_GCM wrapper (what Load puts in an
// AES256 Key) of the AES key with CKA_ID id.
func TokenGCM(t *Token, id []byte) (crypto.TokenAEAD, error) {
	keys, err := t.findKeys(id)
	if err != nil || len(keys) != 1 {
		return nil, errors.Join(ErrNoObject, err)
	}
	gcm, err := keys[0].NewGCM()
	if err != nil {
		return nil, err
	}
	return tokenGCM{gcm, t}, nil
}

// RSADecrypter returns the RSA key pair with CKA_ID id as Load wraps it.
func RSADecrypter(t *Token, id []byte) (gocrypto.Decrypter, error) {
	kps, err := t.findKeyPairs(id)
	if err != nil || len(kps) != 1 {
		return nil, errors.Join(ErrNoObject, err)
	}
	return t.loadRSA(kps[0], id)
}

// DecryptWith decrypts RSA-OAEP (SHA-256, with label) with the RSA key
// pair id through the named mechanism (MechOAEP or MechRaw), whatever the
// Token probed.
func DecryptWith(t *Token, id []byte, mech string, ct, label []byte) ([]byte, error) {
	d, err := RSADecrypter(t, id)
	if err != nil {
		return nil, err
	}
	k := d.(*tokenRSA)
	if len(ct) != k.pub.Size() || new(big.Int).SetBytes(ct).Cmp(k.pub.N) >= 0 {
		return nil, crypto.ErrDecrypt
	}
	for _, m := range []rsaMechanism{rsaOAEP, rsaRaw} {
		if m.String() == mech {
			return k.decrypt(m, ct, label)
		}
	}
	return nil, errors.New("DecryptWith: no such mechanism")
}

// SecretsReadable tries to read the secret value (CKA_VALUE of a secret or
// EC private key, CKA_PRIVATE_EXPONENT of an RSA private key) of every
// secret or private key object with CKA_ID id. It returns how many such
// objects there are and how many gave their secret out; every refusal
// must be CKR_ATTRIBUTE_SENSITIVE, any other failure is err.
func SecretsReadable(t *Token, id []byte) (objects, readable int, err error) {
	err = t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY} {
			tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}
			if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
				return err
			}
			hs, _, err := ctx.FindObjects(sh, 10)
			_ = ctx.FindObjectsFinal(sh)
			if err != nil {
				return err
			}
			for _, h := range hs {
				objects++
				kt, err := ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
				if err != nil {
					return err
				}
				attr := uint(pkcs11.CKA_VALUE)
				if len(kt[0].Value) == 8 && binary.NativeEndian.Uint64(kt[0].Value) == pkcs11.CKK_RSA {
					attr = pkcs11.CKA_PRIVATE_EXPONENT
				}
				_, err = ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(attr, nil)})
				switch {
				case err == nil:
					readable++
				case !errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_SENSITIVE)):
					return err
				}
			}
		}
		return nil
	})
	return objects, readable, err
}

// MechanismRefused and MechanismError are mechanismRefused and
// mechanismError.
var (
	MechanismRefused = mechanismRefused
	MechanismError   = mechanismError
)

// CheckAES runs Generate's check of a new AES key (and, when convergent,
// its HMAC key) with CKA_ID id: the mechanism probe, the first time.
func CheckAES(t *Token, id []byte, convergent bool) error { return t.checkAES(id, convergent) }

// CheckSign runs Generate's signing check of a new key pair of type alg
// with CKA_ID id: the probe, the first time for the type.
func CheckSign(t *Token, alg crypto.Algorithm, id []byte) error {
	ok := &t.ecdsaOK
	if alg == crypto.RSA2048 {
		ok = &t.pssOK
	}
	return t.checkSign(alg, id, ok)
}

// ImportSecret stores key in the token as a secret key of type keyType
// (pkcs11.CKK_AES or CKK_GENERIC_SECRET) with CKA_ID id and CKA_LABEL
// label, which may be used as usage says: CKA_ENCRYPT and CKA_DECRYPT, and
// CKA_SIGN and CKA_VERIFY, are set to it. A key that may not be used is
// what a token that refuses a mechanism looks like to the probes.
func ImportSecret(t *Token, keyType uint, id []byte, label string, key []byte, usage bool) error {
	return t.createObjects([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, usage && keyType == pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, usage && keyType == pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, usage && keyType == pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, usage && keyType == pkcs11.CKK_GENERIC_SECRET),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, key),
	})
}

// HMAC computes CKM_SHA256_HMAC of data in the token under the HMAC key
// with CKA_ID id, as a convergent key's nonces are.
func HMAC(t *Token, id, data []byte) ([]byte, error) {
	mac, err := t.loadHMAC(id)
	if err != nil {
		return nil, err
	}
	return mac(data)
}
