package main

import (
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// tourHeading is the README heading whose commands readme_tour.txtar runs.
const tourHeading = "A five-minute tour"

// TestDocs: every command of a ```sh block of README.md and docs/ names a
// command of the real command tree with flags that exist and values of
// their kind (nkms, go run ./cmd/nkms), a package, test and flag that exist
// (go test), or a program of otherPrograms; the README's tour is run by
// testdata/script/readme_tour.txtar; relative links resolve, anchors too.
func TestDocs(t *testing.T) {
	t.Parallel()
	d := &docsCheck{root: "../..", repo: "../..", tourScript: "testdata/script/readme_tour.txtar", tourHead: tourHeading}
	problems, err := d.run()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// The docs show about fifty commands: far fewer means the
	// check stopped finding them.
	if d.commands < 40 {
		t.Errorf("checked %d commands in README.md and docs/, want at least 40", d.commands)
	}
	t.Logf("checked %d commands", d.commands)
}

// TestDocsCheckCatches runs the check on testdata/docs, a README and docs/
// with a mistake of each kind, and wants exactly the problems of want.txt.
func TestDocsCheckCatches(t *testing.T) {
	t.Parallel()
	d := &docsCheck{root: "testdata/docs", repo: "../..", tourScript: "testdata/docs/tour.txtar", tourHead: tourHeading}
	problems, err := d.run()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/docs/want.txt")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(strings.TrimSpace(string(want)), "\n"), problems); diff != "" {
		t.Errorf("problems found in testdata/docs (-want +got):\n%s", diff)
	}
}

// TestDocsSigningExample runs the shell example of signing a request in
// docs/api.md, with bash, openssl and curl, against a server and wants the
// key list it asks for.
func TestDocsSigningExample(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{"bash", "openssl", "curl", "base64"} {
		if _, err := exec.LookPath(prog); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed: %v", prog, err)
			}
			t.Skipf("%s is not installed: %v", prog, err)
		}
	}
	text, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := commandLines("docs/api.md", string(text))
	var script []string
	for _, l := range lines {
		if strings.HasPrefix(l.text, "ts=") || len(script) > 0 && len(script) < 3 {
			script = append(script, l.text)
		}
	}
	if len(script) != 3 || !strings.Contains(script[1], "openssl dgst") || !strings.Contains(script[2], "curl") {
		t.Fatalf("docs/api.md: the signing example is not the three lines ts=…, sig=…, curl …: %q", script)
	}
	url, stop, err := startScriptServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	const docURL = "http://127.0.0.1:8383"
	body := strings.Join(script, "\n")
	if !strings.Contains(body, docURL) {
		t.Fatalf("the signing example does not call %s: %s", docURL, body)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(body, docURL, url))
	cmd.Env = append(os.Environ(), "NKMS_ACCESS_KEY="+testAccessKey, "NKMS_SECRET_KEY="+testSecretKey)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the signing example: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"code":"SUCCESS"`) {
		t.Errorf("the signing example answered %s, want a key list with \"code\":\"SUCCESS\"", out)
	}
}

// TestDocsFirstScreen: the README's first block is the two commands of its
// first screen, the server that needs no setup and the test command, and
// .ci/run runs that test command (uncached, with -count=1).
func TestDocsFirstScreen(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := commandLines("README.md", string(text))
	var first []string
	for _, l := range lines {
		if l.section != "nkms" {
			break
		}
		cmds, err := splitCommands(l.text)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			first = append(first, strings.Join(texts(c), " "))
		}
	}
	want := []string{"go run ./cmd/nkms server", "go test -race ./..."}
	if diff := cmp.Diff(want, first[:min(len(first), 2)]); diff != "" {
		t.Errorf("README.md's first commands (-want +got):\n%s", diff)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\ngo test -race -count=1 ./...\n") {
		t.Errorf(".ci/run does not run the README's test command, go test -race ./... (as go test -race -count=1 ./...)")
	}
}

// FuzzSplitCommands: the docs check's shell splitter never panics, and
// every command it returns has a program.
func FuzzSplitCommands(f *testing.F) {
	for _, s := range []string{
		`TAG=$(nkms key create --name payroll)   # a comment`,
		`source <(nkms completion bash)`,
		`sig=$(printf 'GET %s\n' "$uri" | openssl dgst -sha256 -binary | base64)`,
		`nkms encrypt --key $TAG "a \"b\" c" 2>&1 > out && nkms key list; echo ${X}`,
		`nkms encrypt --key $TAG 'unclosed`, `$(`, `<(`, `"$(`, `\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := splitCommands(line)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if len(c) == 0 {
				t.Fatalf("splitCommands(%q): an empty command", line)
			}
		}
	})
}

// TestDocsSeedExample: the seed file docs/testing.md shows is
// docs/examples/seed.yaml (without its opening comment), the file the seed
// tests start servers with (seed_e2e_test.go, internal/server).
func TestDocsSeedExample(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../docs/testing.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(page), "\n```yaml\n")
	if !ok {
		t.Fatal("docs/testing.md has no ```yaml block")
	}
	block, _, _ = strings.Cut(block, "\n```")
	file, err := os.ReadFile("../../docs/examples/seed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	for len(lines) > 0 && (strings.HasPrefix(lines[0], "#") || lines[0] == "") {
		lines = lines[1:]
	}
	if diff := cmp.Diff(strings.Join(lines, "\n"), strings.TrimSpace(block)); diff != "" {
		t.Errorf("docs/testing.md's seed file differs from docs/examples/seed.yaml (-file +docs):\n%s", diff)
	}
}

// TestDocsNameEveryCommandAndServerFlag: docs/cli.md's table of commands
// names every command and subcommand of the real command tree, and
// docs/operations/server.md's table every flag of nkms server, so that a new
// one cannot go undocumented.
func TestDocsNameEveryCommandAndServerFlag(t *testing.T) {
	t.Parallel()
	cliPage, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(cliPage), "## Commands\n")
	table, _, _ = strings.Cut(table, "\n## ")
	root := rootCommand(&cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command, path string)
	walk = func(c *cobra.Command, path string) {
		for _, sub := range c.Commands() {
			if sub.Hidden {
				continue
			}
			// A top-level command appears as `nkms NAME…`; a subcommand as
			// NAME among its parent's (`nkms key create\|list`).
			if path == "nkms" && !strings.Contains(table, "`nkms "+sub.Name()) && !strings.Contains(table, `\|`+sub.Name()) {
				t.Errorf("docs/cli.md's table of commands does not name nkms %s", sub.Name())
			}
			if path != "nkms" && !regexp.MustCompile(`[ |]`+regexp.QuoteMeta(sub.Name())+`[ \\|`+"`"+`]`).MatchString(table) {
				t.Errorf("docs/cli.md's table of commands does not name %s %s", path, sub.Name())
			}
			walk(sub, path+" "+sub.Name())
		}
	}
	walk(root, "nkms")

	serverPage, err := os.ReadFile("../../docs/operations/server.md")
	if err != nil {
		t.Fatal(err)
	}
	serverCommand(io.Discard).Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(string(serverPage), "`--"+f.Name) {
			t.Errorf("docs/operations/server.md does not describe nkms server --%s", f.Name)
		}
	})
}
