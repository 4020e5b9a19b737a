//go:build cgo && !noetcd

package hsm

import (
	"fmt"

	"github.com/ThalesGroup/crypto11"
	"github.com/nkms/nkms/internal/crypto"
)

// RootWrapKey finds the AES key labelled label that wraps the root key
// (--root-key-hsm) and returns CKM_AES_GCM under it. When the token has no
// such key, create makes one (CKM_AES_KEY_GEN, AES-256, CKA_TOKEN,
// CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE) and created is true; otherwise the
// error wraps ErrNoWrapKey. Two AES keys with the label are refused as
// ambiguous.
func (t *Token) RootWrapKey(label string, create bool) (_ crypto.TokenAEAD, created bool, _ error) {
	if err := CheckRootKeyLabel(label); err != nil {
		return nil, false, err
	}
	release := t.shared()
	keys, err := t.ctx.FindKeys(nil, []byte(label))
	release()
	if err != nil {
		return nil, false, fmt.Errorf("hsm: finding the root key wrapping key %q: %w", label, err)
	}
	var aes []*crypto11.SecretKey
	for _, k := range keys {
		if k.Cipher == crypto11.CipherAES {
			aes = append(aes, k)
		}
	}
	var key *crypto11.SecretKey
	switch {
	case len(aes) == 1:
		key = aes[0]
	case len(aes) > 1:
		return nil, false, fmt.Errorf("hsm: the token has %d AES keys labelled %q: the root key's wrapping key must be the only one", len(aes), label)
	case !create:
		return nil, false, fmt.Errorf("%w (%q)", ErrNoWrapKey, label)
	default:
		attrs, err := crypto11.NewAttributeSetWithIDAndLabel(rootWrapID(label), []byte(label))
		if err == nil {
			err = attrs.Set(crypto11.CkaPrivate, true)
		}
		if err != nil {
			return nil, false, fmt.Errorf("hsm: %w", err)
		}
		release := t.exclusive()
		key, err = t.ctx.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES)
		release()
		if err != nil {
			return nil, false, fmt.Errorf("hsm: generating the root key wrapping key %q: %w", label, err)
		}
		created = true
	}
	gcm, err := key.NewGCM()
	if err != nil {
		return nil, false, fmt.Errorf("hsm: AES-GCM with the root key wrapping key: %w", err)
	}
	return tokenGCM{gcm, t}, created, nil
}

// rootWrapID is the CKA_ID of the root key's wrapping key labelled label;
// it does not collide with the random ids of key versions.
func rootWrapID(label string) []byte { return []byte("nkms-root-key-wrap:" + label) }
