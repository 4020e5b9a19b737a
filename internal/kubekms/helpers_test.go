package kubekms_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"

	"github.com/nkms/nkms/internal/kubekms"
	"github.com/nkms/nkms/internal/testkit"
)

// plugin is a plugin serving on a real Unix socket, and a client of it made
// with the gRPC client of k8s.io/kms (what kube-apiserver's kmsv2 code
// wraps).
type plugin struct {
	socket string
	kms    kmsapi.KeyManagementServiceClient
	clock  *testkit.Clock // the plugin's probe cache reads it
	logs   *testkit.Buffer
	stop   func() error // stops serving; returns Serve's result
}

// startPlugin serves a plugin of cfg (its Now and Logger set here) on a
// socket in a new directory, until the test ends.
func startPlugin(t testing.TB, cfg kubekms.Config) *plugin {
	t.Helper()
	pl := &plugin{clock: testkit.NewClock(time.Unix(1_800_000_000, 0)), logs: &testkit.Buffer{}}
	cfg.Now = pl.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(pl.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := kubekms.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pl.socket = filepath.Join(shortTempDir(t), "kms.sock")
	ln, err := kubekms.Listen(pl.socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- kubekms.Serve(ctx, ln, p, cfg.Logger) }()
	var once sync.Once
	var serveErr error
	pl.stop = func() error {
		once.Do(func() { cancel(); serveErr = <-served })
		return serveErr
	}
	t.Cleanup(func() {
		if err := pl.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+pl.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pl.kms = kmsapi.NewKeyManagementServiceClient(conn)
	return pl
}

// shortTempDir is a new directory with a short path: a Unix socket path
// has at most 107 bytes, and t.TempDir's name carries the test's name.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubekms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (pl *plugin) status(t testing.TB) *kmsapi.StatusResponse {
	t.Helper()
	resp, err := pl.kms.Status(context.Background(), &kmsapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if resp.Version != "v2" {
		t.Errorf("Status version = %q, want v2", resp.Version)
	}
	return resp
}

func (pl *plugin) encrypt(t testing.TB, plaintext []byte) *kmsapi.EncryptResponse {
	t.Helper()
	resp, err := pl.kms.Encrypt(context.Background(), &kmsapi.EncryptRequest{Plaintext: plaintext, Uid: "test-uid"})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return resp
}

func (pl *plugin) decrypt(t testing.TB, enc *kmsapi.EncryptResponse) []byte {
	t.Helper()
	resp, err := pl.kms.Decrypt(context.Background(), &kmsapi.DecryptRequest{
		Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Annotations: enc.Annotations, Uid: "test-uid"})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	return resp.Plaintext
}

// wantCode fails the test unless err is a gRPC status error with code.
func wantCode(t testing.TB, what string, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("%s: got %v, want gRPC code %v", what, err, code)
	}
	return st
}
