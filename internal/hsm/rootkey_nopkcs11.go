//go:build !cgo || noetcd

package hsm

import "github.com/nkms/nkms/internal/crypto"

// RootWrapKey refuses: this binary has no PKCS#11 support.
func (*Token) RootWrapKey(string, bool) (crypto.TokenAEAD, bool, error) {
	return nil, false, ErrNotBuilt
}
