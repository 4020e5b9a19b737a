package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
)

// BenchmarkHTTPEncryptAES32B is one signed encrypt round trip through a real
// loopback HTTP server, the Go client and a mem store.
func BenchmarkHTTPEncryptAES32B(b *testing.B) {
	e := newEnv(b)
	c := e.client(1)
	ctx := context.Background()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "bench", KeyType: "AES256"})
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encrypt(ctx, k.KeyTag, msg, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerEncryptAES32B is the production path: the cache over a bolt
// store, the background usage-log recorder, real time, signed requests from parallel
// clients over loopback.
func BenchmarkServerEncryptAES32B(b *testing.B) {
	benchServerEncrypt(b)
}

// BenchmarkServerEncryptAES32BAudit is BenchmarkServerEncryptAES32B with a
// fail-closed audit log on a temp file: the audit overhead of the
// production path (one line per request, written before the answer).
func BenchmarkServerEncryptAES32BAudit(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchServerEncrypt(b, func(cfg *api.Config) { cfg.Audit, cfg.AuditFailClosed = l, true })
}

// benchServerEncrypt encrypts 32 bytes with parallel clients through the
// server's own stack, configured by configure.
func benchServerEncrypt(b *testing.B, configure ...func(*api.Config)) {
	_, c, _ := serverStack(b, true, configure...)
	ctx := context.Background()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "bench", KeyType: "AES256"})
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 32)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Encrypt(ctx, k.KeyTag, msg, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHandlerEncryptAES32B is the server's own share of one encrypt of
// 32 bytes, as `nkms server` is set up (the read cache over bbolt, the
// usage-log recorder, the text request log, the failure limit) but without
// the network: one pre-signed request, as wrk sends it, handed to
// ServeHTTP again and again. Its allocs/op are the handler's alone.
func BenchmarkHandlerEncryptAES32B(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "nkms.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	log := slog.New(api.LogHandler(slog.NewTextHandler(io.Discard, nil)))
	svc := &nkms.Service{Store: cache.New(st, 0), Root: testkit.RootKey(b), Now: time.Now, Log: log}
	svc.Recorder = nkms.NewRecorder(svc.Store, 0, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Recorder.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	cred, err := svc.Bootstrap(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	caller := nkms.Caller{AccessKey: cred.AccessKey, Keystore: cred.Keystore, Role: nkms.RoleAdmin}
	k, err := svc.CreateKey(context.Background(), caller, nkms.CreateKeyInput{Name: "bench", Type: nkms.AES256})
	if err != nil {
		b.Fatal(err)
	}
	srv := api.New(svc, api.Config{Log: log, AuthFailuresPerSecond: api.DefaultAuthFailuresPerSecond})
	body := []byte(`{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`)
	r := httptest.NewRequest("POST", "/kms/v1/keys/"+k.Tag+"/encrypt", nil)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(body))
	sigv2.SignRequest(r, cred.AccessKey, []byte(cred.SecretKey), time.Now())
	w := &benchWriter{header: http.Header{}}
	rd := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		clear(w.header)
		w.status, w.n = 0, 0
		srv.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("got status %d, want 200", w.status)
		}
	}
}

// benchWriter is a ResponseWriter that keeps only the status and the length.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(b)
	return len(b), nil
}
