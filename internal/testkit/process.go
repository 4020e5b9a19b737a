package testkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// BuildNKMS builds the nkms binary (the default build: cgo on, so with HSM
// support) into dir and returns its path; the error carries the compiler's
// output. It takes no testing.TB so that a TestMain can call it too.
func BuildNKMS(dir string) (string, error) {
	bin := filepath.Join(dir, "nkms")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/nkms/nkms/cmd/nkms")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nkms: %w\n%s", err, out)
	}
	return bin, nil
}

// Proc is a child process that serves HTTP: an nkms server, or another nkms
// command that prints the same "nkms: serving on URL" line once it listens.
type Proc struct {
	Cmd    *exec.Cmd
	URL    string     // from the serving line
	Stderr *Buffer    // all the process wrote to stderr
	done   chan error // the exit (cmd.Wait), sent once
}

var servingRE = regexp.MustCompile(`nkms: serving on (https?://\S+)`)

// ServerCommand returns `binary server --listen 127.0.0.1:0 --data-dir
// dataDir args...`, with env added to the test's environment. A later
// --listen in args takes the place of the first.
func ServerCommand(binary, dataDir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// StartServer starts ServerCommand and waits until the server serves.
func StartServer(t testing.TB, binary, dataDir string, env []string, args ...string) *Proc {
	t.Helper()
	return Start(t, ServerCommand(binary, dataDir, env, args...))
}

// Start starts cmd, taking its stderr, and waits (30 s at most) until it
// prints the serving line; it fails the test if cmd exits or stays silent
// first. A process still running when the test ends is killed.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 1 {
		name += " " + cmd.Args[1]
	}
	pr, pw := io.Pipe()
	p := &Proc{Cmd: cmd, Stderr: &Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = io.MultiWriter(p.Stderr, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case p.URL = <-urls:
	case err := <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", name, err, p.Stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not start within 30s:\n%s", name, p.Stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Proc) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Terminate ends the process with SIGTERM (a graceful stop, which flushes
// its logs) and returns its exit error: nil for exit status 0.
func (p *Proc) Terminate() error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	return <-p.done
}

// Stop is Terminate that fails the test unless the process exits with 0.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	if err := p.Terminate(); err != nil {
		t.Fatalf("SIGTERM: exit %v, want 0\n%s", err, p.Stderr)
	}
}
