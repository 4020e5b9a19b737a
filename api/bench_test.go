package api_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
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
