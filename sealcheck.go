package nkms

import (
	"fmt"

	"github.com/nkms/nkms/internal/crypto"
)

// CheckSealed reports whether everything sealed in k opens with root: the
// material of each version and the token generator's secret. The opened
// bytes are wiped at once. It is how a restore confirms that a backup's
// keys are whole, beyond the file's structure.
func CheckSealed(root *crypto.RootKey, k *Key) error {
	for _, v := range k.Versions {
		m, err := root.Open(v.Sealed, crypto.SealAD(k.Tag, v.Number))
		if err != nil {
			return fmt.Errorf("key %s version %d: %w", k.Tag, v.Number, err)
		}
		clear(m)
	}
	if g := k.TokenGen; len(g.SealedSecret) > 0 {
		secret, err := root.Open(g.SealedSecret, crypto.SealTokenGeneratorAD(k.Tag, g.ID))
		if err != nil {
			return fmt.Errorf("key %s token generator: %w", k.Tag, err)
		}
		clear(secret)
	}
	return nil
}

// CheckSealedAccessKey reports whether a's secret opens with root.
func CheckSealedAccessKey(root *crypto.RootKey, a *AccessKey) error {
	secret, err := root.Open(a.SealedSecret, crypto.SealSecretAD(a.ID))
	if err != nil {
		return fmt.Errorf("access key %s: %w", a.ID, err)
	}
	clear(secret)
	return nil
}
