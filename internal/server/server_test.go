package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

const (
	testAccessKey = "SERVERTESTKEY"
	testSecretKey = "server-test-secret-0123456789"
)

// testConfig is the configuration of `nkms server` with its default flags,
// on a free loopback port and a fresh data dir.
func testConfig(t *testing.T) Config {
	return Config{
		Listen:            "127.0.0.1:0",
		DataDir:           t.TempDir(),
		Store:             "bolt",
		DeletionWindow:    nkms.DefaultDeletionWindow,
		SchedulerInterval: nkms.DefaultSchedulerInterval,
		UsageRetention:    nkms.DefaultActivityRetention,
		UsagePerKey:       nkms.DefaultActivityPerKey,
		MetricsKeysEvery:  5 * time.Minute,
		LogLevel:          "warn",
		LogFormat:         "text",
		AccessKey:         testAccessKey,
		SecretKey:         testSecretKey,
	}
}

var servingRE = regexp.MustCompile(`nkms: serving on (https?://\S+)`)

// running is one server started by startRun.
type running struct {
	url    string
	stderr *testkit.Buffer
	stop   context.CancelFunc
	done   chan error // Run's result, once
	once   sync.Once
	err    error
}

// wait returns Run's result once it has returned.
func (r *running) wait() error {
	r.once.Do(func() { r.err = <-r.done })
	return r.err
}

// startRun runs Run(cfg) until the test ends (or stop) and waits until it serves.
func startRun(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{stderr: &testkit.Buffer{}, stop: cancel, done: make(chan error, 1)}
	go func() {
		err := Run(ctx, cfg, io.MultiWriter(r.stderr, pw))
		pw.Close()
		r.done <- err
	}()
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
	t.Cleanup(func() {
		cancel()
		r.wait()
	})
	select {
	case r.url = <-urls:
	case err := <-r.done:
		r.once.Do(func() { r.err = err }) // wait must not read done again
		t.Fatalf("Run returned before serving: %v\n%s", err, r.stderr)
	}
	return r
}

// TestRunServesAndShutsDown: Run serves the API with the configured access
// key, creates the root key file (mode 0600), and returns nil once its
// context ends; a second run on the same data dir finds the same root key
// and the keys of the first.
func TestRunServesAndShutsDown(t *testing.T) {
	cfg := testConfig(t)
	r := startRun(t, cfg)
	c, err := client.New(r.url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "first", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	r.stop()
	if err := r.wait(); err != nil {
		t.Fatalf("Run after its context ended: %v, want nil\n%s", err, r.stderr)
	}
	if err := c.Health(ctx); err == nil {
		t.Fatal("the API still answers after Run returned")
	}
	fi, err := os.Stat(filepath.Join(cfg.DataDir, "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v; want mode 0600", err)
	}

	r2 := startRun(t, cfg)
	c2, err := client.New(r2.url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.GetKey(ctx, k.KeyTag); err != nil {
		t.Fatalf("the key of the first run: %v", err)
	}
}

// TestRunRefusesABadConfig: Run validates its Config before it touches the
// data dir.
func TestRunRefusesABadConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(cfg.DataDir, "never")
	cfg.Store = "sqlite"
	err := Run(context.Background(), cfg, io.Discard)
	if err == nil {
		t.Fatal("Run with --store sqlite: nil error")
	}
	if _, serr := os.Stat(cfg.DataDir); !errors.Is(serr, os.ErrNotExist) {
		t.Fatalf("Run with a bad config made the data dir: %v", serr)
	}
}

// TestStartAndClose: Start serves in the background on the port the
// listener got and reports its URL; Close stops it, releases the data file
// (a second Start on the same data dir opens it) and may be called again.
func TestStartAndClose(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	s, err := Start(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("health at %s: %v", s.URL, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Health(ctx); err == nil {
		t.Fatal("the API still answers after Close")
	}
	s2, err := Start(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatalf("Start again on the same data dir: %v", err)
	}
	s2.Close()
}

// TestMemStoreKeepsNothing: --store mem serves the API, and a second start
// on the same data dir (same root key) has none of the first one's keys.
func TestMemStoreKeepsNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "mem"
	ctx := context.Background()
	s, err := Start(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(s.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "gone", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Start(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c2, err := client.New(s2.URL, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.GetKey(ctx, k.KeyTag); err == nil {
		t.Fatal("a key of the first in-memory server is still there")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "nkms.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--store mem made a data file: %v", err)
	}
}

// TestListenAddr: the URL a server reports keeps the host of --listen
// (0.0.0.0, not the listener's [::]) with the port it got.
func TestListenAddr(t *testing.T) {
	for _, tc := range []struct {
		listen string
		port   int
		want   string
	}{
		{"0.0.0.0:8383", 8383, "0.0.0.0:8383"},
		{"127.0.0.1:0", 41234, "127.0.0.1:41234"},
		{"[::1]:0", 41234, "[::1]:41234"},
		{"localhost:8383", 8383, "localhost:8383"},
		{":8383", 8383, "[::]:8383"}, // no host: the listener's
	} {
		if got := listenAddr(tc.listen, &net.TCPAddr{IP: net.IPv6unspecified, Port: tc.port}); got != tc.want {
			t.Errorf("listenAddr(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}
