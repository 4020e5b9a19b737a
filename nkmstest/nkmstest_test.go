package nkmstest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/nkmstest"
)

// TestServerServesTheAPI: a fresh server answers signed requests of its
// operator: a key is created, and what it encrypts it decrypts.
func TestServerServesTheAPI(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []nkmstest.Option
	}{
		{"bbolt", nil},
		{"in memory", []nkmstest.Option{nkmstest.InMemory()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := nkmstest.NewServer(t, tc.opts...)
			key := srv.CreateKey(client.CreateKeyRequest{KeyName: "orders"})
			ctx := context.Background()
			ct, err := srv.Client().Encrypt(ctx, key.KeyTag, []byte("4111 1111 1111 1111"), nil)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := srv.Client().Decrypt(ctx, key.KeyTag, ct, nil)
			if err != nil || string(pt) != "4111 1111 1111 1111" {
				t.Fatalf("decrypt: %q, %v", pt, err)
			}
		})
	}
}

// TestClientV3: the API 3.0 client reaches the same keys.
func TestClientV3(t *testing.T) {
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "both-wires"})
	got, err := srv.ClientV3().GetKey(context.Background(), key.KeyTag)
	if err != nil || got.KeyName != "both-wires" {
		t.Fatalf("GetKey through API 3.0: %+v, %v", got, err)
	}
}

// TestTwoServersAreApart: each server has its own data, credentials and
// port.
func TestTwoServersAreApart(t *testing.T) {
	a, b := nkmstest.NewServer(t), nkmstest.NewServer(t)
	if a.URL == b.URL || a.AccessKey == b.AccessKey || a.SecretKey == b.SecretKey {
		t.Fatalf("two servers share a URL or credentials: %s %s", a.URL, b.URL)
	}
	key := a.CreateKey(client.CreateKeyRequest{KeyName: "only-in-a"})
	if _, err := b.Client().GetKey(context.Background(), key.KeyTag); !isNotFound(err) {
		t.Fatalf("b has a's key: %v", err)
	}
}

// TestAdvanceDestroysAfterTheWindow: a key whose deletion was requested is
// still there (REVOKE) a minute before the 72-hour window ends and gone
// once the clock has passed it; the destruction happens within Advance.
func TestAdvanceDestroysAfterTheWindow(t *testing.T) {
	srv := nkmstest.NewServer(t)
	ctx := context.Background()
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "doomed"})
	if _, err := srv.Client().RequestDeletion(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	srv.Advance(72*time.Hour - time.Minute)
	got, err := srv.Client().GetKey(ctx, key.KeyTag)
	if err != nil || got.Status != "REVOKE" {
		t.Fatalf("a minute before the window ends: %+v, %v; want REVOKE", got, err)
	}
	srv.Advance(2 * time.Minute)
	if _, err := srv.Client().GetKey(ctx, key.KeyTag); !isNotFound(err) {
		t.Fatalf("after the window: %v, want not found", err)
	}
}

// TestAdvanceRotates: a key with auto rotation every 30 days has a second
// version once the clock passed 30 days, and its old ciphertexts still
// decrypt.
func TestAdvanceRotates(t *testing.T) {
	srv := nkmstest.NewServer(t, nkmstest.InMemory())
	ctx := context.Background()
	key := srv.CreateKey(client.CreateKeyRequest{KeyName: "rotating", IsAutoRotation: true, RotationPeriod: 30})
	ct, err := srv.Client().Encrypt(ctx, key.KeyTag, []byte("old"), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Advance(31 * 24 * time.Hour)
	vs, err := srv.Client().ListVersions(ctx, key.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs.VersionList) != 2 {
		t.Fatalf("versions after 31 days: %+v; want 2", vs.VersionList)
	}
	if pt, err := srv.Client().Decrypt(ctx, key.KeyTag, ct, nil); err != nil || string(pt) != "old" {
		t.Fatalf("decrypt a version-1 ciphertext: %q, %v", pt, err)
	}
}

// seedCards declares a key with a fixed tag and material, and a crypto
// access key of its keystore whose secret comes from the environment.
const seedCards = `
accessKeys:
  - {accessKey: CARDSAPP0001, secretKey: "${CARDS_SECRET}", keystore: 1, role: crypto}
keys:
  - keystore: 1
    name: cards
    type: AES256
    tag: 6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe
    material: bmttc3Rlc3QgZXhhbXBsZSBrZXkgLSBub3QgYSBzZWM=   # "nkmstest example key - not a sec"
`

// sealedEarlier is "4111 1111 1111 1111" encrypted under the seeded key by an
// earlier run of a server seeded with seedCards.
const sealedEarlier = "ncpkms:v1:p+yRO2U4aSUgvFZuT21zKN7gncCbkRIXMUiJ6qDmSrOxo0Ra9BlVrc6/HVxF7nU="

// TestWithSeed: a fresh server seeded with a fixed tag and material decrypts
// what an earlier run encrypted, and the declared access key (its secret
// read from the environment) may use the key.
func TestWithSeed(t *testing.T) {
	t.Setenv("CARDS_SECRET", "cards-app-secret-0123456789")
	srv := nkmstest.NewServer(t, nkmstest.InMemory(), nkmstest.WithSeed(seedCards))
	app := srv.NewClient("CARDSAPP0001", "cards-app-secret-0123456789")
	pt, err := app.Decrypt(context.Background(), "6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe", sealedEarlier, nil)
	if err != nil || string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("decrypt an earlier run's ciphertext: %q, %v", pt, err)
	}
	if _, err := app.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "nope", KeyType: "AES256"}); err == nil {
		t.Fatal("a crypto access key created a key")
	}
}

// TestCloseEarly: after Close the server no longer answers, and the
// cleanup that NewServer registered does not fail on the closed server.
func TestCloseEarly(t *testing.T) {
	srv := nkmstest.NewServer(t)
	srv.Close()
	if err := srv.Client().Health(context.Background()); err == nil {
		t.Fatal("the server answers after Close")
	}
}

// TestUserModule runs the tests of testdata/usermod, a module of its own
// that uses nkmstest as an application's tests would (through the module
// path, with goleak checking that nothing is left running). It needs the
// go command and the module proxy (or a module cache with goleak).
func TestUserModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs another module's tests")
	}
	gobin := filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	cmd := exec.Command(gobin, "test", "-count=1", "./...")
	cmd.Dir = filepath.Join("testdata", "usermod")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	t.Logf("go test in %s:\n%s", cmd.Dir, out)
	if err != nil {
		t.Fatalf("the user module's tests failed: %v", err)
	}
}

func isNotFound(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == 404
}
