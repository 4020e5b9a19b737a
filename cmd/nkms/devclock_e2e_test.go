package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestDevClockThroughTheBinary runs the commands of the dev clock's
// documentation against `nkms server --dev-clock`: start-up warns; a key
// whose deletion was requested is gone after `nkms dev advance 72h`; a key
// with auto rotation every 30 days has version 2 after `nkms dev advance
// 720h`; and a restart on the same data dir keeps the moved clock.
func TestDevClockThroughTheBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, credEnv, "--dev-clock")
	if !strings.Contains(p.Stderr.String(), "WARNING: --dev-clock is on. Not for production") {
		t.Fatalf("no warning at start-up:\n%s", p.Stderr)
	}
	nkmsCmd := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), append(credEnv, "NKMS_ENDPOINT="+p.URL)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := nkmsCmd(args...)
		if err != nil {
			t.Fatalf("nkms %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	tagRE := regexp.MustCompile(`(?m)^[0-9a-f]{64}$`)
	doomed := tagRE.FindString(must("key", "create", "--name", "doomed"))
	rotating := tagRE.FindString(must("key", "create", "--name", "rotating", "--auto-rotation", "--rotation-period", "30"))
	must("key", "request-deletion", doomed, "--yes")
	if out := must("dev", "advance", "72h"); !regexp.MustCompile(`(?m) 72h0m0s +1 +0 +0$`).MatchString(out) {
		t.Fatalf("nkms dev advance 72h printed\n%s\nwant one key destroyed", out)
	}
	if out, err := nkmsCmd("key", "info", doomed); err == nil || !strings.Contains(out, "HTTP 404") {
		t.Fatalf("nkms key info of the destroyed key: %v\n%s", err, out)
	}
	if out := must("dev", "advance", "720h"); !regexp.MustCompile(`(?m) 792h0m0s +0 +1 +0$`).MatchString(out) {
		t.Fatalf("nkms dev advance 720h printed\n%s\nwant one key rotated", out)
	}
	if out := must("key", "versions", rotating); !strings.Contains(out, "2 (current)") {
		t.Fatalf("versions after the rotation period:\n%s", out)
	}
	p.Stop(t)

	p = start(t, dir, credEnv, "--dev-clock")
	if out := must("dev", "clock"); !regexp.MustCompile(`(?m) 792h0m0s$`).MatchString(out) {
		t.Fatalf("nkms dev clock after a restart:\n%s\nwant 792h0m0s ahead", out)
	}
	p.Stop(t)
}
