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
	_, c, _ := serverStack(b, true)
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

// BenchmarkServerEncryptAES32BAudit is BenchmarkServerEncryptAES32B with a
// fail-closed audit log on a temp file: the audit overhead of the
// production path (one line per request, written before the answer).
func BenchmarkServerEncryptAES32BAudit(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	_, c, _ := serverStack(b, true, func(cfg *api.Config) { cfg.Audit, cfg.AuditFailClosed = l, true })
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
