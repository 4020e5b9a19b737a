package kubekms_test

import (
	"context"
	"testing"

	kmsapi "k8s.io/kms/apis/v2"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/kubekms"
	"github.com/nkms/nkms/nkmstest"
)

// The cost of one call as kube-apiserver makes it: gRPC over the Unix
// socket to the plugin, which calls an nkms server (in this process, over
// loopback HTTP, with signed requests) — and, for comparison, the same
// call made with the client directly. Run with:
//
//	go test -run '^$' -bench . ./internal/kubekms
func benchSetup(b *testing.B) (*plugin, *nkmstest.Server, string) {
	b.Helper()
	srv := nkmstest.NewServer(b, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "kubernetes"})
	return startPlugin(b, kubekms.Config{KMS: srv.Client(), KeyTag: key.KeyTag}), srv, key.KeyTag
}

func BenchmarkPluginEncrypt(b *testing.B) {
	pl, _, _ := benchSetup(b)
	d := dek(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := pl.kms.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: d, Uid: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginDecrypt(b *testing.B) {
	pl, _, _ := benchSetup(b)
	enc := pl.encrypt(b, dek(b))
	req := &kmsapi.DecryptRequest{Ciphertext: enc.Ciphertext, KeyId: enc.KeyId, Uid: "bench"}
	ctx := context.Background()
	for b.Loop() {
		if _, err := pl.kms.Decrypt(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPluginStatusCached(b *testing.B) {
	pl, _, _ := benchSetup(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := pl.kms.Status(ctx, &kmsapi.StatusRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientEncrypt(b *testing.B) {
	_, srv, tag := benchSetup(b)
	d := dek(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := srv.Client().Encrypt(ctx, tag, d, nil); err != nil {
			b.Fatal(err)
		}
	}
}
