package nkms_test

import (
	"context"
	"testing"

	"github.com/nkms/nkms"
)

func benchmarkService(b *testing.B, typ nkms.KeyType) (*nkms.Service, *nkms.Key) {
	b.Helper()
	s, _ := newService(b)
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
