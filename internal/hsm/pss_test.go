//go:build cgo && !noetcd

package hsm_test

import (
	gocrypto "crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestTokenPSS signs through the token with RSASSA-PSS (SHA-256,
// MGF1-SHA-256, salt 222) and verifies with rsa.VerifyPSS, also on tokens
// that cannot decrypt OAEP-SHA-256 and so refuse RSA2048 keys (SoftHSM2
// 2.6): the pair is made here without Generate's OAEP self-test.
func TestTokenPSS(t *testing.T) {
	tok := hsmtest.Open(t)
	id, _ := crypto.RandomBytes(20)
	k, del, err := hsm.GenerateRSAUnchecked(tok, id)
	if err != nil {
		t.Fatal(err)
	}
	defer del()
	msg := []byte("message to sign")
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := k.PublicKeyPEM()
	b, _ := pem.Decode([]byte(p))
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	if err := rsa.VerifyPSS(pub.(*rsa.PublicKey), gocrypto.SHA256, digest[:], sig,
		&rsa.PSSOptions{SaltLength: 222, Hash: gocrypto.SHA256}); err != nil {
		t.Errorf("the token's PSS signature does not verify with salt 222: %v", err)
	}
}
