package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// TestBackupRestoreHSM runs the binary against a SoftHSM2 token: a server
// whose root key the token wraps keeps a COMMON_HSM key (two versions) in
// the token and a BASIC key in software. nkms backup counts the two
// versions it holds only as references. nkms restore refuses without an
// HSM, and without --root-key-hsm for the wrapped root key file; with the
// flags it unwraps the root key through the token, checks the referenced
// objects and restores, and the restored server decrypts. Once the token's
// objects are gone, restore refuses and names the first missing version.
func TestBackupRestoreHSM(t *testing.T) {
	tok := hsmtest.NewToken(t) // sets SOFTHSM2_CONF, which the processes inherit
	ctx := context.Background()
	dir := t.TempDir()
	pin := []string{"NKMS_HSM_PIN=" + tok.PIN}
	hsmFlags := []string{"--hsm-module", tok.Module, "--hsm-token", tok.Token}
	rootFlags := append([]string{"--root-key-hsm", "nkms-root"}, hsmFlags...)
	p := start(t, dir, append(pin, credEnv...), rootFlags...)
	c := adminClient(t, p)
	hk, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "in-token", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rotate(ctx, hk.KeyTag); err != nil {
		t.Fatal(err)
	}
	bk, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "soft", KeyType: "AES256", ProtectionType: "BASIC"})
	if err != nil {
		t.Fatal(err)
	}
	hct, err := c.Encrypt(ctx, hk.KeyTag, []byte("token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	bct, err := c.Encrypt(ctx, bk.KeyTag, []byte("software"), nil)
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "b.db")
	_, stderr, err := nkmsRun(t, nil, "backup", "--out", backup, "--url", p.URL)
	if err != nil || !strings.Contains(stderr, "holds 2 COMMON_HSM key versions that live in an HSM token") ||
		!strings.Contains(stderr, "back up the token's objects with the HSM's own tools") {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	p.Stop(t)

	fresh := t.TempDir()
	restore := []string{"restore", "--in", backup, "--data-dir", fresh, "--root-key-file", filepath.Join(dir, "root.key")}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no HSM", nil, nil, "holds 2 COMMON_HSM key versions kept in an HSM token, and no HSM is given"},
		{"no --root-key-hsm", pin, hsmFlags, "wrapped by a key in an HSM token, and --root-key-hsm is not given"},
		{"no PIN", nil, rootFlags, "needs the token's user PIN"},
		{"other wrapping key", pin, append([]string{"--root-key-hsm", "other"}, hsmFlags...), `the token has no wrapping key labelled "other"`},
	} {
		_, stderr, err := nkmsRun(t, tc.env, append(restore, tc.args...)...)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("restore, %s: %v\n%s", tc.name, err, stderr)
		}
	}

	_, stderr, err = nkmsRun(t, pin, append(restore, rootFlags...)...)
	if err != nil || !strings.Contains(stderr, "the token has the objects of all 2 COMMON_HSM key versions") {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	p = start(t, fresh, append(pin, credEnv...), append([]string{"--root-key-file", filepath.Join(dir, "root.key")}, rootFlags...)...)
	c = adminClient(t, p)
	for ct, want := range map[string]string{hct: "token", bct: "software"} {
		key := hk.KeyTag
		if want == "software" {
			key = bk.KeyTag
		}
		if pt, err := c.Decrypt(ctx, key, ct, nil); err != nil || string(pt) != want {
			t.Errorf("decrypt on the restored server: %q, %v", pt, err)
		}
	}
	p.Stop(t)

	// The token loses the key objects (not the root key's wrapping key).
	ht, err := hsm.Open(tok)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ht.Objects()
	if err != nil || len(objs) == 0 {
		t.Fatalf("token objects: %d, %v", len(objs), err)
	}
	for _, o := range objs {
		if err := ht.Destroy(o.ID); err != nil {
			t.Fatal(err)
		}
	}
	ht.Close()
	_, stderr, err = nkmsRun(t, pin, append(restore, append([]string{"--force"}, rootFlags...)...)...)
	if err == nil || !strings.Contains(stderr, "lacks the objects of 2 of the 2 COMMON_HSM key versions") ||
		!strings.Contains(stderr, "(the first: key "+hk.KeyTag+" version 1)") {
		t.Fatalf("restore onto a token without the objects: %v\n%s", err, stderr)
	}
}
