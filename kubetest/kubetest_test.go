package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/nkms/nkms/client"
)

// binary is the nkms binary, built from the repository (its own module, so
// with the etcd client and gRPC that nkms ships with) by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubetest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nkms")
	build := exec.Command("go", "build", "-C", "..", "-o", binary, "./cmd/nkms")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nkms:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	accessKey = "KUBETESTADMIN"
	secretKey = "kubetest-secret-key-0123456789abcdef"
)

var secrets = schema.GroupResource{Resource: "secrets"}

// proc is a running nkms process.
type proc struct {
	cmd    *exec.Cmd
	stderr *buffer
	done   chan error
}

// buffer collects a process's stderr.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs binary with args and env, and waits until its stderr has a
// line that matches ready (the first group is returned); a process still
// running at the end of the test is killed.
func start(t *testing.T, env []string, ready *regexp.Regexp, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p := &proc{cmd: cmd, stderr: &buffer{}, done: make(chan error, 1)}
	cmd.Stderr = io.MultiWriter(pw, p.stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	var match string
	select {
	case match = <-found:
	case err := <-p.done:
		t.Fatalf("nkms %s exited before it was ready: %v\n%s", args[0], err, p.stderr)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("nkms %s was not ready within 30s:\n%s", args[0], p.stderr)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p, match
}

// terminate sends SIGTERM and returns the exit error (nil for status 0).
func (p *proc) terminate() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	return <-p.done
}

var (
	servingRE = regexp.MustCompile(`nkms: serving on (http://\S+)`)
	pluginRE  = regexp.MustCompile(`nkms: kube-kms-plugin serving on (unix://\S+)`)
)

// startServer runs `nkms server` on dataDir (listen: an address, or
// 127.0.0.1:0) and returns it and its URL.
func startServer(t *testing.T, dataDir, listen string) (*proc, string) {
	t.Helper()
	return start(t, []string{"NKMS_ACCESS_KEY=" + accessKey, "NKMS_SECRET_KEY=" + secretKey}, servingRE,
		"server", "--listen", listen, "--data-dir", dataDir, "--log-level", "warn")
}

// startPlugin runs `nkms kube-kms-plugin` on socket with the credentials
// of env. --probe-ttl is the shortest there is, so that every Status
// probes: kube-apiserver's own probe caches for 10 s to a minute, which
// this test does not wait out.
func startPlugin(t *testing.T, endpoint, tag, socket string, env ...string) *proc {
	t.Helper()
	env = append([]string{"NKMS_ENDPOINT=" + endpoint, "HOME=" + t.TempDir()}, env...)
	p, _ := start(t, env, pluginRE, "kube-kms-plugin", "--listen", "unix://"+socket, "--key-tag", tag, "--probe-ttl", "1ns")
	return p
}

// socketPath is a socket path short enough for a Unix socket (107 bytes).
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "kmsplugin", "kms.sock")
}

// encryptionConfig writes the EncryptionConfiguration of docs/kubernetes.md
// with its endpoint moved to socket, and returns the file's path.
func encryptionConfig(t *testing.T, socket string) string {
	t.Helper()
	page, err := os.ReadFile("../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n.*?)```").FindSubmatch(page)
	if m == nil {
		t.Fatal("docs/kubernetes.md has no EncryptionConfiguration in a yaml block")
	}
	const docSocket = "unix:///var/run/kmsplugin/kms.sock"
	if !bytes.Contains(m[1], []byte(docSocket)) {
		t.Fatalf("the EncryptionConfiguration of docs/kubernetes.md has no endpoint %s", docSocket)
	}
	path := filepath.Join(t.TempDir(), "encryption-config.yaml")
	if err := os.WriteFile(path, bytes.ReplaceAll(m[1], []byte(docSocket), []byte("unix://"+socket)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiserver is what one kube-apiserver builds from the EncryptionConfiguration:
// the secrets transformer (KMS v2 envelope behind the k8s:enc:kms:v2:nkms:
// prefix) and the kms-providers health check. Loading it primes the
// provider as kube-apiserver does at start: one Status, and an Encrypt of
// a new DEK seed when that works.
type apiserver struct {
	transformer value.Transformer
	health      func() error
}

var apiserverCount int

func loadAPIServer(t *testing.T, configFile string) *apiserver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	apiserverCount++
	cfg, err := encryptionconfig.LoadEncryptionConfig(ctx, configFile, false, fmt.Sprintf("apiserver-%d", apiserverCount))
	if err != nil {
		t.Fatalf("LoadEncryptionConfig: %v", err)
	}
	if len(cfg.HealthChecks) != 1 {
		t.Fatalf("%d health checks, want 1", len(cfg.HealthChecks))
	}
	req, _ := http.NewRequest(http.MethodGet, "/healthz/kms-providers", nil)
	return &apiserver{
		transformer: cfg.Transformers[secrets],
		health:      func() error { return cfg.HealthChecks[0].Check(req) },
	}
}

// write transforms a Secret's bytes for storage under its etcd key.
func (a *apiserver) write(key string, data []byte) ([]byte, error) {
	return a.transformer.TransformToStorage(context.Background(), data, value.DefaultContext(key))
}

// read transforms a stored value back.
func (a *apiserver) read(key string, stored []byte) ([]byte, error) {
	out, _, err := a.transformer.TransformFromStorage(context.Background(), stored, value.DefaultContext(key))
	return out, err
}

const prefix = "k8s:enc:kms:v2:nkms:"

// keyIDOf is the key_id kube-apiserver stored with a value.
func keyIDOf(t *testing.T, stored []byte) string {
	t.Helper()
	return envelope(t, stored).KeyID
}

// wrappedDEK is the DEK seed, wrapped by the plugin, that kube-apiserver
// stored with a value.
func wrappedDEK(t *testing.T, stored []byte) []byte {
	t.Helper()
	return envelope(t, stored).EncryptedDEKSource
}

// envelope decodes kube-apiserver's envelope of a stored value.
func envelope(t *testing.T, stored []byte) *kmstypes.EncryptedObject {
	t.Helper()
	rest, ok := bytes.CutPrefix(stored, []byte(prefix))
	if !ok {
		t.Fatalf("stored value %.30q does not start with %s", stored, prefix)
	}
	var o kmstypes.EncryptedObject
	if err := proto.Unmarshal(rest, &o); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(o.EncryptedDEKSource, []byte("ncpkms:v")) {
		t.Errorf("the wrapped DEK %.12q… is not an nkms ciphertext", o.EncryptedDEKSource)
	}
	return &o
}

// pluginClient is kube-apiserver's gRPC client of the plugin (what the
// health probe calls Status with).
func pluginClient(t *testing.T, socket string) kmsservice.Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	svc, err := kmsv2.NewGRPCService(ctx, "unix://"+socket, "nkms-status", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestSecretsAtRest: with the EncryptionConfiguration of the docs, a
// Secret is stored as k8s:enc:kms:v2:nkms:… with key_id <tag>:v1, without
// its plaintext, and reads back; another kube-apiserver (a fresh DEK
// cache, so the plugin's Decrypt is called) reads it too. A rotation gives
// a new key_id to what is written after it, and the values written before
// still read. SIGTERM stops the plugin with exit 0 and removes its socket.
func TestSecretsAtRest(t *testing.T) {
	_, endpoint := startServer(t, t.TempDir(), "127.0.0.1:0")
	kms, err := client.New(endpoint, accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "kubernetes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	socket := socketPath(t)
	plugin := startPlugin(t, endpoint, key.KeyTag, socket, "NKMS_ACCESS_KEY="+accessKey, "NKMS_SECRET_KEY="+secretKey)
	if st, err := os.Stat(socket); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v, %v; want mode 0600", st.Mode(), err)
	}
	config := encryptionConfig(t, socket)

	api := loadAPIServer(t, config)
	if err := api.health(); err != nil {
		t.Fatalf("kms-providers health check: %v", err)
	}
	secret := []byte(`{"kind":"Secret","data":{"password":"aHVudGVyMg=="},"stringData":"hunter2-plaintext"}`)
	const etcdKey = "/registry/secrets/default/nkms-check"
	stored, err := api.write(etcdKey, secret)
	if err != nil {
		t.Fatalf("TransformToStorage: %v", err)
	}
	if bytes.Contains(stored, []byte("hunter2")) {
		t.Fatal("the stored value holds the Secret's plaintext")
	}
	if id := keyIDOf(t, stored); id != key.KeyTag+":v1" {
		t.Fatalf("stored key_id = %q, want %s:v1", id, key.KeyTag)
	}
	if got, err := api.read(etcdKey, stored); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("TransformFromStorage = %q, %v; want the Secret", got, err)
	}
	// The etcd key is authenticated data: a value moved to another key does not read.
	if _, err := api.read("/registry/secrets/default/other", stored); err == nil {
		t.Fatal("a value read back under another etcd key")
	}
	if got, err := loadAPIServer(t, config).read(etcdKey, stored); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("another kube-apiserver reads %q, %v; want the Secret", got, err)
	}

	// Rotation: kube-apiserver sees the new key_id in Status (its probe
	// does, every minute; a kube-apiserver started now does at once) and
	// wraps a new DEK with the new version.
	if _, err := kms.Rotate(ctx, key.KeyTag); err != nil {
		t.Fatal(err)
	}
	if st, err := pluginClient(t, socket).Status(ctx); err != nil || st.KeyID != key.KeyTag+":v2" || st.Healthz != "ok" {
		t.Fatalf("Status after rotation = %+v, %v; want ok with key_id %s:v2", st, err, key.KeyTag)
	}
	rotated := loadAPIServer(t, config)
	if err := rotated.health(); err != nil {
		t.Fatalf("kms-providers health check after rotation: %v", err)
	}
	stored2, err := rotated.write(etcdKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	if id := keyIDOf(t, stored2); id != key.KeyTag+":v2" {
		t.Fatalf("key_id written after rotation = %q, want %s:v2", id, key.KeyTag)
	}
	for name, v := range map[string][]byte{"before": stored, "after": stored2} {
		if got, err := rotated.read(etcdKey, v); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("a value written %s the rotation reads %q, %v; want the Secret", name, got, err)
		}
	}

	if err := plugin.terminate(); err != nil {
		t.Fatalf("plugin exit after SIGTERM: %v\n%s", err, plugin.stderr)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket after SIGTERM: %v, want it removed", err)
	}
	for _, leaked := range []string{secretKey, "hunter2"} {
		if strings.Contains(plugin.stderr.String(), leaked) {
			t.Errorf("the plugin's log holds %q", leaked)
		}
	}
}

// TestKMSOutage: nkms stopped → the plugin's Status is unhealthy with the
// reason, kube-apiserver's kms-providers check fails with it, a
// kube-apiserver that starts now cannot read encrypted values (Unavailable),
// while one already running still reads and writes with its cached DEK.
// nkms started again on the same data dir and address → Status ok, with no
// restart of the plugin, and everything reads.
func TestKMSOutage(t *testing.T) {
	dataDir := t.TempDir()
	server, endpoint := startServer(t, dataDir, "127.0.0.1:0")
	kms, err := client.New(endpoint, accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key, err := kms.CreateKey(ctx, client.CreateKeyRequest{KeyName: "kubernetes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	socket := socketPath(t)
	plugin := startPlugin(t, endpoint, key.KeyTag, socket, "NKMS_ACCESS_KEY="+accessKey, "NKMS_SECRET_KEY="+secretKey)
	config := encryptionConfig(t, socket)
	running := loadAPIServer(t, config)
	const etcdKey = "/registry/secrets/kube-system/token"
	secret := []byte("a Secret written before the outage")
	stored, err := running.write(etcdKey, secret)
	if err != nil {
		t.Fatal(err)
	}

	if err := server.terminate(); err != nil {
		t.Fatalf("nkms server exit after SIGTERM: %v", err)
	}
	st, err := pluginClient(t, socket).Status(ctx)
	if err != nil || st.Healthz == "ok" || st.KeyID != "" || !strings.Contains(st.Healthz, "unreachable") {
		t.Fatalf("Status with nkms stopped = %+v, %v; want unhealthy, unreachable, no key_id", st, err)
	}
	t.Logf("the plugin's Status during the outage: healthz %q", st.Healthz)

	starting := loadAPIServer(t, config)
	err = starting.health()
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("kms-providers check of a kube-apiserver started during the outage = %v, want the plugin's reason", err)
	}
	t.Logf("kube-apiserver's kms-providers check during the outage: %v", err)
	// It has had no good Status, so it has no state: it reads and writes
	// nothing (until its probe, every 10 s, succeeds).
	if _, err := starting.read(etcdKey, stored); err == nil {
		t.Fatal("a kube-apiserver started during the outage read a value")
	} else {
		t.Logf("a read by a kube-apiserver started during the outage: %v", err)
	}
	if _, err := starting.write(etcdKey, secret); err == nil {
		t.Fatal("a kube-apiserver started during the outage wrote a value (it has no DEK)")
	} else {
		t.Logf("a write by a kube-apiserver started during the outage: %v", err)
	}
	// kube-apiserver's gRPC client gets Unavailable for the wrapped DEK.
	_, err = pluginClient(t, socket).Decrypt(ctx, "uid", &kmsservice.DecryptRequest{Ciphertext: wrappedDEK(t, stored), KeyID: key.KeyTag + ":v1"})
	if s, ok := status.FromError(err); !ok || s.Code() != codes.Unavailable {
		t.Fatalf("Decrypt during the outage = %v, want gRPC Unavailable", err)
	}
	t.Logf("Decrypt during the outage: %v", err)
	// The running kube-apiserver has its DEK: it reads and writes on.
	if got, err := running.read(etcdKey, stored); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the running kube-apiserver reads %q, %v during the outage; want the Secret (its DEK is cached)", got, err)
	}
	during, err := running.write(etcdKey, secret)
	if err != nil {
		t.Fatalf("the running kube-apiserver's write during the outage: %v (its DEK stays valid 3 minutes after the last good Status)", err)
	}

	u, _ := url.Parse(endpoint)
	startServer(t, dataDir, u.Host)
	if st, err := pluginClient(t, socket).Status(ctx); err != nil || st.Healthz != "ok" || st.KeyID != key.KeyTag+":v1" {
		t.Fatalf("Status after nkms restarted = %+v, %v; want ok, %s:v1", st, err, key.KeyTag)
	}
	after := loadAPIServer(t, config)
	if err := after.health(); err != nil {
		t.Fatalf("kms-providers check after nkms restarted: %v", err)
	}
	for name, v := range map[string][]byte{"before": stored, "during": during} {
		if got, err := after.read(etcdKey, v); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("a value written %s the outage reads %q, %v after it", name, got, err)
		}
	}
	if plugin.cmd.ProcessState != nil {
		t.Fatal("the plugin exited during the outage")
	}
}

// TestWrongCredentials: a plugin with a secret key the KMS refuses is
// unhealthy, and kube-apiserver's check says the credentials were refused;
// it writes nothing.
func TestWrongCredentials(t *testing.T) {
	_, endpoint := startServer(t, t.TempDir(), "127.0.0.1:0")
	kms, err := client.New(endpoint, accessKey, secretKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kms.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "kubernetes", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	socket := socketPath(t)
	const wrong = "not-the-secret-key-of-this-server"
	plugin := startPlugin(t, endpoint, key.KeyTag, socket, "NKMS_ACCESS_KEY="+accessKey, "NKMS_SECRET_KEY="+wrong)
	api := loadAPIServer(t, encryptionConfig(t, socket))
	err = api.health()
	if err == nil || !strings.Contains(err.Error(), "refused the plugin's credentials") {
		t.Fatalf("kms-providers check with a wrong secret = %v, want the credentials named", err)
	}
	t.Logf("kube-apiserver's kms-providers check with a wrong secret key: %v", err)
	if _, err := api.write("/registry/secrets/default/x", []byte("x")); err == nil {
		t.Fatal("kube-apiserver wrote a value with a plugin whose credentials are refused")
	}
	svc := pluginClient(t, socket)
	_, err = svc.Encrypt(context.Background(), "uid", []byte("0123456789abcdef0123456789abcdef"))
	if st, ok := status.FromError(err); !ok || st.Code() != codes.Unauthenticated {
		t.Fatalf("Encrypt with a wrong secret = %v, want gRPC Unauthenticated", err)
	}
	if strings.Contains(plugin.stderr.String(), wrong) {
		t.Error("the plugin's log holds the secret key")
	}
}
