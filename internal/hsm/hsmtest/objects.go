//go:build cgo && !noetcd

package hsmtest

import (
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/nkms/nkms/internal/hsm"
)

var classes = map[Class]uint{SecretKey: pkcs11.CKO_SECRET_KEY, PrivateKey: pkcs11.CKO_PRIVATE_KEY, PublicKey: pkcs11.CKO_PUBLIC_KEY}

// session runs f on a new read-write session of the token of cfg, through
// a *pkcs11.Ctx of its own: what another process, a crash or an operator's
// tool does to the token, behind the back of any open hsm.Token. It logs
// in unless the process already is, never logs out (that would log out
// every session of the process) and never finalizes the module.
func session(t testing.TB, cfg hsm.Config, f func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error) {
	t.Helper()
	ctx := pkcs11.New(cfg.Module)
	if ctx == nil {
		t.Fatalf("loading %s failed", cfg.Module)
	}
	defer ctx.Destroy()
	if err := ctx.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if info, err := ctx.GetTokenInfo(s); err != nil || info.Label != cfg.Token {
			continue
		}
		sh, err := ctx.OpenSession(s, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		defer ctx.CloseSession(sh)
		if err := ctx.Login(sh, pkcs11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
			t.Fatal(err)
		}
		if err := f(ctx, sh); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no token labelled %q", cfg.Token)
}

// find returns the objects of class c with CKA_ID id (at most 100).
func find(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle, id []byte, c Class) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, classes[c]), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	hs, _, err := ctx.FindObjects(sh, 100)
	if ferr := ctx.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	return hs, err
}

// DeleteObjects deletes every object of class c with CKA_ID id, whatever
// its label, and returns how many there were.
func DeleteObjects(t testing.TB, cfg hsm.Config, id []byte, c Class) int {
	t.Helper()
	n := 0
	session(t, cfg, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		hs, err := find(ctx, sh, id, c)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if err := ctx.DestroyObject(sh, h); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n
}

// CountObjects returns how many objects of class c with CKA_ID id the
// token has, whatever their labels.
func CountObjects(t testing.TB, cfg hsm.Config, id []byte, c Class) int {
	t.Helper()
	n := 0
	session(t, cfg, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		hs, err := find(ctx, sh, id, c)
		n = len(hs)
		return err
	})
	return n
}

// GenerateForeign makes an AES-256 token key (CKM_AES_KEY_GEN) with CKA_ID
// id and CKA_LABEL label, as another application sharing the token would,
// whatever the label: nkms must leave it alone unless it starts with
// hsm.LabelPrefix.
func GenerateForeign(t testing.TB, cfg hsm.Config, id []byte, label string) {
	t.Helper()
	session(t, cfg, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		_, err := ctx.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		})
		return err
	})
}

// Flags returns, for each object of class c with CKA_ID id, its boolean
// attributes CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_EXTRACTABLE by
// name ("token", "private", "sensitive", "extractable"), those it has.
func Flags(t testing.TB, cfg hsm.Config, id []byte, c Class) []map[string]bool {
	t.Helper()
	var out []map[string]bool
	session(t, cfg, func(ctx *pkcs11.Ctx, sh pkcs11.SessionHandle) error {
		hs, err := find(ctx, sh, id, c)
		if err != nil {
			return err
		}
		names := map[uint]string{pkcs11.CKA_TOKEN: "token", pkcs11.CKA_PRIVATE: "private",
			pkcs11.CKA_SENSITIVE: "sensitive", pkcs11.CKA_EXTRACTABLE: "extractable"}
		for _, h := range hs {
			m := map[string]bool{}
			for a, name := range names {
				attrs, err := ctx.GetAttributeValue(sh, h, []*pkcs11.Attribute{pkcs11.NewAttribute(a, nil)})
				if errors.Is(err, pkcs11.Error(pkcs11.CKR_ATTRIBUTE_TYPE_INVALID)) {
					continue // public keys have no CKA_SENSITIVE, CKA_EXTRACTABLE
				}
				if err != nil {
					return err
				}
				m[name] = len(attrs[0].Value) == 1 && attrs[0].Value[0] == 1
			}
			out = append(out, m)
		}
		return nil
	})
	return out
}
