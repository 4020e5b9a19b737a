package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// The tests here run the real binary on a pseudo-terminal, as a person
// would meet it: prompts, and the progress line.

// ttyProc is the binary running with a pseudo-terminal as its stdin,
// stdout and stderr.
type ttyProc struct {
	cmd  *exec.Cmd
	tty  *os.File // the terminal's other end: what we type, what it shows
	seen *testkit.Buffer
	done chan error
}

func startTTY(t *testing.T, env []string, args ...string) *ttyProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	p := &ttyProc{cmd: cmd, tty: tty, seen: &testkit.Buffer{}, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() { io.Copy(p.seen, tty); close(copied) }() // ends with EIO once the process is gone
	go func() { err := cmd.Wait(); <-copied; p.done <- err }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		tty.Close()
	})
	return p
}

// expect waits until the terminal has shown text.
func (p *ttyProc) expect(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.seen.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q; it shows:\n%s", text, p.seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *ttyProc) typeLine(t *testing.T, line string) {
	t.Helper()
	if _, err := p.tty.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// wait returns the process's exit error.
func (p *ttyProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("the command did not finish; the terminal shows:\n%s", p.seen)
		return nil
	}
}

// scriptServer starts an in-process server for a test and returns the
// environment of a user of it and an admin client.
func scriptServer(t *testing.T) ([]string, *client.Client) {
	t.Helper()
	url, stop, err := startScriptServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := client.New(url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	env := append([]string{"NKMS_ENDPOINT=" + url, "HOME=" + t.TempDir()}, credEnv...)
	return env, c
}

// TestConfirmOnTerminal: request-deletion and delete go ahead only when
// the key's name is typed; a wrong name leaves the key as it was.
func TestConfirmOnTerminal(t *testing.T) {
	env, c := scriptServer(t)
	ctx := context.Background()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "payroll", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	status := func() string {
		t.Helper()
		info, err := c.GetKey(ctx, k.KeyTag)
		if err != nil {
			t.Fatal(err)
		}
		return info.Status
	}

	p := startTTY(t, env, "key", "request-deletion", k.KeyTag)
	p.expect(t, "72 hours")
	p.expect(t, `Type the key name "payroll" to confirm: `)
	p.typeLine(t, "payrol")
	if err := p.wait(t); err == nil {
		t.Fatalf("a wrong name was accepted:\n%s", p.seen)
	}
	if !strings.Contains(p.seen.String(), "does not match") || status() != "ENABLE" {
		t.Fatalf("after a wrong name the key is %s; the terminal shows:\n%s", status(), p.seen)
	}

	p = startTTY(t, env, "key", "request-deletion", k.KeyTag)
	p.expect(t, "to confirm: ")
	p.typeLine(t, "payroll")
	if err := p.wait(t); err != nil {
		t.Fatalf("request-deletion: %v\n%s", err, p.seen)
	}
	if status() != "REVOKE" || !strings.Contains(p.seen.String(), "(in 72h 0m)") {
		t.Fatalf("after the right name the key is %s; the terminal shows:\n%s", status(), p.seen)
	}

	p = startTTY(t, env, "key", "delete", k.KeyTag)
	p.expect(t, "cannot be undone")
	p.expect(t, "to confirm: ")
	p.typeLine(t, "")
	if err := p.wait(t); err == nil || status() != "REVOKE" {
		t.Fatalf("an empty answer deleted the key:\n%s", p.seen)
	}
	p = startTTY(t, env, "key", "delete", k.KeyTag)
	p.expect(t, "to confirm: ")
	p.typeLine(t, "payroll")
	if err := p.wait(t); err != nil {
		t.Fatalf("delete: %v\n%s", err, p.seen)
	}
	if _, err := c.GetKey(ctx, k.KeyTag); err == nil {
		t.Fatal("the key is still there after delete")
	}
}

// TestSealProgressOnTerminal: seal and unseal draw a progress line on a
// terminal, ending at 100%, and the file still round-trips.
func TestSealProgressOnTerminal(t *testing.T) {
	env, c := scriptServer(t)
	k, err := c.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "files", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, sealed, out := filepath.Join(dir, "in"), filepath.Join(dir, "in.nkms"), filepath.Join(dir, "out")
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startTTY(t, env, "seal", "--key", k.KeyTag, "--in", in, "--out", sealed)
	if err := p.wait(t); err != nil {
		t.Fatalf("seal: %v\n%s", err, p.seen)
	}
	if !strings.Contains(p.seen.String(), "nkms: sealing 100%  3.0 MiB of 3.0 MiB") {
		t.Fatalf("no progress line ending at 100%%:\n%q", p.seen)
	}
	p = startTTY(t, env, "unseal", "--in", sealed, "--out", out)
	if err := p.wait(t); err != nil {
		t.Fatalf("unseal: %v\n%s", err, p.seen)
	}
	if !strings.Contains(p.seen.String(), "nkms: unsealing 100%") {
		t.Fatalf("no progress line ending at 100%%:\n%q", p.seen)
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != string(data) {
		t.Fatalf("round trip: %d bytes, %v", len(got), err)
	}
}
