//go:build cgo && !noetcd

package hsm

// Listing and deleting nkms's token objects, through github.com/miekg/pkcs11
// on the raw session pool rather than crypto11: crypto11 finds key pairs
// only by their private half and skips a private key whose public half is
// gone, and never lists a lone public key. A pair's halves are separate
// objects, deleted one after the other (crypto11: the private key, then the
// public key), so a crash in between leaves a lone half; a lone private key
// (its public half deleted by someone else) is secret material that must
// not outlive its key either. Here every key object counts on its own,
// found by its attributes.

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"
)

// keyClasses are the object classes of key material, in the order Destroy
// deletes them: secrets first, so that a Destroy cut short leaves no
// secret behind that the next one would have to find.
var keyClasses = []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY}

// findBatch is how many handles one C_FindObjects asks for.
const findBatch = 64

// findObjects returns the handles of every object that matches tmpl.
func findObjects(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, fmt.Errorf("hsm: C_FindObjectsInit: %w", err)
	}
	var all []pkcs11.ObjectHandle
	var err error
	for {
		var hs []pkcs11.ObjectHandle
		if hs, _, err = ctx.FindObjects(sh, findBatch); err != nil || len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if ferr := ctx.FindObjectsFinal(sh); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("hsm: C_FindObjects: %w", err)
	}
	return all, nil
}

// idLabel reads an object's CKA_ID and CKA_LABEL. ok is false for an object
// that is not nkms's (its label does not start with LabelPrefix, or it has
// no id) and for one that vanished meanwhile or whose attributes the token
// will not give: neither is listed or deleted. Any other failure is err.
func idLabel(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, h pkcs11.ObjectHandle) (o Object, ok bool, err error) {
	attrs, err := ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
	})
	var code pkcs11.Error
	if errors.As(err, &code) {
		switch code {
		case pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, pkcs11.CKR_ATTRIBUTE_SENSITIVE:
			return o, false, nil
		}
	}
	if err != nil {
		return o, false, fmt.Errorf("hsm: reading an object's id and label: %w", err)
	}
	for _, a := range attrs {
		switch a.Type {
		case pkcs11.CKA_ID:
			o.ID = bytes.Clone(a.Value)
		case pkcs11.CKA_LABEL:
			o.Label = string(a.Value)
		}
	}
	return o, len(o.ID) > 0 && strings.HasPrefix(o.Label, LabelPrefix), nil
}

// Objects lists the nkms key objects in the token (CKA_LABEL starting with
// LabelPrefix, and a CKA_ID): one entry per secret key object, and one per
// key pair id — the private and public halves with one id are one entry,
// with the label of the first found (the private half's), and a lone half
// is an entry of its own. Objects with other labels are never listed.
func (t *Token) Objects() ([]Object, error) {
	var out []Object
	err := t.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		pairs := map[string]bool{}
		for _, class := range keyClasses {
			hs, err := findObjects(ctx, sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)})
			if err != nil {
				return err
			}
			for _, h := range hs {
				o, ok, err := idLabel(ctx, sh, h)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if class != pkcs11.CKO_SECRET_KEY {
					if pairs[string(o.ID)] {
						continue
					}
					pairs[string(o.ID)] = true
				}
				out = append(out, o)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hsm: listing the token's objects: %w", err)
	}
	return out, nil
}

// Destroy deletes every nkms key object with CKA_ID id — secret keys,
// private keys and public keys, paired or alone — and nothing else: an
// object with the id whose label does not start with LabelPrefix stays. No
// object with that id is not an error, nor is one that another process
// deleted between finding and deleting it.
func (t *Token) Destroy(id []byte) error {
	defer t.exclusive()()
	return t.destroy(id)
}

// destroy is Destroy for a caller that holds the gate exclusively.
func (t *Token) destroy(id []byte) error {
	if len(id) == 0 {
		return errors.New("hsm: empty object id")
	}
	return t.raw.do(func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		for _, class := range keyClasses {
			hs, err := findObjects(ctx, sh, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
				pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			})
			if err != nil {
				return err
			}
			for _, h := range hs {
				o, ok, err := idLabel(ctx, sh, h)
				if err != nil {
					return err
				}
				if !ok || !bytes.Equal(o.ID, id) {
					continue
				}
				err = ctx.DestroyObject(sh, h)
				if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)) {
					return fmt.Errorf("hsm: C_DestroyObject: %w", err)
				}
			}
		}
		return nil
	})
}
