package api_test

import (
	"context"
	"testing"

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
