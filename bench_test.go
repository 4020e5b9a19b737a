package nkms_test

import (
	"context"
	"testing"

	"github.com/nkms/nkms"
)

// benchmarkService is a Service as nkms server runs it: usage logs go
// through a background Recorder (the call itself costs a channel send).
func benchmarkService(b *testing.B, typ nkms.KeyType) (*nkms.Service, *nkms.Key) {
	b.Helper()
	s, _ := newService(b)
	s.Recorder = nkms.NewRecorder(s.Store, 0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Recorder.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	k, err := s.CreateKey(context.Background(), alice, nkms.CreateKeyInput{Name: "bench", Type: typ})
	if err != nil {
		b.Fatal(err)
	}
	return s, k
}

func BenchmarkServiceEncryptAES32B(b *testing.B) {
	s, k := benchmarkService(b, nkms.AES256)
	msg := [][]byte{make([]byte, 32)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Encrypt(ctx, alice, k.KeyTag(), msg, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServiceDecryptAES32B(b *testing.B) {
	s, k := benchmarkService(b, nkms.AES256)
	ctx := context.Background()
	ct, err := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{make([]byte, 32)}, "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Decrypt(ctx, alice, k.KeyTag(), ct.Values, ""); err != nil {
			b.Fatal(err)
		}
	}
}
