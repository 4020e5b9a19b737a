package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// This file is the docs check that TestDocs runs: every command of the
// README and docs/ is one a test runs or this check verifies, and every
// relative link between them resolves (docs/development.md says the rules).

// otherPrograms are the programs other than nkms and go that the docs may
// show, each with why the check does not run it.
var otherPrograms = map[string]string{
	"export":  "a shell builtin: sets the variables the next commands use",
	"source":  "a shell builtin: its <(nkms completion …) is checked as an nkms command",
	"curl":    "the signing example of docs/api.md is run by TestDocsSigningExample; the other curl lines show request shapes with <signature headers> placeholders, whose answers api's tests pin",
	"openssl": "part of the signing example, run by TestDocsSigningExample",
	"printf":  "part of the signing example, run by TestDocsSigningExample",
	"date":    "part of the signing example, run by TestDocsSigningExample",
	"base64":  "part of the signing example, run by TestDocsSigningExample",
	"pg_dump": "stands for any program that writes to stdout (the seal example)",
	"etcdctl": "etcd's own tool (snapshots of an etcd cluster); documented by etcd",
	"etcdutl": "etcd's own tool (restoring an etcd snapshot); documented by etcd",
	"bash":    "runs a script of the repository; the check makes sure the script exists",
}

// goTestFlags are the flags of go test the docs may use: true when the flag
// takes a value.
var goTestFlags = map[string]bool{
	"race": false, "short": false, "v": false, "json": false, "cover": false,
	"run": true, "count": true, "tags": true, "timeout": true, "fuzz": true, "fuzztime": true,
	"bench": true, "benchtime": true, "cpu": true, "p": true, "parallel": true,
}

// goBuildValueFlags are the build flags that take a value (go build, go
// install, go run).
var goBuildValueFlags = map[string]bool{"o": true, "tags": true, "C": true, "ldflags": true, "gcflags": true}

// docsCheck checks the Markdown of a tree laid out as the repository is:
// README.md and docs/**/*.md under root, the tour script at tourScript.
type docsCheck struct {
	root       string // the Markdown tree
	repo       string // the repository: packages, tests and scripts named by commands
	tourScript string
	tourHead   string // the README heading of the tour
	problems   []string
	commands   int // simple commands checked
}

func (d *docsCheck) fail(format string, args ...any) {
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
}

// markdownFiles are README.md and docs/**/*.md, relative to d.root.
func (d *docsCheck) markdownFiles() ([]string, error) {
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(d.root, "docs"), func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(d.root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

// run checks every file and returns the problems found, each "file:line: …".
func (d *docsCheck) run() ([]string, error) {
	files, err := d.markdownFiles()
	if err != nil {
		return nil, err
	}
	var tour []docLine
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(d.root, f))
		if err != nil {
			return nil, err
		}
		lines, problems := commandLines(f, string(text))
		d.problems = append(d.problems, problems...)
		for _, l := range lines {
			d.checkLine(l)
			if f == "README.md" && l.section == d.tourHead {
				tour = append(tour, l)
			}
		}
		d.checkLinks(f, string(text))
		d.checkInline(f, string(text))
	}
	if err := d.checkTour(tour); err != nil {
		return nil, err
	}
	return d.problems, nil
}

// checkLine checks each simple command of a command line.
func (d *docsCheck) checkLine(l docLine) {
	cmds, err := splitCommands(l.text)
	if err != nil {
		d.fail("%s: %v in %q", l.pos(), err, l.text)
		return
	}
	for _, c := range cmds {
		d.commands++
		if err := d.checkCommand(c, true); err != nil {
			d.fail("%s: %s: %v", l.pos(), strings.Join(texts(c), " "), err)
		}
	}
}

// inlineCodeSpanRE is a code span of prose, which may cross a line break.
var inlineCodeSpanRE = regexp.MustCompile("`([^`]+)`")

// checkInline checks the code spans of prose that are whole nkms or go
// commands (`nkms bench --concurrency 64`): the command and its flags must
// exist, as in checkLine, but the span may leave out arguments and required
// flags (`nkms audit verify`, `nkms config`); a span of alternatives
// (`nkms seal\|unseal`) is skipped.
func (d *docsCheck) checkInline(file, text string) {
	lines := strings.Split(text, "\n")
	var prose strings.Builder
	lineOf := []int{} // line number of each byte of prose
	inBlock := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			l = ""
		}
		if inBlock {
			l = ""
		}
		prose.WriteString(l + "\n")
		for range len(l) + 1 {
			lineOf = append(lineOf, i+1)
		}
	}
	for _, m := range inlineCodeSpanRE.FindAllStringSubmatchIndex(prose.String(), -1) {
		span := strings.Join(strings.Fields(prose.String()[m[2]:m[3]]), " ")
		if strings.Contains(prose.String()[m[2]:m[3]], "\n\n") || strings.Contains(span, "\\|") ||
			!(strings.HasPrefix(span, "nkms ") || strings.HasPrefix(span, "go run ") || strings.HasPrefix(span, "go test ") ||
				strings.HasPrefix(span, "go build ") || strings.HasPrefix(span, "go install ")) {
			continue
		}
		cmds, err := splitCommands(span)
		if err != nil || len(cmds) != 1 {
			continue
		}
		d.commands++
		if err := d.checkCommand(cmds[0], false); err != nil {
			d.fail("%s:%d: %s: %v", file, lineOf[m[2]], span, err)
		}
	}
}

func (d *docsCheck) checkCommand(c []word, whole bool) error {
	if c[0].dynamic {
		return fmt.Errorf("the program is a variable")
	}
	switch prog := c[0].text; prog {
	case "nkms":
		return checkNkms(c[1:], whole)
	case "go":
		return d.checkGo(c[1:], whole)
	case "podman":
		return checkPodman(c[1:], whole)
	case "bash":
		if len(c) < 2 || c[1].dynamic {
			return errors.New("bash needs a script of the repository")
		}
		if _, err := os.Stat(filepath.Join(d.repo, c[1].text)); err != nil {
			return fmt.Errorf("no script %s in the repository", c[1].text)
		}
		return nil
	default:
		if _, ok := otherPrograms[prog]; !ok {
			return fmt.Errorf("%s is neither nkms nor go, and not in otherPrograms (docs_check_test.go): add it there with the reason, or have a test run it", prog)
		}
		return nil
	}
}

// podmanCommands are the podman commands the docs may show: those that
// deploy/container's tests (and testcontainers' TestMain, for system
// service) run.
var podmanCommands = map[string]bool{
	"volume create": true, "run": true, "healthcheck run": true, "port": true, "exec": true, "cp": true,
	"system service": true,
}

// checkPodman checks a podman line: a command the container tests run, and
// the nkms command line it gives the image (after the image's name in
// podman run, after /nkms in podman exec) checked as checkNkms does.
func checkPodman(args []word, whole bool) error {
	if len(args) == 0 {
		return errors.New("podman without a command")
	}
	sub := args[0].text
	if len(args) > 1 && (sub == "volume" || sub == "healthcheck" || sub == "system") {
		sub += " " + args[1].text
	}
	if !podmanCommands[sub] {
		return fmt.Errorf("podman %s is not one of the podman commands the container tests run (podmanCommands)", sub)
	}
	for i, a := range args {
		switch {
		case sub == "run" && strings.HasPrefix(a.text, "localhost/nkms:"):
			if i+1 < len(args) {
				return checkNkms(args[i+1:], whole)
			}
			return nil
		case sub == "exec" && a.text == "/nkms":
			return checkNkms(args[i+1:], whole)
		}
	}
	if sub == "run" || sub == "exec" {
		return fmt.Errorf("podman %s of something other than the nkms image (localhost/nkms:TAG, /nkms)", sub)
	}
	return nil
}

// checkNkms checks an nkms command line against the real command tree, the
// way cobra executes one up to calling it: the command must exist and be
// runnable, its flags must exist and parse (a number for an int flag, a Go
// duration for a duration flag, …), and its arguments and required flags
// must satisfy it (when whole: a code span of prose may name a command
// without its arguments, `nkms audit verify`). A variable is accepted as a string flag's value or an
// argument only.
func checkNkms(args []word, whole bool) error {
	root := rootCommand(&cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strs := texts(args)
	cmd, rest, err := root.Find(strs)
	if err != nil {
		return err
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	if err := cmd.ParseFlags(rest); err != nil {
		return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if cmd.Flags().Lookup("help").Changed {
		return nil
	}
	// A variable as the value of a flag that is not a string cannot be checked.
	for i, a := range args {
		if !a.dynamic || i == 0 || !strings.HasPrefix(strs[i-1], "-") || strings.Contains(strs[i-1], "=") {
			continue
		}
		name := strings.TrimLeft(strs[i-1], "-")
		f := cmd.Flags().Lookup(name)
		if f == nil && len(name) == 1 {
			f = cmd.Flags().ShorthandLookup(name)
		}
		if f != nil && f.Value.Type() != "string" && f.Value.Type() != "bool" {
			return fmt.Errorf("%s: a variable (%s) as the value of %s flag --%s cannot be checked: show a value", cmd.CommandPath(), a.text, f.Value.Type(), f.Name)
		}
	}
	positional := cmd.Flags().Args()
	if !cmd.Runnable() {
		if len(positional) > 0 {
			return fmt.Errorf("%s has no command %q", cmd.CommandPath(), positional[0])
		}
		if !whole {
			return nil
		}
		return fmt.Errorf("%s needs a command", cmd.CommandPath())
	}
	if !whole {
		return nil
	}
	if err := cmd.ValidateArgs(positional); err != nil {
		return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateRequiredFlags(); err != nil {
		return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	if err := cmd.ValidateFlagGroups(); err != nil {
		return fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	return nil
}

// checkGo checks go run ./cmd/nkms (as nkms), go test, go build and go
// install.
func (d *docsCheck) checkGo(args []word, whole bool) error {
	if len(args) == 0 {
		return errors.New("go needs a command")
	}
	sub, rest := args[0].text, args[1:]
	switch sub {
	case "run", "build", "install":
		for i := 0; i < len(rest); i++ {
			a := rest[i].text
			if strings.HasPrefix(a, "-") {
				if goBuildValueFlags[strings.TrimLeft(a, "-")] {
					i++
				}
				continue
			}
			if err := d.checkPackage(a); err != nil {
				return err
			}
			if sub == "run" {
				if a != "./cmd/nkms" {
					return fmt.Errorf("go run of %s: the check knows only ./cmd/nkms", a)
				}
				return checkNkms(rest[i+1:], whole)
			}
		}
		return nil
	case "test":
		return d.checkGoTest(rest)
	default:
		return fmt.Errorf("go %s: the check knows go run, test, build and install", sub)
	}
}

// checkPackage checks that a package pattern names Go packages of the module.
func (d *docsCheck) checkPackage(pkg string) error {
	dir := strings.TrimSuffix(pkg, "/...")
	if !strings.HasPrefix(dir, ".") {
		return fmt.Errorf("package %s: the docs name packages by their path from the repository root (./…)", pkg)
	}
	if m, _ := filepath.Glob(filepath.Join(d.repo, dir, "*.go")); len(m) == 0 && !strings.HasSuffix(pkg, "/...") {
		return fmt.Errorf("no Go package %s", pkg)
	}
	return nil
}

// checkGoTest checks go test: known flags, packages that exist, -run names
// of tests (and TestScripts/NAME of scripts) that exist in them, and the
// package's own flags (-crashloop.duration=10m).
func (d *docsCheck) checkGoTest(args []word) error {
	var pkgs, runs, benches, own []string
	for i := 0; i < len(args); i++ {
		a := args[i].text
		if !strings.HasPrefix(a, "-") {
			pkgs = append(pkgs, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, known := goTestFlags[name]
		if !known {
			own = append(own, name)
			continue
		}
		if takesValue && !hasValue {
			if i+1 >= len(args) {
				return fmt.Errorf("go test -%s needs a value", name)
			}
			i++
			value = args[i].text
		}
		switch {
		case name == "run" && value == "^$": // no test: only benchmarks or fuzzing
		case name == "run":
			runs = append(runs, strings.Split(value, "|")...)
		case name == "bench":
			benches = append(benches, strings.Split(value, "|")...)
		}
	}
	if len(pkgs) == 0 {
		return errors.New("go test without a package: name one (./...)")
	}
	for _, p := range pkgs {
		if err := d.checkPackage(p); err != nil {
			return err
		}
	}
	if len(runs) == 0 && len(benches) == 0 && len(own) == 0 {
		return nil
	}
	if len(pkgs) != 1 || strings.HasSuffix(pkgs[0], "/...") {
		return errors.New("go test -run or a package's own flag: name one package, so that the check can find them")
	}
	src, err := testSources(filepath.Join(d.repo, pkgs[0]))
	if err != nil {
		return err
	}
	for _, r := range runs {
		test, sub, _ := strings.Cut(strings.Trim(r, "^$"), "/")
		if !regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(test) + `\(t \*testing\.T\)`).MatchString(src) {
			return fmt.Errorf("-run %s: no test %s in %s", r, test, pkgs[0])
		}
		if test == "TestScripts" && sub != "" {
			if _, err := os.Stat(filepath.Join(d.repo, pkgs[0], "testdata/script", sub+".txtar")); err != nil {
				return fmt.Errorf("-run %s: no script testdata/script/%s.txtar in %s", r, sub, pkgs[0])
			}
		}
	}
	for _, b := range benches {
		bench, _, _ := strings.Cut(strings.Trim(b, "^$"), "/")
		if bench != "." && !regexp.MustCompile(`(?m)^func `+regexp.QuoteMeta(bench)+`\(b \*testing\.B\)`).MatchString(src) {
			return fmt.Errorf("-bench %s: no benchmark %s in %s", b, bench, pkgs[0])
		}
	}
	for _, f := range own {
		if !strings.Contains(src, `flag.`) || !regexp.MustCompile(`flag\.\w+\("`+regexp.QuoteMeta(f)+`"`).MatchString(src) {
			return fmt.Errorf("-%s: %s defines no such flag", f, pkgs[0])
		}
	}
	return nil
}

// testSources is the text of a package's _test.go files.
func testSources(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no tests in %s", dir)
	}
	var b strings.Builder
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(text)
	}
	return b.String(), nil
}

// checkTour checks that every nkms line of the README's tour (but nkms
// server, whose place the script's own server takes) is a line of the tour
// script, which TestScripts runs.
func (d *docsCheck) checkTour(tour []docLine) error {
	if len(tour) == 0 {
		d.fail("README.md: no commands under the heading %q (the tour)", d.tourHead)
		return nil
	}
	text, err := os.ReadFile(d.tourScript)
	if err != nil {
		return err
	}
	var script [][]string
	for _, l := range strings.Split(string(text), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "!"))
		if rest, ok := strings.CutPrefix(l, "exec nkms "); ok {
			cmds, err := splitCommands(rest)
			if err != nil || len(cmds) != 1 {
				return fmt.Errorf("%s: cannot read %q", d.tourScript, l)
			}
			script = append(script, texts(cmds[0]))
		}
	}
	for _, l := range tour {
		cmds, err := splitCommands(l.text)
		if err != nil {
			continue // reported by checkLine
		}
		for _, c := range cmds {
			args := nkmsArgs(texts(c))
			if args == nil || len(args) > 0 && args[0] == "server" {
				continue
			}
			if !slices.ContainsFunc(script, func(s []string) bool { return slices.Equal(s, args) }) {
				line := strings.Join(quoteWords(args), " ")
				d.fail("%s: the tour's nkms %s is not run by %s (add it there: exec nkms %s)",
					l.pos(), line, filepath.Base(d.tourScript), line)
			}
		}
	}
	return nil
}

// quoteWords quotes the words with spaces, as a script line needs them.
func quoteWords(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w
		if strings.ContainsAny(w, " \t") {
			out[i] = "'" + w + "'"
		}
	}
	return out
}

// nkmsArgs returns the arguments of an nkms or go run ./cmd/nkms command,
// nil for another.
func nkmsArgs(c []string) []string {
	switch {
	case len(c) > 0 && c[0] == "nkms":
		return c[1:]
	case len(c) > 2 && c[0] == "go" && c[1] == "run" && c[2] == "./cmd/nkms":
		return c[3:]
	}
	return nil
}

var (
	linkRE       = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	inlineCodeRE = regexp.MustCompile("`[^`]*`")
)

// checkLinks checks the relative links of a Markdown file: the file must
// exist and a #anchor must be a heading of it.
func (d *docsCheck) checkLinks(file, text string) {
	inBlock := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(inlineCodeRE.ReplaceAllString(line, ""), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			full := filepath.Join(d.root, filepath.Dir(file), path)
			if path == "" {
				full = filepath.Join(d.root, file)
			}
			data, err := os.ReadFile(full)
			if err != nil {
				if st, serr := os.Stat(full); serr == nil && st.IsDir() && anchor == "" {
					continue
				}
				d.fail("%s:%d: link %s: no such file", file, i+1, target)
				continue
			}
			if anchor != "" && !slices.Contains(anchors(string(data)), anchor) {
				d.fail("%s:%d: link %s: no heading with anchor #%s in %s", file, i+1, target, anchor, filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(file), path))))
			}
		}
	}
}

// anchors are the anchors GitHub gives a Markdown file's headings: lower
// case, punctuation dropped, spaces as hyphens, -1, -2 … for repeats.
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		out = append(out, a)
	}
	return out
}
