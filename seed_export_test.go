package nkms_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
)

// TestApplySeedDestroyedTag: nkms keeps no record of destroyed tags, so a
// seed brings a destroyed key back under its tag; with its material, old
// ciphertexts decrypt again.
func TestApplySeedDestroyedTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newService(t)
	sd := testSeed(t, material(t, crypto.AES256))
	if _, err := s.ApplySeed(ctx, sd); err != nil {
		t.Fatal(err)
	}
	tag := mustTag(t, seedTag)
	ct, err := s.Encrypt(ctx, alice, tag, [][]byte{[]byte("kept")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestDeletion(ctx, alice, tag); err != nil {
		t.Fatal(err)
	}
	// Pending deletion: present, left as it is.
	rep, err := s.ApplySeed(ctx, sd)
	if err != nil || rep.Results[2].Outcome != nkms.SeedPresent || !strings.Contains(strings.Join(rep.Results[2].Kept, ","), "pending deletion") {
		t.Fatalf("apply over a REVOKE key: %+v, %v", rep.Results[2], err)
	}
	if err := s.DeleteKey(ctx, alice, tag); err != nil {
		t.Fatal(err)
	}
	rep, err = s.ApplySeed(ctx, sd)
	if err != nil || rep.Results[2].Outcome != nkms.SeedCreated {
		t.Fatalf("apply after destruction: %+v, %v", rep.Results[2], err)
	}
	pt, err := s.Decrypt(ctx, alice, tag, ct.Values, "")
	if err != nil || string(pt.Values[0]) != "kept" {
		t.Fatalf("decrypt with the re-seeded key: %v", err)
	}
}

// TestExportSeed: only operators export; material only when the server
// allows it; an export with material, seeded into a fresh service, decrypts
// and verifies what the first made, with every version.
func TestExportSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := newService(t)
	if _, err := a.ApplySeed(ctx, testSeed(t, material(t, crypto.AES256))); err != nil {
		t.Fatal(err)
	}
	tag := mustTag(t, seedTag)
	ct1, _ := a.Encrypt(ctx, alice, tag, [][]byte{[]byte("v1")}, "")
	if _, err := a.Rotate(ctx, alice, tag); err != nil {
		t.Fatal(err)
	}
	ct2, err := a.Encrypt(ctx, alice, tag, [][]byte{[]byte("v2")}, "")
	if err != nil || ct2.Version != 2 {
		t.Fatalf("encrypt with version 2: %+v, %v", ct2, err)
	}
	gone := create(t, a, alice, "leaving", nkms.AES256, false)
	if _, err := a.RequestDeletion(ctx, alice, gone.KeyTag()); err != nil {
		t.Fatal(err)
	}

	for _, c := range []nkms.Caller{
		bob, // an admin, of keystore 2
		{AccessKey: "v", Keystore: 1, Role: nkms.RoleManager},
	} {
		if _, err := a.ExportSeed(ctx, c, false); !errors.Is(err, &nkms.Error{Code: nkms.PermissionDenied}) {
			t.Errorf("%s of keystore %d: got %v, want PermissionDenied", c.Role, c.Keystore, err)
		}
	}
	if _, err := a.ExportSeed(ctx, alice, true); !errors.Is(err, nkms.ErrMaterialExportOff) ||
		!strings.Contains(nkms.ErrorMessage(err), "--allow-material-export") {
		t.Fatalf("material without the server's consent: %v", err)
	}

	x, err := a.ExportSeed(ctx, alice, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, ak := range x.AccessKeys {
		if ak.SecretKey != "" {
			t.Errorf("%s: a secret without --material", ak.AccessKey)
		}
	}
	for _, k := range x.Keys {
		if len(k.Material) > 0 {
			t.Errorf("%s: material without --material", k.Name)
		}
	}
	if len(x.Keys) != 3 || len(x.Skipped) != 1 || !strings.Contains(x.Skipped[0], gone.Tag) {
		t.Fatalf("export: %d keys, skipped %q", len(x.Keys), x.Skipped)
	}

	a.AllowMaterialExport = true
	x, err = a.ExportSeed(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newService(t)
	if _, err := b.ApplySeed(ctx, x.Seed); err != nil {
		t.Fatal(err)
	}
	pt, err := b.Decrypt(ctx, alice, tag, append(ct1.Values, ct2.Values...), "")
	if err != nil || !bytes.Equal(bytes.Join(pt.Values, nil), []byte("v1v2")) {
		t.Fatalf("B decrypts A's ciphertexts: %q, %v", pt.Values, err)
	}
	// A applies its own export: everything is present.
	rep, err := a.ApplySeed(ctx, x.Seed)
	if err != nil || rep.Count(nkms.SeedPresent) != len(rep.Results) {
		t.Fatalf("A applies its own export: %+v, %v", rep, err)
	}
}
