package main

import (
	"context"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestRootKeyMigrateToHSM runs the binary: a server made without an HSM
// encrypts; nkms root-key migrate-to-hsm refuses while it runs, converts the
// stopped server's root key file, is a no-op the second time; the server
// started with --root-key-hsm decrypts the old ciphertext.
func TestRootKeyMigrateToHSM(t *testing.T) {
	tok := hsmtest.NewToken(t) // sets SOFTHSM2_CONF, which the processes inherit
	ctx := context.Background()
	dir := t.TempDir()
	p := start(t, dir, credEnv)
	c := adminClient(t, p)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "old", KeyType: "AES256", ProtectionType: "BASIC"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, k.KeyTag, []byte("before"), nil)
	if err != nil {
		t.Fatal(err)
	}
	migrate := []string{"root-key", "migrate-to-hsm", "--data-dir", dir,
		"--hsm-module", tok.Module, "--hsm-token", tok.Token, "--root-key-hsm", "nkms-root"}
	pin := []string{"NKMS_HSM_PIN=" + tok.PIN}
	if _, stderr, err := nkmsRun(t, pin, migrate...); err == nil || !strings.Contains(stderr, "is an nkms server running") {
		t.Fatalf("migrate under a running server: %v\n%s", err, stderr)
	}
	p.Stop(t)

	if _, stderr, err := nkmsRun(t, nil, migrate...); err == nil || !strings.Contains(stderr, "needs the token's user PIN") {
		t.Fatalf("migrate without a PIN: %v\n%s", err, stderr)
	}
	_, stderr, err := nkmsRun(t, pin, migrate...)
	if err != nil || !strings.Contains(stderr, "now holds the root key wrapped") || !strings.Contains(stderr, "destroy every copy of the old plain root key file") {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	if _, stderr, err := nkmsRun(t, pin, migrate...); err != nil || !strings.Contains(stderr, "already wrapped") {
		t.Fatalf("migrate twice: %v\n%s", err, stderr)
	}

	p = start(t, dir, append(pin, credEnv...), "--hsm-module", tok.Module, "--hsm-token", tok.Token, "--root-key-hsm", "nkms-root")
	defer p.Stop(t)
	c = adminClient(t, p)
	if pt, err := c.Decrypt(ctx, k.KeyTag, ct, nil); err != nil || string(pt) != "before" {
		t.Fatalf("decrypt after the migration: %q, %v", pt, err)
	}
}

// TestRootKeyHSMNotBuilt: a binary without HSM support says so for
// --root-key-hsm and for migrate-to-hsm.
func TestRootKeyHSMNotBuilt(t *testing.T) {
	if hsm.Supported {
		t.Skip("this binary has HSM support")
	}
	t.Parallel()
	dir := t.TempDir()
	for _, args := range [][]string{
		{"server", "--data-dir", dir, "--root-key-hsm", "r", "--hsm-module", "m.so", "--hsm-token", "t"},
		{"root-key", "migrate-to-hsm", "--data-dir", dir, "--root-key-hsm", "r", "--hsm-module", "m.so", "--hsm-token", "t"},
	} {
		_, stderr, err := nkmsRun(t, []string{"NKMS_HSM_PIN=1"}, args...)
		if err == nil || !strings.Contains(stderr, "built without HSM support") {
			t.Errorf("%s: %v\n%s", args[0], err, stderr)
		}
	}
}
