package orders_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/nkmstest"

	"example.com/orders/orders"
)

// TestMain fails the package when a test leaves a goroutine running: every
// server nkmstest started must be gone with its test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSealAndOpen(t *testing.T) {
	srv := nkmstest.NewServer(t)
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "cards"})
	v := &orders.Vault{KMS: srv.Client(), KeyTag: key.KeyTag}

	ctx := context.Background()
	sealed, err := v.Seal(ctx, "4111 1111 1111 1111")
	if err != nil {
		t.Fatal(err)
	}
	if card, err := v.Open(ctx, sealed); err != nil || card != "4111 1111 1111 1111" {
		t.Fatalf("open: %q, %v", card, err)
	}
}

// TestCardsAreLostWithTheKey: 72 hours after its deletion was requested the
// key is destroyed, and what it sealed can no longer be opened. Advance
// moves the server's clock; the test takes no time.
func TestCardsAreLostWithTheKey(t *testing.T) {
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "cards"})
	v := &orders.Vault{KMS: srv.Client(), KeyTag: key.KeyTag}
	ctx := context.Background()
	sealed, err := v.Seal(ctx, "4111 1111 1111 1111")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().RequestDeletion(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	srv.Advance(72 * time.Hour)
	if _, err := v.Open(ctx, sealed); err == nil {
		t.Fatal("opened a card after its key was destroyed")
	}
}

// TestCardsOfAnEarlierRun: with the key declared by a fixed tag and
// material, a card sealed by an earlier run (a fixture of this repository)
// opens on a fresh server.
func TestCardsOfAnEarlierRun(t *testing.T) {
	const tag = "6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe"
	srv := nkmstest.NewServer(t, nkmstest.WithSeed(`
keys:
  - {keystore: 1, name: cards, type: AES256, tag: `+tag+`,
     material: bmttc3Rlc3QgZXhhbXBsZSBrZXkgLSBub3QgYSBzZWM=}
`))
	v := &orders.Vault{KMS: srv.Client(), KeyTag: tag}
	card, err := v.Open(context.Background(), "ncpkms:v1:p+yRO2U4aSUgvFZuT21zKN7gncCbkRIXMUiJ6qDmSrOxo0Ra9BlVrc6/HVxF7nU=")
	if err != nil || card != "4111 1111 1111 1111" {
		t.Fatalf("open: %q, %v", card, err)
	}
}
