package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
)

// TestHSMConfig: the HSM settings Validate refuses, each with a message
// naming the flag; a binary without cgo refuses --hsm-module outright.
func TestHSMConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"token without module", func(c *Config) { c.HSMToken = "t" }, "--hsm-token needs --hsm-module"},
		{"pin file without module", func(c *Config) { c.HSMPINFile = "f" }, "--hsm-pin-file needs --hsm-module"},
		{"module without token", func(c *Config) { c.HSMModule, c.HSMPIN = "m.so", "1" }, "--hsm-module needs --hsm-token"},
		{"module without PIN", func(c *Config) { c.HSMModule, c.HSMToken = "m.so", "t" }, "needs the token's user PIN"},
		{"PIN twice", func(c *Config) { c.HSMModule, c.HSMToken, c.HSMPIN, c.HSMPINFile = "m.so", "t", "1", "f" }, "give one"},
		{"emulate with an HSM", func(c *Config) {
			c.HSMModule, c.HSMToken, c.HSMPIN, c.HSMEmulateSoftware = "m.so", "t", "1", true
		}, "not with --hsm-module"},
	} {
		cfg := testConfig(t)
		tc.set(&cfg)
		want := tc.want
		if !hsm.Supported && cfg.HSMModule != "" {
			want = "built without HSM support"
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, want)
		}
	}
}

// TestStartWithHSM: a server with a SoftHSM2 token (PIN from a file) makes
// a COMMON_HSM key that still works after a restart; a wrong PIN or token
// label refuses start-up with an error that says which and never shows the
// PIN; a restart without the HSM refuses, since a key's versions are in it.
func TestStartWithHSM(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.HSMModule, cfg.HSMToken = tok.Module, tok.Token
	cfg.LogLevel = "info"
	cfg.HSMPINFile = filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(cfg.HSMPINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	s, err := Start(ctx, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "in-token", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, k.KeyTag, []byte("kept"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rsa-in-token", KeyType: "RSA2048", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	rct, err := c.Encrypt(ctx, rk.KeyTag, []byte("kept by RSA"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"wrong PIN", func(c *Config) { c.HSMPINFile, c.HSMPIN = "", "wrong-pin-4242" }, "wrong PIN"},
		{"wrong token", func(c *Config) { c.HSMToken = "other-token" }, `no token labelled "other-token"`},
		{"no HSM", func(c *Config) { c.HSMModule, c.HSMToken, c.HSMPINFile = "", "", "" }, "kept in an HSM and no HSM is configured"},
	} {
		bad := cfg
		tc.set(&bad)
		_, err := Start(ctx, bad, &testkit.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "wrong-pin-4242") {
			t.Errorf("%s: got %v, want a refusal containing %q (and no PIN)", tc.name, err, tc.want)
		}
	}

	s, err = Start(ctx, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, err = client.New(s.URL, testAccessKey, testSecretKey); err != nil {
		t.Fatal(err)
	}
	if pt, err := c.Decrypt(ctx, k.KeyTag, ct, nil); err != nil || string(pt) != "kept" {
		t.Fatalf("decrypt after a restart: %q, %v", pt, err)
	}
	for range 2 {
		if pt, err := c.Decrypt(ctx, rk.KeyTag, rct, nil); err != nil || string(pt) != "kept by RSA" {
			t.Fatalf("RSA decrypt after a restart: %q, %v", pt, err)
		}
	}
	// Each server says once how its token decrypts RSA-OAEP: the first when
	// it generates the RSA key, the second when it first decrypts with it.
	s.Close() // flushes the log
	if n := strings.Count(logs.String(), "RSA2048 keys decrypt RSA-OAEP in the token with CKM_RSA_"); n != 2 {
		t.Errorf("the RSA-OAEP mechanism was logged %d times, want once by each of the 2 servers:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), tok.PIN) {
		t.Errorf("the PIN appears in the server's output")
	}
}

// TestEmulateSoftwareSaysSo: --hsm-emulate-software accepts COMMON_HSM
// keys without an HSM and says so at start-up; the next start reports the
// key as kept in software.
func TestEmulateSoftwareSaysSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.HSMEmulateSoftware = true
	out := &testkit.Buffer{}
	s, err := Start(ctx, cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "COMMON_HSM keys are accepted and kept in software") {
		t.Errorf("start-up output does not mention the emulation:\n%s", out)
	}
	c, _ := client.New(s.URL, testAccessKey, testSecretKey)
	if _, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "emulated", KeyType: "ECDSA", ProtectionType: "COMMON_HSM"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cfg.HSMEmulateSoftware = false
	out = &testkit.Buffer{}
	s, err = Start(ctx, cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(out.String(), "nkms: 1 COMMON_HSM key(s) are kept in software") || !strings.Contains(out.String(), "nkms: hint:") {
		t.Errorf("start-up output does not report the software COMMON_HSM key:\n%s", out)
	}
}
