// Package container tests the nkms container image (the Containerfile at the
// repository root) with podman: it starts the image, waits for its
// HEALTHCHECK, encrypts and decrypts through the published port, and
// decrypts again in a new container on the same volume.
//
// The image is $NKMS_IMAGE when set (.ci/run builds it), else the test builds
// it with tools/build-image.sh. Without podman the test is skipped, except
// in CI (CI=true), where it fails. With $NKMS_CONTAINER_TRANSCRIPT set, the
// podman commands and their output are also appended to that file.
package container

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
)

const (
	accessKey = "CONTAINERTESTKEY1"
	secretKey = "container-test-secret-0123456789"
	imageUser = "65532:65532" // the Containerfile's USER
)

// podman runs podman commands for one test and keeps their transcript.
type podman struct {
	t   *testing.T
	env []string

	mu         sync.Mutex
	transcript bytes.Buffer
}

// newPodman finds podman (skipping the test without it, failing in CI) and
// gives it a containers.conf that works without systemd when
// CONTAINERS_CONF does not name one.
func newPodman(t *testing.T) *podman {
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("podman is not installed; CI must install it (.ci/run does, with runc)")
		}
		t.Skip("podman is not installed: the container image is not tested (apt-get install podman runc)")
	}
	env := os.Environ()
	if os.Getenv("CONTAINERS_CONF") == "" {
		conf := filepath.Join(t.TempDir(), "containers.conf")
		text := "[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = \"cgroupfs\"\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		env = append(env, "CONTAINERS_CONF="+conf)
	}
	p := &podman{t: t, env: env}
	t.Cleanup(p.saveTranscript)
	return p
}

// run runs podman with args, logs the command and its output, and returns
// its standard output (trimmed) and error.
func (p *podman) run(args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	p.record(fmt.Sprintf("$ podman %s\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String()), err)
	return strings.TrimSpace(stdout.String()), err
}

// logs is what the container wrote, on stdout and stderr (podman logs
// gives each on its own stream).
func (p *podman) logs(name string) string {
	p.t.Helper()
	cmd := exec.Command("podman", "logs", name)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("podman logs %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// must is run that fails the test on an error.
func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (p *podman) record(text string, err error) {
	p.t.Helper()
	if err != nil {
		text += fmt.Sprintf("(%v)\n", err)
	}
	p.t.Log(strings.TrimSuffix(text, "\n"))
	p.mu.Lock()
	p.transcript.WriteString(text)
	p.mu.Unlock()
}

// note adds a line of what the test checked to the transcript.
func (p *podman) note(format string, args ...any) {
	p.t.Helper()
	p.record("# "+fmt.Sprintf(format, args...)+"\n", nil)
}

func (p *podman) saveTranscript() {
	path := os.Getenv("NKMS_CONTAINER_TRANSCRIPT")
	if path == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Error(err)
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		_, err = fmt.Fprintf(f, "## %s\n%s\n", p.t.Name(), p.transcript.Bytes())
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		p.t.Error(err)
	}
}

// built is the outcome of the one tools/build-image.sh run of the tests.
var built struct {
	once sync.Once
	out  []byte
	err  error
}

// image returns $NKMS_IMAGE, or builds the image with tools/build-image.sh
// (once for all the tests).
func (p *podman) image() string {
	p.t.Helper()
	if img := os.Getenv("NKMS_IMAGE"); img != "" {
		return img
	}
	const img = "localhost/nkms:containertest"
	built.once.Do(func() {
		cmd := exec.Command("../../tools/build-image.sh", img)
		cmd.Env = p.env
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		p.t.Fatalf("tools/build-image.sh: %v\n%s", built.err, built.out)
	}
	return img
}

// unique is a name for a container or volume of this test.
func unique(t *testing.T, what string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "nkms-test-" + what + "-" + hex.EncodeToString(b)
}

// start runs the image detached as a new container on volume, with env
// (NAME=VALUE) and, when given, a command instead of the image's CMD; it
// removes the container at the end of the test.
func (p *podman) start(image, volume string, env []string, cmd ...string) string {
	p.t.Helper()
	return p.startWith(image, volume, nil, env, cmd...)
}

// startWith is start with more options of podman run (extra), e.g. another
// mount.
func (p *podman) startWith(image, volume string, extra, env []string, cmd ...string) string {
	p.t.Helper()
	name := unique(p.t, "ctr")
	args := []string{"run", "-d", "--runtime", "runc", "--name", name,
		"-p", "127.0.0.1::8383", "-v", volume + ":/data"}
	args = append(args, extra...)
	for _, e := range env {
		args = append(args, "-e", e)
	}
	args = append(args, image)
	args = append(args, cmd...)
	p.t.Cleanup(func() { p.run("rm", "-f", "-t", "0", name) })
	p.must(args...)
	return name
}

// waitHealthy runs the image's HEALTHCHECK (nkms healthcheck, inside the
// container) until it passes. Podman runs it on a timer only under systemd,
// so the test runs it itself; polling is the only way to wait on another
// process's readiness here.
func (p *podman) waitHealthy(name string) {
	p.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Exit 0 is healthy (podman 4.3 prints nothing then; later
		// versions print "healthy").
		out, err := p.run("healthcheck", "run", name)
		if err == nil {
			p.note("exit 0: healthy")
			return
		}
		if time.Now().After(deadline) {
			logs, _ := p.run("logs", name)
			p.t.Fatalf("container %s not healthy within 60s: %q, %v\n%s", name, out, err, logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// url is the published address of the container's port 8383.
func (p *podman) url(scheme, name string) string {
	p.t.Helper()
	addr := p.must("port", name, "8383/tcp")
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		p.t.Fatalf("port 8383 published on %q, want 127.0.0.1:PORT", addr)
	}
	return scheme + "://" + addr
}

// TestImage: the image serves the API on its published port as a non-root
// user, its HEALTHCHECK passes, and its data (root key, access keys, keys)
// lives in the /data volume: a new container on the same volume, started
// without credentials, decrypts what the first one encrypted.
func TestImage(t *testing.T) {
	p := newPodman(t)
	image := p.image()
	ctx := context.Background()

	cfg := p.must("image", "inspect", "--format", "{{.Config.User}} {{json .HealthCheck.Test}}", image)
	if want := imageUser + ` ["CMD","/nkms","healthcheck","--timeout","4s"]`; cfg != want {
		t.Fatalf("image user and HEALTHCHECK: %s, want %s (built without --format docker?)", cfg, want)
	}

	volume := unique(t, "data")
	p.must("volume", "create", volume)
	t.Cleanup(func() { p.run("volume", "rm", "-f", volume) })

	first := p.start(image, volume, []string{"NKMS_ACCESS_KEY=" + accessKey, "NKMS_SECRET_KEY=" + secretKey})
	p.waitHealthy(first)
	if out := p.must("exec", first, "/nkms", "healthcheck"); out != "ok" {
		t.Fatalf("nkms healthcheck in the container: %q, want ok", out)
	}
	// The server process runs as the image's user, and its files in the
	// volume belong to that user.
	if out := p.must("top", first, "user", "huser", "args"); !strings.Contains(out, "65532") || strings.Contains(out, "root") {
		t.Fatalf("podman top: %q; want the server running as 65532", out)
	}
	mount := p.must("volume", "inspect", "--format", "{{.Mountpoint}}", volume)
	for _, f := range []string{"root.key", "nkms.db"} {
		if os.Geteuid() != 0 {
			p.note("not root: rootless podman maps 65532 to a subordinate id; /data's owners are not checked")
			break
		}
		fi, err := os.Stat(filepath.Join(mount, f))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 65532 || st.Gid != 65532 {
			t.Fatalf("/data/%s belongs to %d:%d, want 65532:65532", f, st.Uid, st.Gid)
		}
		p.note("/data/%s: owner %d:%d, mode %v", f, st.Uid, st.Gid, fi.Mode().Perm())
	}

	// Encrypt and decrypt through the published port.
	url := p.url("http", first)
	c, err := client.New(url, accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(ctx); err != nil {
		t.Fatalf("GET %s/healthz from outside: %v", url, err)
	}
	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "container-test", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	plaintext := []byte("hello from outside the container")
	ciphertext, err := c.Encrypt(ctx, key.KeyTag, plaintext, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(ctx, key.KeyTag, ciphertext, nil); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("decrypt: %q, %v; want %q", got, err, plaintext)
	}
	p.note("through %s: created key %s, encrypted to %s, decrypted", url, key.KeyTag, ciphertext)

	// SIGTERM (podman stop) ends the server cleanly: exit 0.
	p.must("stop", "-t", "30", first)
	if code := p.must("inspect", "--format", "{{.State.ExitCode}}", first); code != "0" {
		t.Fatalf("exit code after podman stop: %s, want 0\n%s", code, p.must("logs", first))
	}

	// A new container on the same volume, without credentials in its
	// environment: the access key, the root key and the key are in /data.
	second := p.start(image, volume, nil)
	p.waitHealthy(second)
	url = p.url("http", second)
	c, err = client.New(url, accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(ctx, key.KeyTag, ciphertext, nil); err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("decrypt in a new container on the same volume: %q, %v; want %q", got, err, plaintext)
	}
	p.note("through %s (a new container, same volume): decrypted the ciphertext again", url)
}

// TestImageDevTLS: the image with --dev instead of --insecure-http serves
// HTTPS with the self-signed certificate it keeps in /data, and its
// HEALTHCHECK follows NKMS_ENDPOINT and NKMS_CA_CERT, as the Containerfile
// tells users.
func TestImageDevTLS(t *testing.T) {
	p := newPodman(t)
	image := p.image()
	volume := unique(t, "data")
	p.must("volume", "create", volume)
	t.Cleanup(func() { p.run("volume", "rm", "-f", volume) })

	name := p.start(image, volume,
		[]string{"NKMS_ACCESS_KEY=" + accessKey, "NKMS_SECRET_KEY=" + secretKey,
			"NKMS_ENDPOINT=https://127.0.0.1:8383", "NKMS_CA_CERT=/data/dev-tls-cert.pem"},
		"server", "--listen", "0.0.0.0:8383", "--data-dir", "/data", "--dev")
	p.waitHealthy(name)

	certFile := filepath.Join(t.TempDir(), "dev-tls-cert.pem")
	p.must("cp", name+":/data/dev-tls-cert.pem", certFile)
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in /data/dev-tls-cert.pem")
	}
	url := p.url("https", name)
	c, err := client.New(url, accessKey, secretKey, client.WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(context.Background(), 1, 10); err != nil {
		t.Fatalf("list keys over TLS through %s: %v", url, err)
	}
	p.note("through %s, trusting /data/dev-tls-cert.pem: listed keys", url)
}

// seedFile declares an admin access key whose secret the container's
// environment gives, and a key with a fixed tag and material.
const seedFile = `accessKeys:
  - {accessKey: CISEEDADMIN0001, secretKey: "${CI_SECRET}", keystore: 1, role: admin}
keys:
  - keystore: 1
    name: cards
    type: AES256
    tag: 6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe
    material: bmttc3Rlc3QgZXhhbXBsZSBrZXkgLSBub3QgYSBzZWM=
`

// TestImageSeedAndDevClock: the image with a seed file mounted read-only and
// --dev-clock, as docs/testing.md tells users: the declared key decrypts a
// ciphertext made by another server seeded the same way
// (nkmstest's TestWithSeed), and after a deletion request, advancing the
// clock 72 hours destroys the key.
func TestImageSeedAndDevClock(t *testing.T) {
	p := newPodman(t)
	image := p.image()
	volume := unique(t, "data")
	p.must("volume", "create", volume)
	t.Cleanup(func() { p.run("volume", "rm", "-f", volume) })
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seed, []byte(seedFile), 0o644); err != nil { // the image's user must read it
		t.Fatal(err)
	}
	const secret = "ci-seed-secret-0123456789"
	name := p.startWith(image, volume, []string{"-v", seed + ":/seed.yaml:ro"}, []string{"CI_SECRET=" + secret},
		"server", "--listen", "0.0.0.0:8383", "--data-dir", "/data", "--insecure-http", "--seed", "/seed.yaml", "--dev-clock")
	p.waitHealthy(name)

	ctx := context.Background()
	c, err := client.New(p.url("http", name), "CISEEDADMIN0001", secret)
	if err != nil {
		t.Fatal(err)
	}
	const tag = "6e6b6d7374657374c0ffee00000000000000000000000000000000000000cafe"
	pt, err := c.Decrypt(ctx, tag, "ncpkms:v1:p+yRO2U4aSUgvFZuT21zKN7gncCbkRIXMUiJ6qDmSrOxo0Ra9BlVrc6/HVxF7nU=", nil)
	if err != nil || string(pt) != "4111 1111 1111 1111" {
		t.Fatalf("decrypt with the seeded key: %q, %v", pt, err)
	}
	p.note("the seeded key %s decrypted a ciphertext made by another server", tag)
	if _, err := c.RequestDeletion(ctx, tag); err != nil {
		t.Fatal(err)
	}
	clock, err := c.AdvanceClock(ctx, 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if clock.Destroyed != 1 {
		t.Fatalf("advance 72h: %+v, want 1 key destroyed", clock)
	}
	var e *client.Error
	if _, err := c.GetKey(ctx, tag); !errors.As(err, &e) || e.Status != 404 {
		t.Fatalf("the key after advancing 72h: %v, want 404", err)
	}
	p.note("requested deletion, advanced the clock 72h: %d key destroyed, GET answers 404", clock.Destroyed)
	if logs := p.logs(name); !strings.Contains(logs, "WARNING: --dev-clock is on") {
		t.Fatalf("no --dev-clock warning in the container's log:\n%s", logs)
	}
}
