package nkms_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/nkms/nkms/client"
	nkms "github.com/nkms/nkms/testcontainers"
)

// image is $NKMS_IMAGE, or one built by ../tools/build-image.sh.
var image string

// TestMain finds a container engine: DOCKER_HOST when set, else podman's
// Docker-compatible API, started here on a socket of its own (with Ryuk
// off: it needs a privileged container, and the test removes its own
// containers, and the published ports are reached on 127.0.0.1). Without
// either, the tests are skipped; with CI=true they fail.
func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nkms testcontainers:", err)
		if os.Getenv("CI") == "true" {
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "nkms testcontainers: skipping the tests")
		os.Exit(0)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "nkms-testcontainers")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := exec.LookPath("podman"); err != nil {
			return 0, fmt.Errorf("no DOCKER_HOST and no podman (apt-get install podman runc): %w", err)
		}
		if os.Getenv("CONTAINERS_CONF") == "" {
			conf := filepath.Join(dir, "containers.conf")
			text := "[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = \"cgroupfs\"\n"
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				return 0, err
			}
			os.Setenv("CONTAINERS_CONF", conf)
		}
		stop, err := startPodmanService(filepath.Join(dir, "podman.sock"))
		if err != nil {
			return 0, err
		}
		defer stop()
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		// The engine is on this machine, and the ports it publishes are on
		// its loopback. Without this, testcontainers-go (which takes a
		// /.dockerenv file to mean that the tests run in a container) would
		// use the gateway of podman's bridge network, a 10.88.x.x address.
		if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
			os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
		}
	}
	if image = os.Getenv("NKMS_IMAGE"); image == "" {
		image = "localhost/nkms:testcontainers"
		if out, err := exec.Command("../tools/build-image.sh", image).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("../tools/build-image.sh: %v\n%s", err, out)
		}
	}
	return m.Run(), nil
}

// startPodmanService runs `podman system service` on a unix socket at
// path, sets DOCKER_HOST to it and waits until it answers; stop ends it.
func startPodmanService(path string) (stop func(), err error) {
	cmd := exec.Command("podman", "system", "service", "--time=0", "unix://"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() {
		cmd.Process.Kill()
		<-exited
	}
	os.Setenv("DOCKER_HOST", "unix://"+path)
	// Polling is the only way to wait for another process's socket.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := exec.Command("podman", "--url", "unix://"+path, "version").Run(); err == nil {
			return stop, nil
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			return nil, fmt.Errorf("podman system service exited: %v\n%s", err, stderr.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("podman system service: no answer on %s within 30s\n%s", path, stderr.Bytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRun: the module starts the image, waits for it, and its client
// creates a key and encrypts and decrypts through the published port.
func TestRun(t *testing.T) {
	ctx := context.Background()
	ctr, err := nkms.Run(ctx, image)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	url, err := ctr.BaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nkms at %s, access key %s", url, ctr.AccessKey())
	c, err := ctr.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "testcontainers", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, key.KeyTag, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := c.Decrypt(ctx, key.KeyTag, ct, nil); err != nil || string(pt) != "secret" {
		t.Fatalf("decrypt: %q, %v; want secret", pt, err)
	}
}

// TestWithCredentials: the server ensures the given access key, and a
// wrong secret is refused.
func TestWithCredentials(t *testing.T) {
	ctx := context.Background()
	ctr, err := nkms.Run(ctx, image, nkms.WithCredentials("MYACCESSKEY", "my-secret-0123456789"))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	url, err := ctr.BaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := client.New(url, "MYACCESSKEY", "my-secret-0123456789")
	if _, err := good.ListKeys(ctx, 1, 10); err != nil {
		t.Fatalf("with the given credentials: %v", err)
	}
	bad, _ := client.New(url, "MYACCESSKEY", "wrong-secret-0123456789")
	if _, err := bad.ListKeys(ctx, 1, 10); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	if _, err := nkms.Run(ctx, image, nkms.WithCredentials("MYACCESSKEY", "short")); err == nil {
		t.Fatal("Run took a secret of 5 characters")
	}
}

// TestWithSeedAndDevClock: a seeded key (fixed tag and material, and an
// access key whose secret the container's environment gives) decrypts a
// ciphertext another server made, and after a deletion request, Advance
// 72h destroys it.
func TestWithSeedAndDevClock(t *testing.T) {
	const (
		tag  = "6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe"
		seed = `accessKeys:
  - {accessKey: CARDSAPP0001, secretKey: "${CARDS_SECRET}", keystore: 1, role: crypto}
keys:
  - {keystore: 1, name: cards, type: AES256, tag: ` + tag + `,
     material: bmttc3Rlc3QgZXhhbXBsZSBrZXkgLSBub3QgYSBzZWM=}
`
	)
	ctx := context.Background()
	ctr, err := nkms.Run(ctx, image, nkms.WithSeed(seed), nkms.WithDevClock(),
		testcontainers.WithEnv(map[string]string{"CARDS_SECRET": "cards-app-secret-0123456789"}))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	url, err := ctr.BaseURL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := client.New(url, "CARDSAPP0001", "cards-app-secret-0123456789")
	pt, err := app.Decrypt(ctx, tag, "ncpkms:v1:p+yRO2U4aSUgvFZuT21zKN7gncCbkRIXMUiJ6qDmSrOxo0Ra9BlVrc6/HVxF7nU=", nil)
	if err != nil || string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("decrypt with the seeded key: %q, %v", pt, err)
	}
	c, err := ctr.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, tag); err != nil {
		t.Fatal(err)
	}
	clock, err := ctr.Advance(ctx, 72*time.Hour)
	if err != nil || clock.Destroyed != 1 {
		t.Fatalf("advance 72h: %+v, %v; want 1 key destroyed", clock, err)
	}
	if _, err := c.GetKey(ctx, tag); err == nil {
		t.Fatal("the key is still there 72h after its deletion was requested")
	}
}
