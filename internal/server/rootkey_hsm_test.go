package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
)

const rootLabel = "nkms-root"

// withRootKeyHSM sets the token of tok and --root-key-hsm on cfg.
func withRootKeyHSM(cfg Config, tok hsm.Config) Config {
	cfg.HSMModule, cfg.HSMToken, cfg.HSMPIN = tok.Module, tok.Token, tok.PIN
	cfg.RootKeyHSM = rootLabel
	return cfg
}

// encryptOnce starts cfg, makes a BASIC key, encrypts with it and stops.
func encryptOnce(t *testing.T, cfg Config, out *testkit.Buffer) (tag, ct string) {
	t.Helper()
	ctx := context.Background()
	s, err := Start(ctx, cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := client.New(s.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "under-root", KeyType: "AES256", ProtectionType: "BASIC"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err = c.Encrypt(ctx, k.KeyTag, []byte("sealed under the root key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.KeyTag, ct
}

// decryptAfter starts cfg and decrypts ct with key tag through HTTP.
func decryptAfter(t *testing.T, cfg Config, tag, ct string) {
	t.Helper()
	ctx := context.Background()
	s, err := Start(ctx, cfg, &testkit.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := client.New(s.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c.Decrypt(ctx, tag, ct, nil); err != nil || string(pt) != "sealed under the root key" {
		t.Fatalf("decrypt after a restart: %q, %v", pt, err)
	}
}

// refused starts cfg and wants an error containing want, never the PIN.
func refused(t *testing.T, name string, cfg Config, want string) {
	t.Helper()
	out := &testkit.Buffer{}
	s, err := Start(context.Background(), cfg, out)
	if err == nil {
		s.Close()
		t.Fatalf("%s: started, want a refusal containing %q", name, want)
	}
	if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), hsmtest.PIN) || strings.Contains(out.String(), hsmtest.PIN) {
		t.Errorf("%s: got %v, want a refusal containing %q (and no PIN)", name, err, want)
	}
}

// TestRootKeyHSM: the first start with --root-key-hsm makes the token's
// wrapping key and writes the root key wrapped (never the plain format); a
// restart unwraps it and the keys sealed under it still decrypt through
// HTTP. A wrong PIN, another wrapping key label, a start without
// --root-key-hsm, an altered file and a fresh token without the wrapping key
// each refuse start-up with a clear error.
func TestRootKeyHSM(t *testing.T) {
	tok := hsmtest.NewToken(t)
	cfg := withRootKeyHSM(testConfig(t), tok)
	out := &testkit.Buffer{}
	tag, ct := encryptOnce(t, cfg, out)
	if !strings.Contains(out.String(), `generated the root key wrapping key "nkms-root"`) {
		t.Errorf("first start did not say it made the wrapping key:\n%s", out)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	text, err := ReadRootKeyFile(cfg.RootKeyFile) // also checks mode 0600
	if err != nil {
		t.Fatal(err)
	}
	if !crypto.IsWrappedRootKeyFile(text) {
		t.Fatalf("the root key file is not wrapped: %.30q", text)
	}
	if _, err := crypto.ParseRootKeyFile(text); err == nil {
		t.Fatal("the wrapped file parses as a plain root key file")
	}

	decryptAfter(t, cfg, tag, ct)

	bad := cfg
	bad.HSMPIN = "wrong-pin-4242"
	refused(t, "wrong PIN", bad, "wrong PIN")
	bad = cfg
	bad.RootKeyHSM = "other-label"
	refused(t, "another wrapping key label", bad, `no wrapping key labelled "other-label"`)
	bad = cfg
	bad.RootKeyHSM = ""
	refused(t, "with the HSM, without --root-key-hsm", bad, "wrapped by a key in an HSM token, and --root-key-hsm is not given")
	bad.HSMModule, bad.HSMToken, bad.HSMPIN = "", "", ""
	refused(t, "without the HSM", bad, "wrapped by a key in an HSM token, and --root-key-hsm is not given")

	// An altered file: the same key does not unwrap it.
	sealed, err := crypto.ParseWrappedRootKeyFile(text)
	if err != nil {
		t.Fatal(err)
	}
	sealed[len(sealed)-1] ^= 1
	altered := bytes.Replace(text, text[len("nkms-wrapped-root-key:v1:"):len(text)-1], []byte(b64(sealed)), 1)
	if err := os.WriteFile(cfg.RootKeyFile, altered, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, "altered file", cfg, `the token's key "nkms-root" does not unwrap root key file`)
	if err := os.WriteFile(cfg.RootKeyFile, text, 0o600); err != nil {
		t.Fatal(err)
	}
	decryptAfter(t, cfg, tag, ct)

	// A fresh token with the same label has no wrapping key: the stolen data
	// file and root key file are useless without the original token.
	fresh := hsmtest.NewToken(t)
	refused(t, "fresh token", withRootKeyHSM(cfg, fresh), `the token has no wrapping key labelled "nkms-root"`)
}

// TestMigrateRootKeyToHSM: a data directory made without an HSM is
// converted while no server runs (refused while one does); the old keys then
// decrypt on a server started with --root-key-hsm; a second migration is a
// no-op, and one with another label is refused.
func TestMigrateRootKeyToHSM(t *testing.T) {
	ctx := context.Background()
	tok := hsmtest.NewToken(t)
	plainCfg := testConfig(t)
	tag, ct := encryptOnce(t, plainCfg, &testkit.Buffer{})
	if err := plainCfg.Validate(); err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(plainCfg.RootKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	mcfg := withRootKeyHSM(Config{DataDir: plainCfg.DataDir}, tok)

	s, err := Start(ctx, plainCfg, &testkit.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = MigrateRootKeyToHSM(ctx, mcfg)
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "is an nkms server running") {
		t.Fatalf("migrate under a running server: %v, want a refusal", err)
	}
	if now, _ := os.ReadFile(plainCfg.RootKeyFile); !bytes.Equal(now, plain) {
		t.Fatal("a refused migration changed the root key file")
	}

	res, err := MigrateRootKeyToHSM(ctx, mcfg)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CreatedWrapKey || !res.DataFile || res.AlreadyWrapped {
		t.Errorf("first migration: %+v", res)
	}
	wrapped, err := ReadRootKeyFile(plainCfg.RootKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !crypto.IsWrappedRootKeyFile(wrapped) || bytes.Contains(wrapped, bytes.TrimSpace(plain)) {
		t.Fatalf("after migration the file is not wrapped: %.30q", wrapped)
	}

	res, err = MigrateRootKeyToHSM(ctx, mcfg)
	if err != nil || !res.AlreadyWrapped {
		t.Fatalf("second migration: %+v, %v; want a no-op", res, err)
	}
	if now, _ := os.ReadFile(plainCfg.RootKeyFile); !bytes.Equal(now, wrapped) {
		t.Fatal("the second migration changed the file")
	}
	other := mcfg
	other.RootKeyHSM = "other-label"
	if _, err := MigrateRootKeyToHSM(ctx, other); err == nil || !strings.Contains(err.Error(), "already wrapped, but") {
		t.Fatalf("migration with another label: %v, want a refusal", err)
	}

	refused(t, "plain start after migration", plainCfg, "--root-key-hsm is not given")
	decryptAfter(t, withRootKeyHSM(plainCfg, tok), tag, ct)
}

// TestMigrateRefusals: migration refuses a root key that is not the data
// file's, and a missing root key file, before touching the token.
func TestMigrateRefusals(t *testing.T) {
	ctx := context.Background()
	tok := hsmtest.NewToken(t)
	cfg := testConfig(t)
	encryptOnce(t, cfg, &testkit.Buffer{})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.NewRootKeyFile()
	if err := os.WriteFile(cfg.RootKeyFile, other, 0o600); err != nil {
		t.Fatal(err)
	}
	mcfg := withRootKeyHSM(Config{DataDir: cfg.DataDir}, tok)
	if _, err := MigrateRootKeyToHSM(ctx, mcfg); err == nil || !strings.Contains(err.Error(), "is not the root key of") {
		t.Errorf("another root key: %v", err)
	}
	if now, _ := os.ReadFile(cfg.RootKeyFile); !bytes.Equal(now, other) {
		t.Error("a refused migration changed the root key file")
	}
	mcfg.DataDir = t.TempDir()
	if _, err := MigrateRootKeyToHSM(ctx, mcfg); err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Errorf("no root key file: %v", err)
	}
}

// TestRootKeyHSMConfig: --root-key-hsm needs the HSM settings and a usable
// label; a binary without HSM support says so.
func TestRootKeyHSMConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"no module", func(c *Config) { c.RootKeyHSM = "r" }, "--root-key-hsm needs --hsm-module"},
		{"reserved label", func(c *Config) {
			c.HSMModule, c.HSMToken, c.HSMPIN, c.RootKeyHSM = "m.so", "t", "1", "nkms:x"
		}, "choose another label"},
		{"control character", func(c *Config) {
			c.HSMModule, c.HSMToken, c.HSMPIN, c.RootKeyHSM = "m.so", "t", "1", "a\nb"
		}, "control or invalid character"},
	} {
		cfg := testConfig(t)
		tc.set(&cfg)
		want := tc.want
		if !hsm.Supported {
			want = "built without HSM support"
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, want)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func errorsUnwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
