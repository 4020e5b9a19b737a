// Package nkmstest runs an nkms server inside a Go test, as net/http/httptest
// runs an HTTP server: the real server (the same API, Service and store as
// `nkms server`) on a free loopback port, with a fresh data directory under
// t.TempDir() (or in memory), credentials of an operator, and a clock the
// test can move. Everything stops when the test ends.
//
//	srv := nkmstest.NewServer(t)
//	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "orders"})
//	// point the code under test at srv.URL with srv.AccessKey / srv.SecretKey
//	srv.Advance(72 * time.Hour) // a REVOKE key is destroyed now
//
// The server speaks plain HTTP on 127.0.0.1 and logs warnings and errors
// through t.Log.
package nkmstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/client/kmsv3"
	"github.com/nkms/nkms/internal/server"
)

// Server is an nkms server running in the test's process.
type Server struct {
	// URL is the base URL of the API, e.g. http://127.0.0.1:41234: what a
	// NAVER Cloud KMS client takes as its endpoint.
	URL string
	// AccessKey and SecretKey are an operator's credentials: an admin of
	// keystore 1, who may also manage other keystores' access keys and move
	// the clock.
	AccessKey, SecretKey string

	t      testing.TB
	srv    *server.Server
	hc     *http.Client
	client *client.Client
	once   sync.Once
}

// options is what the Options of NewServer set.
type options struct {
	inMemory       bool
	seed           string
	deletionWindow time.Duration
	logs           io.Writer
}

// An Option changes the server NewServer starts.
type Option func(*options)

// InMemory keeps the server's keys in memory instead of a bbolt file under
// t.TempDir(). The data file is the default: it is what `nkms server`
// uses, and it costs little.
func InMemory() Option { return func(o *options) { o.inMemory = true } }

// WithSeed declares access keys and keys, as `nkms server --seed FILE` does
// with the YAML of FILE; ${VAR} reads the environment. The server does not
// start (the test fails) when the declarations are wrong.
func WithSeed(yaml string) Option { return func(o *options) { o.seed = yaml } }

// WithDeletionWindow sets how long a key waits in REVOKE before it is
// destroyed (`--pending-deletion-window`, default 72h).
func WithDeletionWindow(d time.Duration) Option { return func(o *options) { o.deletionWindow = d } }

// WithLogs sends the server's log lines (warnings and errors, and its notices
// at start) to w instead of t.Log.
func WithLogs(w io.Writer) Option { return func(o *options) { o.logs = w } }

// NewServer starts a server for the test t and stops it when the test ends
// (t.Cleanup). It fails the test when the server cannot start.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{deletionWindow: nkms.DefaultDeletionWindow}
	for _, opt := range opts {
		opt(&o)
	}
	dir := t.TempDir()
	cfg := server.Config{
		Listen:   "127.0.0.1:0",
		DataDir:  dir,
		Store:    "bolt",
		DevClock: true,
		// An emulator: COMMON_HSM keys are accepted and kept in software.
		HSMEmulateSoftware: true,
		DeletionWindow:     o.deletionWindow,
		SchedulerInterval:  nkms.DefaultSchedulerInterval,
		UsageRetention:     nkms.DefaultActivityRetention,
		UsagePerKey:        nkms.DefaultActivityPerKey,
		MetricsKeysEvery:   5 * time.Minute,
		LogLevel:           "warn",
		LogFormat:          "text",
		AccessKey:          "NKMSTEST" + strings.ToUpper(rand.Text()[:16]),
		SecretKey:          rand.Text() + rand.Text(),
	}
	if o.inMemory {
		cfg.Store = "mem"
	}
	if o.seed != "" {
		cfg.Seed = filepath.Join(dir, "seed.yaml")
		if err := os.WriteFile(cfg.Seed, []byte(o.seed), 0o600); err != nil {
			t.Fatalf("nkmstest: %v", err)
		}
	}
	logs := o.logs
	if logs == nil {
		logs = &testLog{t: t}
	}
	srv, err := server.Start(context.Background(), cfg, logs)
	if err != nil {
		t.Fatalf("nkmstest: the server did not start: %v", err)
	}
	s := &Server{URL: srv.URL, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey, t: t, srv: srv,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}}
	s.client = s.NewClient(cfg.AccessKey, cfg.SecretKey)
	t.Cleanup(s.Close)
	return s
}

// Client returns a client of the server with the operator's credentials.
func (s *Server) Client() *client.Client { return s.client }

// ClientV3 returns a client of the server's API 3.0 (/kms/v3) with the
// operator's credentials.
func (s *Server) ClientV3() *kmsv3.Client {
	s.t.Helper()
	c, err := kmsv3.New(s.URL, s.AccessKey, s.SecretKey, kmsv3.WithHTTPClient(s.hc))
	if err != nil {
		s.t.Fatalf("nkmstest: %v", err)
	}
	return c
}

// NewClient returns a client of the server that signs with another access
// key, for example one a test created for a viewer or another keystore. Its
// connections close with the server.
func (s *Server) NewClient(accessKey, secretKey string) *client.Client {
	s.t.Helper()
	c, err := client.New(s.URL, accessKey, secretKey, client.WithHTTPClient(s.hc))
	if err != nil {
		s.t.Fatalf("nkmstest: %v", err)
	}
	return c
}

// CreateKey creates a key in keystore 1 (KeyType AES256 when req leaves it
// empty) and returns it; it fails the test when the server refuses.
func (s *Server) CreateKey(req client.CreateKeyRequest) *client.Key {
	s.t.Helper()
	if req.KeyType == "" {
		req.KeyType = "AES256"
	}
	k, err := s.client.CreateKey(context.Background(), req)
	if err != nil {
		s.t.Fatalf("nkmstest: create key %q: %v", req.KeyName, err)
	}
	return k
}

// Advance moves the server's clock forward by d and runs its scheduler at
// once: when Advance returns, every key whose pending deletion ended is
// destroyed and every key whose rotation was due has a new version. Every
// time the API reports moves with the clock; signatures are still checked
// against the wall clock, so clients need no change.
func (s *Server) Advance(d time.Duration) {
	s.t.Helper()
	if _, err := s.client.AdvanceClock(context.Background(), d); err != nil {
		s.t.Fatalf("nkmstest: advance the clock by %s: %v", d, err)
	}
}

// Close stops the server: it waits for the requests in flight, stops the
// scheduler, closes the store and the client connections. NewServer
// registers it with t.Cleanup; calling it earlier (to test what a client
// does when the server is gone) is fine.
func (s *Server) Close() {
	s.once.Do(func() {
		if err := s.srv.Close(); err != nil {
			s.t.Errorf("nkmstest: stop the server: %v", err)
		}
		s.hc.CloseIdleConnections()
	})
}

// testLog writes the server's log lines to t.Log, a line at a time.
type testLog struct {
	t   testing.TB
	mu  sync.Mutex
	buf []byte
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.t.Log(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
}
