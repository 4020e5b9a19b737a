//go:build cgo && !noetcd

package hsm

import (
	"errors"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// RootWrapKeyAttributes returns CKA_SENSITIVE and CKA_EXTRACTABLE of the
// root key wrapping key labelled label.
func RootWrapKeyAttributes(t *Token, label string) (sensitive, extractable bool, err error) {
	k, err := t.ctx.FindKey(nil, []byte(label))
	if err != nil {
		return false, false, err
	}
	attrs, err := t.ctx.GetAttributes(k, []crypto11.AttributeType{pkcs11.CKA_SENSITIVE, pkcs11.CKA_EXTRACTABLE})
	if err != nil {
		return false, false, err
	}
	s, e := attrs[pkcs11.CKA_SENSITIVE], attrs[pkcs11.CKA_EXTRACTABLE]
	if s == nil || e == nil || len(s.Value) != 1 || len(e.Value) != 1 {
		return false, false, errors.New("attributes missing")
	}
	return s.Value[0] != 0, e.Value[0] != 0, nil
}
