package nkms_test

import (
	"context"
	"errors"
	"hash"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/sigv2"
)

// BenchmarkAuthenticateAccessKey is AuthenticateAccessKey over a mem store
// with a signature that does not match: for a known access key whose MAC is
// cached (the steady state), an unknown one (the decoy MAC), and a known one
// on its first use (a new Service each time: unseal the secret, key the MAC).
func BenchmarkAuthenticateAccessKey(b *testing.B) {
	s, _ := newService(b)
	cred, err := s.Bootstrap(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	const method, uri, ts = "GET", "/kms/v1/keys", "1700000000000"
	verify := func(id string) func(hash.Hash) bool {
		c := sigv2.Credentials{Timestamp: ts, AccessKey: id, Signature: sigv2.Sign([]byte("wrong"), method, uri, ts, id)}
		return func(mac hash.Hash) bool { return sigv2.VerifyMAC(mac, method, uri, c) }
	}
	run := func(b *testing.B, svc func() *nkms.Service, id string, want error) {
		v := verify(id)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := svc().AuthenticateAccessKey(context.Background(), id, v); ok || !errors.Is(err, want) {
				b.Fatalf("got ok %v, %v; want a refusal, %v", ok, err, want)
			}
		}
	}
	b.Run("known-cached", func(b *testing.B) { run(b, func() *nkms.Service { return s }, cred.AccessKey, nil) })
	b.Run("unknown", func(b *testing.B) {
		run(b, func() *nkms.Service { return s }, "NKNOSUCHACCESSKEY00", nkms.ErrAccessKeyNotFound)
	})
	b.Run("known-first-use", func(b *testing.B) {
		run(b, func() *nkms.Service { return &nkms.Service{Store: s.Store, Root: s.Root, Now: s.Now} }, cred.AccessKey, nil)
	})
}
