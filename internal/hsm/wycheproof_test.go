//go:build cgo && !noetcd

package hsm_test

// Wycheproof vectors (the github.com/c2sp/wycheproof module's test data)
// through the token: each vector's key is imported into a SoftHSM2 token
// as a sensitive, non-extractable object (C_CreateObject, a test-only
// door in export_test.go), and the vector runs through the code that
// COMMON_HSM keys use: the Key that Token.Load makes (Key.Decrypt), and for
// what Key.Decrypt cannot express (an OAEP label, GCM associated data and
// a given nonce) the same token wrappers underneath it (the RSA key's
// Decrypter, the CKM_AES_GCM TokenAEAD). As in internal/crypto's
// Wycheproof tests (both through internal/testkit/wycheproof), "valid"
// must pass, "invalid" must fail, "acceptable" may do either, and a run
// below its floor fails.

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit/wycheproof"
)

// TestWycheproofTokenRSAOAEP: RSA-OAEP-2048 with SHA-256 and MGF1-SHA-256
// decrypted by the token (SoftHSM2, and the token of NKMS_TEST_HSM_MODULE
// when set): vectors without a label through Key.Decrypt of the Key that
// Token.Load makes (the service's path, with the mechanism the Token
// probed) and through CKM_RSA_X_509 with nkms's decoding; labelled vectors,
// which the service never decrypts, through CKM_RSA_X_509 with the label.
func TestWycheproofTokenRSAOAEP(t *testing.T) {
	eachRSAToken(t, func(t *testing.T, tok *hsm.Token) {
		var ids [][]byte
		defer func() {
			for _, id := range ids {
				tok.Destroy(id)
			}
		}()
		keys := map[*wycheproof.Group][]byte{}
		viaKey := 0
		wycheproof.Run(t, "RSA-OAEP-2048-SHA256 in the token", 37, []wycheproof.VectorFile{{Name: "rsa_oaep_2048_sha256_mgf1sha256_test.json", Skip: func(g *wycheproof.Group) string {
			if g.SHA != "SHA-256" || g.MGF != "MGF1" || g.MGFSHA != "SHA-256" || g.KeySize != 2048 {
				return "not RSA-2048 with SHA-256 and MGF1-SHA-256"
			}
			return ""
		}}}, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
			id := keys[g]
			if id == nil {
				priv, err := x509.ParsePKCS8PrivateKey(g.PrivateKeyPKCS8)
				if err != nil {
					t.Fatal(err)
				}
				id, _ = crypto.RandomBytes(20)
				if err := hsm.ImportRSA(tok, id, hsm.LabelPrefix+"wycheproof", priv.(*rsa.PrivateKey)); err != nil {
					t.Fatalf("importing the vector's key: %v", err)
				}
				ids = append(ids, id)
				if objs, readable, err := hsm.SecretsReadable(tok, id); err != nil || objs != 1 || readable != 0 {
					t.Fatalf("imported key: %d private objects, %d readable (%v); want 1, 0", objs, readable, err)
				}
				keys[g] = id
			}
			pt, err := hsm.DecryptWith(tok, id, hsm.MechRaw, tc.CT, tc.Label)
			if err != nil && !errors.Is(err, crypto.ErrDecrypt) {
				t.Errorf("CKM_RSA_X_509 decrypt error %v, want crypto.ErrDecrypt", err)
			}
			if err == nil && !bytes.Equal(pt, tc.Msg) {
				t.Errorf("CKM_RSA_X_509 decrypt = %x, want %x", pt, tc.Msg)
			}
			if len(tc.Label) == 0 {
				k, lerr := tok.Load(crypto.RSA2048, false, id)
				if lerr != nil {
					t.Fatal(lerr)
				}
				kpt, kerr := k.Decrypt(tc.CT, nil)
				if (kerr == nil) != (err == nil) || !bytes.Equal(kpt, pt) || (kerr != nil && !errors.Is(kerr, crypto.ErrDecrypt)) {
					t.Errorf("Key.Decrypt = %x, %v; CKM_RSA_X_509 = %x, %v", kpt, kerr, pt, err)
				}
				viaKey++
			}
			return err == nil
		})
		if viaKey == 0 {
			t.Error("no vector went through Key.Decrypt")
		}
		t.Logf("%d vectors through Key.Decrypt with %s", viaKey, tok.RSADecryptMechanism())
	})
}

// TestWycheproofTokenAESGCM: AES-256-GCM with 12-byte nonces and 16-byte
// tags in the token's CKM_AES_GCM: the TokenAEAD that Load puts in an
// AES256 Key opens every vector and seals the valid ones to the vector's
// bytes; vectors without associated data also go through Key.Decrypt.
func TestWycheproofTokenAESGCM(t *testing.T) {
	tok := hsmtest.Open(t)
	viaKey := 0
	wycheproof.Run(t, "AES-256-GCM in the token", 60, []wycheproof.VectorFile{{Name: "aes_gcm_test.json", Skip: func(g *wycheproof.Group) string {
		switch {
		case g.KeySize != 256:
			return "AES-128/192 key: COMMON_HSM keys are AES-256"
		case g.IVSize != 96:
			return "nonce other than 96 bits: an nkms body starts with a 12-byte nonce"
		case g.TagSize != 128:
			return "tag other than 128 bits"
		}
		return ""
	}}}, func(t *testing.T, g *wycheproof.Group, tc *wycheproof.Test) bool {
		id, _ := crypto.RandomBytes(20)
		if err := hsm.ImportAES(tok, id, hsm.LabelPrefix+"wycheproof", tc.Key); err != nil {
			t.Fatalf("importing the vector's key: %v", err)
		}
		defer tok.Destroy(id)
		if objs, readable, err := hsm.SecretsReadable(tok, id); err != nil || objs != 1 || readable != 0 {
			t.Fatalf("imported key: %d secret objects, %d readable (%v); want 1, 0", objs, readable, err)
		}
		aead, err := hsm.TokenGCM(tok, id)
		if err != nil {
			t.Fatal(err)
		}
		ctTag := append(bytes.Clone(tc.CT), tc.Tag...)
		pt, err := aead.Open(tc.IV, ctTag, tc.AAD)
		if err != nil && !errors.Is(err, crypto.ErrDecrypt) {
			t.Errorf("Open error %v, want crypto.ErrDecrypt", err)
		}
		if err == nil && !bytes.Equal(pt, tc.Msg) {
			t.Errorf("Open = %x, want %x", pt, tc.Msg)
		}
		if tc.Result == "valid" {
			got, serr := aead.Seal(tc.IV, tc.Msg, tc.AAD)
			if serr != nil || !bytes.Equal(got, ctTag) {
				t.Errorf("Seal = %x, %v; want %x", got, serr, ctTag)
			}
		}
		if len(tc.AAD) == 0 {
			k, lerr := tok.Load(crypto.AES256, false, id)
			if lerr != nil {
				t.Fatal(lerr)
			}
			kpt, kerr := k.Decrypt(append(bytes.Clone(tc.IV), ctTag...), []byte("ignored context"))
			if (kerr == nil) != (err == nil) || !bytes.Equal(kpt, pt) {
				t.Errorf("Key.Decrypt = %x, %v; Open = %x, %v", kpt, kerr, pt, err)
			}
			viaKey++
		}
		return err == nil
	})
	if viaKey == 0 {
		t.Error("no vector went through Key.Decrypt")
	}
	t.Logf("%d vectors also through Key.Decrypt", viaKey)
	if objs, err := tok.Objects(); err != nil || len(objs) != 0 {
		t.Errorf("objects left in the token: %d (%v)", len(objs), err)
	}
}
