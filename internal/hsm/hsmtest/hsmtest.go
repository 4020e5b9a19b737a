// Package hsmtest makes a SoftHSM2 token for a test: a configuration file
// and a token directory in t.TempDir(), SOFTHSM2_CONF pointing at it, and a
// fresh token initialised with softhsm2-util. Tests that use it cannot be
// parallel (they set the environment). Without softhsm2 they are skipped,
// except when CI=true: CI installs softhsm2 (.ci/run), so there they fail.
package hsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nkms/nkms/internal/hsm"
)

// Module paths where Debian and other distributions install SoftHSM2.
var modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// Token PINs of every test token.
const (
	PIN   = "1234-user"
	SOPIN = "5678-so"
	Label = "nkms-test"
)

// Module returns the SoftHSM2 module path, or skips t (fails it with CI=true).
func Module(t testing.TB) string {
	t.Helper()
	if !hsm.Supported {
		t.Skip("built without cgo: no HSM support")
	}
	for _, m := range modules {
		if _, err := os.Stat(m); err == nil {
			if _, err := exec.LookPath("softhsm2-util"); err == nil {
				return m
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("softhsm2 is not installed (.ci/run installs it)")
	}
	t.Skip("softhsm2 is not installed (apt-get install softhsm2)")
	return ""
}

// NewToken makes a fresh SoftHSM2 token labelled Label with user PIN PIN in
// t's temporary directory (NewConf), points SOFTHSM2_CONF at it and returns
// the Config to open it.
func NewToken(t testing.TB) hsm.Config {
	t.Helper()
	mod := Module(t)
	t.Setenv("SOFTHSM2_CONF", NewConf(t))
	return hsm.Config{Module: mod, Token: Label, PIN: PIN}
}

// NewConf makes a SoftHSM2 configuration file with a token directory of its
// own in t's temporary directory, initialises a token labelled Label with
// the PINs SOPIN and PIN there, and returns the file's path, for
// SOFTHSM2_CONF. It leaves the environment alone: a test that runs
// processes gives each the configuration it should see.
func NewConf(t testing.TB) string {
	t.Helper()
	Module(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", Label, "--so-pin", SOPIN, "--pin", PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return conf
}

// Open opens the token of NewToken and closes it when t ends.
func Open(t testing.TB) *hsm.Token {
	t.Helper()
	tok, _ := OpenConfig(t)
	return tok
}

// OpenConfig is Open, and returns the token's Config as well (for
// DeleteObjects, CountObjects and GenerateForeign).
func OpenConfig(t testing.TB) (*hsm.Token, hsm.Config) {
	t.Helper()
	cfg := NewToken(t)
	tok, err := hsm.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return tok, cfg
}

// Class is a class of key objects in a token.
type Class int

// The classes of key objects.
const (
	SecretKey  Class = iota // CKO_SECRET_KEY
	PrivateKey              // CKO_PRIVATE_KEY
	PublicKey               // CKO_PUBLIC_KEY
)
