package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
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
	st, err := bolt.Open(filepath.Join(b.TempDir(), "nkms.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := &nkms.Service{Store: cache.New(st, 0), Root: testkit.RootKey(b), Now: time.Now}
	stop := startUsageLog(svc)
	defer stop()
	srv := httptest.NewServer(api.New(svc, api.Config{}))
	defer srv.Close()
	cred, err := svc.Bootstrap(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	c, _ := client.New(srv.URL, cred.AccessKey, cred.SecretKey)
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

// startUsageLog runs the service's usage-log recorder as the server does.
func startUsageLog(svc *nkms.Service) (stop func()) {
	svc.Recorder = nkms.NewRecorder(svc.Store, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Recorder.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}
