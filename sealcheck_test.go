package nkms_test

import (
	"context"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/testkit"
)

// TestCheckSealed: every sealed value of a real key and access key opens
// with the service's root key; a changed byte in any of them, or another
// root key, is found.
func TestCheckSealed(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	ctx := context.Background()
	k := create(t, s, alice, "sealed", nkms.AES256, false)
	if _, err := s.Rotate(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTokenGenerator(ctx, alice, k.KeyTag()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := s.Store.Get(ctx, k.Tag)
	if err != nil {
		t.Fatal(err)
	}
	aks, err := s.Store.ListAccessKeys(ctx)
	if err != nil || len(aks) != 1 {
		t.Fatalf("access keys: %v, %v", aks, err)
	}
	if err := nkms.CheckSealed(s.Root, k); err != nil {
		t.Fatalf("a whole key: %v", err)
	}
	if err := nkms.CheckSealedAccessKey(s.Root, aks[0]); err != nil {
		t.Fatalf("a whole access key: %v", err)
	}

	other := testkit.RootKey(t)
	if nkms.CheckSealed(other, k) == nil || nkms.CheckSealedAccessKey(other, aks[0]) == nil {
		t.Error("another root key opens the sealed values")
	}
	for name, flip := range map[string]func(*nkms.Key){
		"version 1":       func(k *nkms.Key) { k.Versions[0].Sealed[20] ^= 1 },
		"version 2":       func(k *nkms.Key) { k.Versions[1].Sealed[len(k.Versions[1].Sealed)-1] ^= 0x80 },
		"token generator": func(k *nkms.Key) { k.TokenGen.SealedSecret[5] ^= 1 },
	} {
		bad := k.Clone()
		flip(bad)
		if err := nkms.CheckSealed(s.Root, bad); err == nil {
			t.Errorf("a changed byte in %s is not found", name)
		}
	}
	aks[0].SealedSecret[3] ^= 1
	if nkms.CheckSealedAccessKey(s.Root, aks[0]) == nil {
		t.Error("a changed byte in an access key's secret is not found")
	}
}
