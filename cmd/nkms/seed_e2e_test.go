package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/testkit"
)

// The documentation's seed file and what it declares.
const (
	exampleSeedFile = "../../docs/examples/seed.yaml"
	exampleSeedTag  = "3a922c672183301414e0844bc9624588f62db98294dab24455107880a1fcd9d2"
)

// seedEnv is the environment of the documentation's walk-through: the
// secrets the seed file reads, and the CI access key for the client.
var seedEnv = []string{
	"CI_SECRET=ci-secret-0123456789", "CI_APP_SECRET=app-secret-0123456789",
	"NKMS_ACCESS_KEY=CIACCESSKEY00001", "NKMS_SECRET_KEY=ci-secret-0123456789",
}

// nkmsAt runs a client command of the binary against p with env; it fails
// the test unless the command succeeds, and returns its stdout.
func nkmsAt(t *testing.T, p *testkit.Proc, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--endpoint", p.URL)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nkms %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestSeedWalkThrough runs the commands of the documentation: a server
// seeded with docs/examples/seed.yaml; a ciphertext of its fixed key
// decrypts on a server with a fresh data dir seeded with the same file; an
// export with material from a server that allows it seeds a third server
// that decrypts what the second encrypted with a later version.
func TestSeedWalkThrough(t *testing.T) {
	t.Parallel()
	// Data dirs without NKMS_ACCESS_KEY in the server's environment: the
	// seed declares the operator.
	serverEnv := []string{"NKMS_ACCESS_KEY=", "NKMS_SECRET_KEY=", seedEnv[0], seedEnv[1]}
	a := start(t, t.TempDir(), serverEnv, "--seed", exampleSeedFile)
	if out := a.Stderr.String(); !strings.Contains(out, "4 created, 0 already present") || strings.Contains(out, "NKMS_SECRET_KEY=") {
		t.Fatalf("first start:\n%s", out)
	}
	ct := strings.TrimSpace(nkmsAt(t, a, seedEnv, "encrypt", "--key", exampleSeedTag, "hello"))
	a.Stop(t)

	b := start(t, t.TempDir(), serverEnv, "--seed", exampleSeedFile, "--allow-material-export")
	if out := b.Stderr.String(); !strings.Contains(out, "WARNING: --allow-material-export") {
		t.Fatalf("no warning:\n%s", out)
	}
	if got := nkmsAt(t, b, seedEnv, "decrypt", "--key", exampleSeedTag, ct); got != "hello" {
		t.Fatalf("decrypt on a fresh data dir: %q", got)
	}
	nkmsAt(t, b, seedEnv, "key", "rotate", exampleSeedTag)
	ct2 := strings.TrimSpace(nkmsAt(t, b, seedEnv, "encrypt", "--key", exampleSeedTag, "version 2"))
	file := filepath.Join(t.TempDir(), "seed.yaml")
	nkmsAt(t, b, seedEnv, "seed", "export", "--material", "--out", file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v", err)
	}

	c := start(t, t.TempDir(), serverEnv, "--seed", file)
	if got := nkmsAt(t, c, seedEnv, "decrypt", "--key", exampleSeedTag, ct2); got != "version 2" {
		t.Fatalf("decrypt with the exported seed: %q", got)
	}
	if strings.Contains(c.Stderr.String(), "ci-secret") {
		t.Fatalf("a secret in the server's output:\n%s", c.Stderr)
	}
}
