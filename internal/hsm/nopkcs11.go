//go:build !cgo || noetcd

package hsm

import (
	"github.com/nkms/nkms/internal/crypto"
)

// Supported reports whether this binary can talk to a PKCS#11 module: not
// without cgo.
const Supported = false

// Token is never made in a binary without cgo.
type Token struct{}

// Open refuses: this binary has no PKCS#11 support.
func Open(Config) (*Token, error) { return nil, ErrNotBuilt }

// Close does nothing.
func (*Token) Close() error { return nil }

// Generate refuses.
func (*Token) Generate(crypto.Algorithm, bool, []byte, string) error { return ErrNotBuilt }

// Load refuses.
func (*Token) Load(crypto.Algorithm, bool, []byte) (*crypto.Key, error) { return nil, ErrNotBuilt }

// Destroy refuses.
func (*Token) Destroy([]byte) error { return ErrNotBuilt }

// Objects refuses.
func (*Token) Objects() ([]Object, error) { return nil, ErrNotBuilt }

// RSADecryptMechanism says nothing: there is no token.
func (*Token) RSADecryptMechanism() string { return "" }
