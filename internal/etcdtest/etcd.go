// Package etcdtest runs a real etcd for tests. Binary builds the pinned server of tools/etcd
// (a nested module) once per machine into the user cache directory;
// Start runs a cluster of it on loopback ports for one test, Launch
// for a whole test binary (from TestMain).
package etcdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms/internal/testkit"
)

// BinaryEnv names the environment variable that, when set, is the etcd
// binary the tests run instead of the one built from tools/etcd.
const BinaryEnv = "NKMS_ETCD_BIN"

// etcdTimings are the member flags that keep elections short on loopback.
var etcdTimings = []string{"--heartbeat-interval=50", "--election-timeout=500"}

// etcdStartTimeout bounds how long a cluster or a restarted member may take
// to answer.
const etcdStartTimeout = 60 * time.Second

var (
	etcdBinOnce sync.Once
	etcdBinPath string
	etcdBinErr  error
)

// Binary returns the path of an etcd server binary: $NKMS_ETCD_BIN if set,
// otherwise tools/etcd built once per machine into
// <user cache dir>/nkms-test/etcd-<version>-<source hash>/etcd (the first
// build takes about a minute and needs the Go module proxy). It never skips:
// a failed build fails the test with the compiler's output.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := etcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// etcdBinary is Binary without a test; the result is computed once per process.
func etcdBinary() (string, error) {
	etcdBinOnce.Do(func() { etcdBinPath, etcdBinErr = findOrBuildEtcd() })
	return etcdBinPath, etcdBinErr
}

func findOrBuildEtcd() (string, error) {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}
		return bin, nil
	}
	src, err := etcdSourceDir()
	if err != nil {
		return "", err
	}
	version, hash, err := etcdSourceID(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil { // no $HOME or $XDG_CACHE_HOME, as on some CI machines
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "nkms-test", "etcd-"+version+"-"+hash)
	bin := filepath.Join(dir, "etcd")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("etcd for tests: %w", err)
	}
	// Test binaries of several packages may get here at once: one builds
	// while the others wait for the lock, then find the binary.
	unlock, err := lockFile(filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", fmt.Errorf("etcd for tests: lock the build: %w", err)
	}
	defer unlock()
	if isExecutable(bin) {
		return bin, nil
	}
	if err := buildEtcd(src, dir, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// buildEtcd builds the module in src to a temporary file of dir and renames
// it to bin, so that no process ever sees half a binary.
func buildEtcd(src, dir, bin string) error {
	tmp, err := os.CreateTemp(dir, "etcd-*.tmp")
	if err != nil {
		return fmt.Errorf("etcd for tests: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goCmd, "build", "-C", src, "-o", tmp.Name(), ".")
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("etcd for tests: go build -C %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return fmt.Errorf("etcd for tests: %w", err)
	}
	return nil
}

// etcdSourceDir returns the directory of the tools/etcd module: found from
// this file's directory, or from the working directory when the test binary
// was built with -trimpath.
func etcdSourceDir() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			src := filepath.Join(dir, "tools", "etcd")
			if _, err := os.Stat(filepath.Join(src, "go.mod")); err == nil {
				return src, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("etcd for tests: tools/etcd/go.mod not found above the etcdtest package or the working directory")
}

var etcdRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?go\.etcd\.io/etcd/server/v3\s+(v\S+)`)

// etcdSourceID returns the etcd server version that the module at src pins
// and a short hash of its go.mod, go.sum and main.go: a new pin or a changed
// main builds a new binary.
func etcdSourceID(src string) (version, hash string, err error) {
	h := sha256.New()
	var mod []byte
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", "", fmt.Errorf("etcd for tests: %w", err)
		}
		if name == "go.mod" {
			mod = b
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	m := etcdRequire.FindSubmatch(mod)
	if m == nil {
		return "", "", fmt.Errorf("etcd for tests: %s/go.mod does not require go.etcd.io/etcd/server/v3", src)
	}
	return string(m[1]), hex.EncodeToString(h.Sum(nil))[:12], nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Cluster is a cluster of real etcd processes on loopback.
type Cluster struct {
	bin     string
	dir     string
	members []*etcdMember
	// removeDir is set when the cluster owns dir (Launch).
	removeDir bool
	// tls and clientTLS are set for a cluster of StartTLS.
	tls       *TLSFiles
	clientTLS *tls.Config
	closeOnce sync.Once
}

// etcdMember is one member process; its ports and data directory stay the
// same over restarts.
type etcdMember struct {
	name      string
	dataDir   string
	clientURL string
	peerURL   string
	args      []string
	log       testkit.Buffer // output of every run

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited; nil when never started
}

// Start starts a cluster of members etcd processes on free loopback
// ports, with data directories under t.TempDir(), and waits until it answers.
// The cluster is killed when the test ends; if the test failed, the members'
// output is logged.
func Start(t testing.TB, members int) *Cluster {
	t.Helper()
	return startFor(t, Binary(t), t.TempDir(), members, nil)
}

// startFor starts the cluster of Start in dir, with TLS when files is not
// nil, and has it killed when t ends (its output logged if t failed).
func startFor(t testing.TB, bin, dir string, members int, files *TLSFiles) *Cluster {
	t.Helper()
	c, err := startEtcd(bin, dir, members, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("etcd output:\n%s", c.Output())
		}
	})
	return c
}

// Launch is Start for TestMain, where there is no test: it builds or
// finds the binary, starts members processes with data directories in a
// fresh temporary directory, and returns the cluster. Close kills it and
// removes the directory.
func Launch(members int) (*Cluster, error) {
	bin, err := etcdBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nkms-etcd-")
	if err != nil {
		return nil, err
	}
	c, err := startEtcd(bin, dir, members, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.removeDir = true
	return c, nil
}

// startEtcd starts a cluster in dir, with TLS files if they are not nil.
// A port taken by someone else between choosing it and etcd binding it
// makes a member exit; the start is then tried again with new ports.
func startEtcd(bin, dir string, members int, files *TLSFiles) (*Cluster, error) {
	if members < 1 {
		return nil, fmt.Errorf("etcd: %d members", members)
	}
	ctls, err := clientTLS(files)
	if err != nil {
		return nil, err
	}
	var errs []error
	for attempt := range 3 {
		c, err := tryStartEtcd(bin, filepath.Join(dir, fmt.Sprintf("cluster%d", attempt)), members, files, ctls)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func tryStartEtcd(bin, dir string, members int, files *TLSFiles, ctls *tls.Config) (*Cluster, error) {
	ports, err := freePorts(2 * members)
	if err != nil {
		return nil, err
	}
	token := make([]byte, 8)
	rand.Read(token)
	c := &Cluster{bin: bin, dir: dir, tls: files, clientTLS: ctls}
	scheme := "http"
	if files != nil {
		scheme = "https"
	}
	var initial []string
	for i := range members {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			dataDir:   filepath.Join(dir, fmt.Sprintf("m%d", i)),
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			peerURL:   fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1]),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = append([]string{
			"--name=" + m.name,
			"--data-dir=" + m.dataDir,
			"--listen-client-urls=" + m.clientURL,
			"--advertise-client-urls=" + m.clientURL,
			"--listen-peer-urls=" + m.peerURL,
			"--initial-advertise-peer-urls=" + m.peerURL,
			"--initial-cluster=" + strings.Join(initial, ","),
			"--initial-cluster-state=new",
			"--initial-cluster-token=nkms-test-" + hex.EncodeToString(token),
			"--log-level=error",
			// A killed process loses nothing that fsync would have kept:
			// the page cache survives it. Only a machine crash would.
			"--unsafe-no-fsync",
		}, etcdTimings...)
		if files != nil {
			m.args = append(m.args, memberTLSArgs(files)...)
		}
		if err := m.start(bin); err != nil {
			c.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdStartTimeout)
	defer cancel()
	if err := c.waitReady(ctx, c.members, true); err != nil {
		out := c.Output()
		c.Close()
		return nil, fmt.Errorf("etcd: cluster of %d did not start: %w\n%s", members, err, out)
	}
	return c, nil
}

// freePorts returns n distinct free TCP ports of 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcd: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start runs the member's process; it fails if the member is running.
func (m *etcdMember) start(bin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		select {
		case <-m.done:
		default:
			return fmt.Errorf("etcd: member %s is running", m.name)
		}
	}
	cmd := exec.Command(bin, m.args...)
	cmd.Stdout, cmd.Stderr = &m.log, &m.log
	cmd.SysProcAttr = etcdProcAttr()
	fmt.Fprintf(&m.log, "--- start %s\n", m.name)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("etcd: start member %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(&m.log, "--- %s exited: %v\n", m.name, err)
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

// kill sends SIGKILL to the member's process and waits for it to exit.
func (m *etcdMember) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Kill()
	<-done
}

// exited reports whether the member's process has ended.
func (m *etcdMember) exited() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done == nil {
		return true
	}
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// waitReady waits until every member of ms answers a status request (with
// a leader, if leader is set) and, if leader is set, the cluster serves a
// linearizable read. It fails at once when a member's process exits.
func (c *Cluster) waitReady(ctx context.Context, ms []*etcdMember, leader bool) error {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.clientURL)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: etcdStartTimeout, TLS: c.tlsConfig(), Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	var last error
	for {
		for _, m := range ms {
			if m.exited() {
				return fmt.Errorf("member %s exited", m.name)
			}
		}
		last = probe(ctx, cli, ms, leader)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// probe asks every member of ms for its status and, if leader is set,
// reads a key.
func probe(ctx context.Context, cli *clientv3.Client, ms []*etcdMember, leader bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, m := range ms {
		st, err := cli.Status(ctx, m.clientURL)
		if err != nil {
			return fmt.Errorf("member %s: %w", m.name, err)
		}
		if leader && st.Leader == 0 {
			return fmt.Errorf("member %s: no leader", m.name)
		}
	}
	if leader {
		if _, err := cli.Get(ctx, "nkms-test-ready"); err != nil {
			return err
		}
	}
	return nil
}

// Endpoints returns the client URLs of all members.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.clientURL)
	}
	return eps
}

// Kill sends SIGKILL to member i and waits for its process to exit; a
// member that is not running is left as it is.
func (c *Cluster) Kill(i int) {
	c.members[i].kill()
}

// Restart starts member i again, on its data directory and ports, after
// Kill, and waits until it answers a status request (it may have no leader
// yet, when too few members run).
func (c *Cluster) Restart(i int) error {
	m := c.members[i]
	if err := m.start(c.bin); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdStartTimeout)
	defer cancel()
	if err := c.waitReady(ctx, []*etcdMember{m}, false); err != nil {
		return fmt.Errorf("etcd: restart member %s: %w\n%s", m.name, err, m.log.String())
	}
	return nil
}

// Client returns a client of all members, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// NewClient returns a client of all members (with the client certificate,
// for a cluster of StartTLS); the caller closes it.
func (c *Cluster) NewClient() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 10 * time.Second, TLS: c.tlsConfig(), Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	return cli, nil
}

// tlsConfig returns a copy of the client TLS configuration of a cluster of
// StartTLS, for one client; nil for plain HTTP.
func (c *Cluster) tlsConfig() *tls.Config {
	if c.clientTLS == nil {
		return nil
	}
	return c.clientTLS.Clone()
}

// Output returns what the members wrote, each run marked.
func (c *Cluster) Output() string {
	var b bytes.Buffer
	for _, m := range c.members {
		b.WriteString(m.log.String())
	}
	return b.String()
}

// Close kills every member and, for a cluster of Launch, removes its
// data directories. Closing twice is a no-op.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		var wg sync.WaitGroup
		for _, m := range c.members {
			wg.Go(m.kill)
		}
		wg.Wait()
		if c.removeDir {
			os.RemoveAll(c.dir)
		}
	})
}
