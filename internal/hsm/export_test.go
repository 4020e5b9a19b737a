//go:build cgo && !noetcd

package hsm

import "github.com/nkms/nkms/internal/crypto"

// GenerateRSAUnchecked makes an RSA-2048 pair without Generate's OAEP
// self-test, for signing tests on tokens that cannot decrypt OAEP-SHA-256.
func GenerateRSAUnchecked(t *Token, id []byte) (*crypto.Key, func() error, error) {
	kp, err := t.ctx.GenerateRSAKeyPairWithLabel(id, []byte(LabelPrefix+"pss"), 2048)
	if err != nil {
		return nil, nil, err
	}
	k, err := crypto.NewTokenKeyPair(crypto.RSA2048, tokenSigner{kp})
	return k, kp.Delete, err
}
