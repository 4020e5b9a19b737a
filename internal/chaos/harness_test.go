package chaos

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// binary is the nkms binary, built once by TestMain (not with -short, when
// every test here skips).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "nkms-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nkms")
	out, err := exec.Command("go", "build", "-o", binary, "github.com/nkms/nkms/cmd/nkms").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build nkms: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipShort skips a chaos test with -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a chaos test (minutes of processes killed under load); runs without -short, as in CI")
	}
}

const (
	testAccessKey = "CHAOSACCESSKEY"
	testSecretKey = "chaos-secret-key-0123456789"
)

var credEnv = []string{"NKMS_ACCESS_KEY=" + testAccessKey, "NKMS_SECRET_KEY=" + testSecretKey}

// proc is one running nkms server.
type proc struct {
	cmd    *exec.Cmd
	url    string
	stderr *testkit.Buffer
	done   chan error
}

var servingRE = regexp.MustCompile(`nkms: serving on (https?://\S+)`)

// start runs `nkms server` on a free loopback port and waits until it serves.
func start(t *testing.T, dataDir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p := &proc{cmd: cmd, stderr: &testkit.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = io.MultiWriter(p.stderr, pw)
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
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("nkms exited before serving: %v\n%s", err, p.stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("nkms did not start within 30s:\n%s", p.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(p.url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == 404 && ce.Code == "NOT_FOUND"
}
