// Package orders is an application that keeps card numbers encrypted under
// a key of NAVER Cloud KMS: the code that the tests beside it check against
// an nkms server started with nkmstest.
package orders

import (
	"context"

	"github.com/nkms/nkms/client"
)

// Vault seals card numbers under one KMS key.
type Vault struct {
	KMS    *client.Client
	KeyTag string
}

// Seal encrypts a card number.
func (v *Vault) Seal(ctx context.Context, card string) (string, error) {
	return v.KMS.Encrypt(ctx, v.KeyTag, []byte(card), nil)
}

// Open decrypts what Seal sealed.
func (v *Vault) Open(ctx context.Context, sealed string) (string, error) {
	pt, err := v.KMS.Decrypt(ctx, v.KeyTag, sealed, nil)
	return string(pt), err
}
