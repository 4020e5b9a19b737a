package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/hsm/hsmtest"
)

// runBenchRun runs bench/run briefly against the test's binary (BENCH_NKMS:
// nothing is built), one concurrency, no warm-up, without the wrk, mixed
// and cluster parts, and returns the markdown it wrote to BENCH_OUT, its
// stderr and its exit code.
func runBenchRun(t *testing.T, env ...string) (md, stderr string, code int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bench/run needs bash")
	}
	out := filepath.Join(t.TempDir(), "results.md")
	cmd := exec.Command("bash", filepath.Join("..", "..", "bench", "run"))
	cmd.Env = append(os.Environ(), "BENCH_NKMS="+binary, "BENCH_OUT="+out, "BENCH_DURATION=200ms", "BENCH_WARMUP=0",
		"BENCH_CONCURRENCY=1", "BENCH_WRK_ROUNDS=0", "BENCH_MIXED=0", "BENCH_CLUSTER=", "BENCH_BASELINE=", "BENCH_HSM=")
	cmd.Env = append(cmd.Env, env...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("bench/run: %v", err)
	}
	if ee != nil {
		code = ee.ExitCode()
	}
	b, _ := os.ReadFile(out) // absent when bench/run stops early
	return string(b), errOut.String(), code
}

// TestBenchRunHSM: with SoftHSM2 installed, bench/run measures the
// COMMON_HSM rows that BENCH_ONLY selects on a server with a throwaway
// token, beside the BASIC rows, says that SoftHSM2 is software, and a key
// type the token refuses (RSA2048 on SoftHSM2 2.6 today) gets a row that
// says so without failing the run.
func TestBenchRunHSM(t *testing.T) {
	t.Parallel()
	hsmtest.Module(t) // skips without softhsm2 (fails with CI=true)
	md, stderr, code := runBenchRun(t, "BENCH_ONLY=(encrypt AES256|sign RSA2048) 32")
	if code != 0 {
		t.Fatalf("bench/run exited %d\n%s\n%s", code, stderr, md)
	}
	num := `[0-9]+\.[0-9]+`
	for _, want := range []string{
		`\| encrypt \| AES256 \| 32 B \| 1 \| ` + num + ` \| `, // BASIC, in the main table
		`\| sign \| RSA2048 \| 32 B \| 1 \| ` + num + ` \| `,
		`## COMMON_HSM keys in a SoftHSM2 token beside BASIC keys`,
		`\*\*SoftHSM2 is a software token, not an HSM\.\*\*`,
		`A real HSM differs`,
		// BASIC req/s, COMMON_HSM req/s, their ratio, BASIC p99, COMMON_HSM p99, errors
		`\| encrypt \| AES256 \| 32 B \| 1 \| ` + num + ` \| ` + num + ` \| ` + num + ` \| ` + num + ` \| ` + num + ` \| 0 \|`,
		`\| sign \| RSA2048 \| 32 B \| 1 \| ` + num + ` \| (refused by the token \| \| ` + num + ` \| \| \||` + num + ` \| ` + num + ` \| ` + num + ` \| ` + num + ` \| 0 \|)`,
	} {
		if !regexp.MustCompile(want).MatchString(md) {
			t.Errorf("no match for %s in\n%s\n%s", want, md, stderr)
		}
	}
	if strings.Contains(md, "refused by the token |") &&
		!strings.Contains(md, "- sign RSA2048 COMMON_HSM: the server refused to create a COMMON_HSM RSA2048 key for the run") {
		t.Errorf("a refused row without the server's reason:\n%s", md)
	}
	for _, absent := range []string{"| decrypt |", "| sign | ECDSA |", "failed"} { // BENCH_ONLY left them out
		if strings.Contains(md, absent) {
			t.Errorf("%q in\n%s", absent, md)
		}
	}
}

// TestBenchRunWithoutHSM: BENCH_HSM=0 leaves the COMMON_HSM rows out, with
// one line saying why; a BENCH_ONLY that then matches nothing says that too.
func TestBenchRunWithoutHSM(t *testing.T) {
	t.Parallel()
	md, stderr, code := runBenchRun(t, "BENCH_HSM=0", "BENCH_ONLY=encrypt AES256 32")
	if code != 0 {
		t.Fatalf("bench/run exited %d\n%s\n%s", code, stderr, md)
	}
	if !regexp.MustCompile(`\| encrypt \| AES256 \| 32 B \| 1 \| [0-9]+\.[0-9]+ \| `).MatchString(md) ||
		!strings.Contains(md, "\nCOMMON_HSM rows left out: BENCH_HSM=0.\n") || strings.Contains(md, "COMMON_HSM keys in") {
		t.Errorf("BENCH_HSM=0:\n%s\n%s", md, stderr)
	}

	md, stderr, code = runBenchRun(t, "BENCH_HSM=0", "BENCH_ONLY=COMMON_HSM")
	want := "bench/run: BENCH_ONLY=COMMON_HSM matches no row of the suite (the COMMON_HSM rows are left out: BENCH_HSM=0)"
	if code != 2 || !strings.Contains(stderr, want) || md != "" {
		t.Errorf("BENCH_ONLY=COMMON_HSM with BENCH_HSM=0: exit %d\n%s\nwant exit 2 and %q", code, stderr, want)
	}
}
