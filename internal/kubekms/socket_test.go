package kubekms_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/kubekms"
	"github.com/nkms/nkms/internal/server"
	"github.com/nkms/nkms/nkmstest"
)

// TestSocketPath: --listen takes unix:///path (or a bare absolute path),
// and refuses other schemes, relative paths and abstract sockets.
func TestSocketPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"unix:///var/run/kmsplugin/kms.sock": "/var/run/kmsplugin/kms.sock",
		"/run/kms.sock":                      "/run/kms.sock",
		"unix:///run//x/../kms.sock":         "/run/kms.sock",
	} {
		if got, err := kubekms.SocketPath(in); err != nil || got != want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "kms.sock", "unix://kms.sock", "tcp://127.0.0.1:1", "unix:///@abstract", "unix:///./@abstract", "http:///x"} {
		if got, err := kubekms.SocketPath(in); err == nil {
			t.Errorf("SocketPath(%q) = %q, want an error", in, got)
		}
	}
}

// TestSocketFile: the socket is made with mode 0600 (its directory too when
// missing, 0700), and removed when serving stops.
func TestSocketFile(t *testing.T) {
	t.Parallel()
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	p, err := kubekms.New(kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(shortTempDir(t), "run")
	path := filepath.Join(dir, "kms.sock")
	ln, err := kubekms.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != fs.ModeSocket || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want a socket with 0600", st.Mode())
	}
	if dst, err := os.Stat(dir); err != nil || dst.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode = %v, %v; want 0700", dst.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the socket directory holds %d entries, want only the socket", len(entries))
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- kubekms.Serve(ctx, ln, p, nil) }()
	if c, err := net.Dial("unix", path); err != nil {
		t.Fatalf("dial the socket: %v", err)
	} else {
		c.Close()
	}
	cancel() // what SIGTERM does in nkms kube-kms-plugin
	if err := <-served; err != nil {
		t.Fatalf("Serve after its context ended = %v, want nil", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the socket file is still there after Serve returned (%v)", err)
	}
}

// TestStaleSocket: a socket file nothing listens on (a killed plugin's) is
// replaced; a socket something answers on, or a file that is not a
// socket, makes Listen fail and is left as it was.
func TestStaleSocket(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the file stays, as after a kill -9
	ln, err := kubekms.Listen(stale)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()

	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ln, err := kubekms.Listen(live); err == nil || !strings.Contains(err.Error(), "another process listens") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen on a live socket = %v, want \"another process listens\"", err)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Fatalf("the other process's socket is gone: %v", err)
	} else {
		c.Close()
	}

	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := kubekms.Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen on a regular file = %v, want \"not a socket\"", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatalf("the regular file was changed")
	}
}

// TestKMSRestart: while the nkms server is stopped, Status is unhealthy
// (it says the KMS is unreachable) and Encrypt/Decrypt fail with
// Unavailable; once a server runs again on the same data dir and address,
// Status is ok again and the data keys wrapped before decrypt.
func TestKMSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := server.Config{
		Listen: addr, DataDir: dir, Store: "bolt",
		DeletionWindow: nkms.DefaultDeletionWindow, SchedulerInterval: nkms.DefaultSchedulerInterval,
		UsageRetention: nkms.DefaultActivityRetention, UsagePerKey: nkms.DefaultActivityPerKey,
		MetricsKeysEvery: 5 * time.Minute, LogLevel: "warn", LogFormat: "text",
		AccessKey: "KUBEKMSTEST", SecretKey: "kubekms-test-secret-" + t.Name(),
	}
	start := func() *server.Server {
		t.Helper()
		s, err := server.Start(context.Background(), cfg, io.Discard)
		if err != nil {
			t.Fatalf("start nkms: %v", err)
		}
		return s
	}
	srv := start()
	kms, err := client.New(srv.URL, cfg.AccessKey, cfg.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "kubernetes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	pl := startPlugin(t, kubekms.Config{KMS: kms, KeyTag: key.KeyTag})
	d := dek(t)
	enc := pl.encrypt(t, d)
	if st := pl.status(t); st.Healthz != "ok" {
		t.Fatalf("Status = %q, want ok", st.Healthz)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	pl.clock.Add(kubekms.DefaultProbeTTL)
	st := pl.status(t)
	if st.Healthz == "ok" || st.KeyId != "" || !strings.Contains(st.Healthz, "unreachable") {
		t.Fatalf("Status with nkms stopped = %q key_id %q, want a reason with \"unreachable\" and no key_id", st.Healthz, st.KeyId)
	}
	t.Logf("Status healthz with nkms stopped: %s", st.Healthz)
	_, err = pl.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: d, Uid: "u"})
	s := wantCode(t, "Encrypt with nkms stopped", err, codes.Unavailable)
	t.Logf("Encrypt error with nkms stopped: %s", s.Message())
	_, err = pl.kms.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "u"})
	wantCode(t, "Decrypt with nkms stopped", err, codes.Unavailable)

	srv = start()
	defer srv.Close()
	pl.clock.Add(time.Second)
	if st := pl.status(t); st.Healthz != "ok" || st.KeyId != key.KeyTag+":v1" {
		t.Fatalf("Status after nkms restarted = %q %q, want ok %s:v1", st.Healthz, st.KeyId, key.KeyTag)
	}
	if got := pl.decrypt(t, enc); string(got) != string(d) {
		t.Fatalf("Decrypt after restart = %x, want %x", got, d)
	}
}

// FuzzSocketPath: SocketPath never panics, and what it accepts is a clean
// absolute path that is not an abstract socket.
func FuzzSocketPath(f *testing.F) {
	for _, s := range []string{"unix:///run/kms.sock", "/run/kms.sock", "unix:///@x", "unix://x", "tcp://1:1", "unix:////a/../../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := kubekms.SocketPath(s)
		if err != nil {
			return
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "/@") {
			t.Fatalf("SocketPath(%q) = %q: not a clean absolute file path", s, p)
		}
	})
}
