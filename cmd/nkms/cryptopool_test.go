package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
)

// TestCryptoWorkersFlags: --crypto-workers and --crypto-queue-timeout must
// not be negative; with a pool of one worker RSA-2048 keys still sign and
// decrypt one request after the other (the 503 of a full pool is tested
// through HTTP in api).
func TestCryptoWorkersFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--crypto-workers", "-1"}, {"--crypto-queue-timeout", "-1s"}} {
		cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
		cmd.Env = append(os.Environ(), credEnv...)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "must not be negative") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	p := start(t, t.TempDir(), credEnv, "--crypto-workers", "1", "--crypto-queue-timeout", "10s")
	c := adminClient(t, p)
	ctx := context.Background()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "rsa", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, k.KeyTag, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := c.Sign(ctx, k.KeyTag, []byte("message")); err != nil {
			t.Fatalf("sign %d with --crypto-workers 1: %v", i+1, err)
		}
		if pt, err := c.Decrypt(ctx, k.KeyTag, ct, nil); err != nil || string(pt) != "secret" {
			t.Fatalf("decrypt %d with --crypto-workers 1: %q %v", i+1, pt, err)
		}
	}
}
