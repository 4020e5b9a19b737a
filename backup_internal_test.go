package nkms

import (
	"bytes"
	"testing"

	"github.com/nkms/nkms/internal/crypto"
)

// TestHSMRefCounts: a sealed token reference has exactly the length
// LooksLikeHSMRefs counts by (so nkms backup, which has no root key, counts
// what restore counts by opening), and no software material of any key
// type has it, whether the key is BASIC or an emulated COMMON_HSM one.
func TestHSMRefCounts(t *testing.T) {
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		t.Fatal(err)
	}
	id := bytes.Repeat([]byte{7}, hsmIDSize)
	ref, err := root.Seal(hsmRef(id), crypto.SealAD("t", 1))
	if err != nil {
		t.Fatal(err)
	}
	versions := []Version{{Number: 1, Sealed: ref}}
	for i, alg := range []crypto.Algorithm{crypto.AES256, crypto.RSA2048, crypto.ECDSA} {
		m, err := crypto.GenerateMaterial(alg)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := root.Seal(m, crypto.SealAD("t", i+2))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, Version{Number: i + 2, Sealed: sealed})
	}
	k := &Key{Tag: "t", Protection: ProtectionCommonHSM, Versions: versions}
	if n := LooksLikeHSMRefs(k); n != 1 {
		t.Errorf("LooksLikeHSMRefs = %d, want 1", n)
	}
	refs, err := HSMRefs(root, k)
	if err != nil || len(refs) != 1 || refs[0].Version != 1 || !bytes.Equal(refs[0].ID, id) {
		t.Errorf("HSMRefs = %v, %v", refs, err)
	}
	k.Protection = ProtectionBasic
	if n := LooksLikeHSMRefs(k); n != 0 {
		t.Errorf("LooksLikeHSMRefs of a BASIC key = %d", n)
	}
	if refs, err := HSMRefs(root, k); err != nil || refs != nil {
		t.Errorf("HSMRefs of a BASIC key = %v, %v", refs, err)
	}
}
