package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/bolt"
)

// binary is the nkms binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nkms-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nkms")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build nkms: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testAccessKey = "E2EACCESSKEY"
	testSecretKey = "e2e-secret-key-0123456789"
)

// start runs `nkms server` on a free loopback port and waits until it serves.
func start(t *testing.T, dataDir string, env []string, args ...string) *testkit.Proc {
	t.Helper()
	return testkit.StartServer(t, binary, dataDir, env, args...)
}

// adminClient returns a client of p with the test's credentials.
func adminClient(t *testing.T, p *testkit.Proc, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(p.URL, testAccessKey, testSecretKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var credEnv = []string{"NKMS_ACCESS_KEY=" + testAccessKey, "NKMS_SECRET_KEY=" + testSecretKey}

// eventually polls cond until it holds or the deadline passes. Used only
// across a process boundary, where there is nothing else to wait on.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isNotFound(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == 404 && ce.Code == "NOT_FOUND"
}

// TestFirstStartPrintsCredentialsOnce: with no NKMS_* variables and no access
// key yet, the server creates one and prints it once; it works.
func TestFirstStartPrintsCredentialsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"NKMS_ACCESS_KEY=", "NKMS_SECRET_KEY="}
	p := start(t, dir, env)
	m := regexp.MustCompile(`NKMS_ACCESS_KEY=(\S+)\nNKMS_SECRET_KEY=(\S+)`).FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no credentials printed:\n%s", p.Stderr)
	}
	c, err := client.New(p.URL, m[1], m[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(context.Background(), 1, 10); err != nil {
		t.Fatalf("printed credentials do not work: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "root.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v mode %v", err, fi.Mode())
	}
	p.Stop(t)
	p2 := start(t, dir, env)
	if strings.Contains(p2.Stderr.String(), "NKMS_SECRET_KEY=") {
		t.Fatalf("credentials printed again on the second start:\n%s", p2.Stderr)
	}
}

// TestLifecycleAcrossCrashes runs the whole key lifecycle through the binary,
// SIGKILLs it in the middle of writes, restarts it on the same data dir and
// checks that every acknowledged key and ciphertext survived, that nothing
// half-written appears, and that a deletion window that passed while the
// server was down is honoured at start-up, leaving no sealed material behind.
func TestLifecycleAcrossCrashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	args := []string{"--pending-deletion-window", "2s", "--scheduler-interval", "200ms"}
	p := start(t, dir, credEnv, args...)
	c := adminClient(t, p)

	// Lifecycle with a short window: request, cancel, request, scheduler destroys.
	doomed, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "doomed", KeyType: "AES256", ProtectionType: "BASIC"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, doomed.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelDeletion(ctx, doomed.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, doomed.KeyTag); err != nil {
		t.Fatal(err)
	}
	eventually(t, "scheduler destroys the REVOKE key", 20*time.Second, func() bool {
		_, err := c.GetKey(ctx, doomed.KeyTag)
		return isNotFound(err)
	})

	// Writes in flight when the server is killed.
	type acked struct{ tag, ct string }
	var mu sync.Mutex
	var acks []acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("w%d-%d", w, i), KeyType: "AES256"})
				if err != nil {
					return
				}
				ct, err := c.Encrypt(ctx, k.KeyTag, []byte(k.KeyTag), nil)
				if err != nil {
					mu.Lock()
					acks = append(acks, acked{k.KeyTag, ""})
					mu.Unlock()
					return
				}
				mu.Lock()
				acks = append(acks, acked{k.KeyTag, ct})
				mu.Unlock()
			}
		})
	}
	// A key whose deletion window passes while the server is down.
	pending, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "pending", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, pending.KeyTag); err != nil {
		t.Fatal(err)
	}
	eventually(t, "some writes acknowledged", 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(acks) >= 20 })
	p.Kill()
	close(stop)
	wg.Wait()

	// While the server is down, read the pending key's sealed material from the data file.
	dbPath := filepath.Join(dir, "nkms.db")
	st, err := bolt.Open(dbPath, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pk, err := st.Get(ctx, pending.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	sealed := pk.Versions[0].Sealed
	st.Close()
	// The record may hold the bytes raw or as Base64; look for both.
	holds := func(raw []byte) bool {
		return bytes.Contains(raw, sealed) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(sealed)))
	}
	if raw, _ := os.ReadFile(dbPath); !holds(raw) {
		t.Fatal("sealed material not found in the data file before destruction (the check below could not fail)")
	}
	time.Sleep(2 * time.Second) // let the deletion window pass while the server is down

	p2 := start(t, dir, credEnv, args...)
	c2 := adminClient(t, p2)
	for _, a := range acks {
		k, err := c2.GetKey(ctx, a.tag)
		if err != nil {
			t.Fatalf("acknowledged key %s lost: %v", a.tag, err)
		}
		if a.ct == "" {
			continue
		}
		pt, err := c2.Decrypt(ctx, k.KeyTag, a.ct, nil)
		if err != nil || string(pt) != a.tag {
			t.Fatalf("acknowledged ciphertext of %s does not decrypt: %v", a.tag, err)
		}
	}
	// Nothing half-written: every listed key is complete and usable.
	list, err := c2.ListKeys(ctx, 1, 200)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.KeyList {
		if s.Status != "ENABLE" {
			continue
		}
		if _, err := c2.Encrypt(ctx, s.KeyTag, []byte("x"), nil); err != nil {
			t.Fatalf("listed key %s (%s) is not usable: %v", s.KeyName, s.KeyTag, err)
		}
	}
	eventually(t, "start-up destroys the key whose window passed while down", 10*time.Second, func() bool {
		_, err := c2.GetKey(ctx, pending.KeyTag)
		return isNotFound(err)
	})
	p2.Stop(t)
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if holds(raw) {
		t.Fatal("sealed material of the destroyed key is still in the data file")
	}
	for _, out := range []string{p.Stderr.String(), p2.Stderr.String()} {
		if strings.Contains(out, testSecretKey) || strings.Contains(out, "ncpkms:") {
			t.Fatalf("the server log shows a secret key or a ciphertext:\n%s", out)
		}
	}
	t.Logf("%d acknowledged keys survived the crash", len(acks))
}

// TestAccessKeyCommands drives `nkms access-key create|list|revoke` against a
// running server.
func TestAccessKeyCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := start(t, t.TempDir(), credEnv)
	nkmsCmd := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--url", p.URL)...)
		cmd.Env = append(os.Environ(), credEnv...)
		out, err := cmd.Output()
		return string(out), err
	}
	out, err := nkmsCmd("access-key", "create", "--keystore", "2", "--role", "viewer")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	m := regexp.MustCompile(`NKMS_ACCESS_KEY=(\S+)\nNKMS_SECRET_KEY=(\S+)\nNKMS_KEYSTORE=2\nNKMS_ROLE=viewer`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed %q", out)
	}
	viewer, err := client.New(p.URL, m[1], m[2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.ListKeys(ctx, 1, 10); err != nil {
		t.Fatalf("new viewer cannot list keys: %v", err)
	}
	var ce *client.Error
	if _, err := viewer.CreateKey(ctx, client.CreateKeyRequest{KeyName: "nope", KeyType: "AES256"}); !errors.As(err, &ce) || ce.ErrorCode != "210" {
		t.Fatalf("viewer created a key: %v", err)
	}
	if out, err := nkmsCmd("access-key", "list"); err != nil || !strings.Contains(out, m[1]) || strings.Contains(out, m[2]) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := nkmsCmd("access-key", "revoke", m[1]); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := viewer.ListKeys(ctx, 1, 10); !errors.As(err, &ce) || ce.Status != 401 {
		t.Fatalf("revoked access key still works: %v", err)
	}
}

// TestTokensACLAndUsageLogs drives the token, IP ACL and usage-log routes
// through the binary with the Go client; usage logs written in the background
// survive a graceful restart.
func TestTokensACLAndUsageLogs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	p := start(t, dir, credEnv)
	c := adminClient(t, p)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "tokened", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if last, err := c.LastUse(ctx, k.KeyTag); err != nil || (last != nil && last.Data.API.Action != "CreateKey") {
		t.Fatalf("last use of a new key: %+v %v", last, err)
	}
	if err := c.CreateTokenGenerator(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	set, err := c.CreateTokenSet(ctx, k.KeyTag, 1, client.Unlimited)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := client.NewWithToken(p.URL, set.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := tc.Encrypt(ctx, k.KeyTag, []byte("by token"), nil)
	if err != nil {
		t.Fatalf("encrypt with an access token: %v", err)
	}
	rc, _ := client.NewWithToken(p.URL, set.RefreshToken)
	access, err := rc.CreateAccessToken(ctx, k.KeyTag, 2)
	if err != nil {
		t.Fatalf("access token from a refresh token: %v", err)
	}
	tc2, _ := client.NewWithToken(p.URL, access)
	if pt, err := tc2.Decrypt(ctx, k.KeyTag, ct, nil); err != nil || string(pt) != "by token" {
		t.Fatalf("decrypt with a renewed access token: %q %v", pt, err)
	}
	if _, err := c.EnableACL(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := tc.Encrypt(ctx, k.KeyTag, []byte("x"), nil); !errors.As(err, &ce) || ce.Status != 403 || ce.Code != "FORBIDDEN" {
		t.Fatalf("token call outside the ACL: %v", err)
	}
	if _, err := c.AddACL(ctx, k.KeyTag, []string{"127.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Encrypt(ctx, k.KeyTag, []byte("x"), nil); err != nil {
		t.Fatalf("token call from a listed prefix: %v", err)
	}
	if err := c.ReplaceTokenGenerator(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Encrypt(ctx, k.KeyTag, []byte("x"), nil); !errors.As(err, &ce) || ce.Status != 401 {
		t.Fatalf("token of a replaced generator: %v", err)
	}
	// The usage log is written in the background; a graceful stop flushes it.
	p.Stop(t)
	p2 := start(t, dir, credEnv)
	c2 := adminClient(t, p2)
	list, err := c2.Activities(ctx, k.KeyTag, client.ActivityQuery{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, a := range list.ActivityLogList {
		seen[a.Data.API.Action+"/"+a.Data.API.Type+"/"+a.Data.API.Result]++
	}
	for _, want := range []string{"CreateKey/ACCOUNT/SUCCESS", "Encrypt/TOKEN/SUCCESS", "Decrypt/TOKEN/SUCCESS",
		"Encrypt/TOKEN/FAIL", "CreateAccessToken/TOKEN/SUCCESS", "UpdateTokenGenerator/ACCOUNT/SUCCESS"} {
		if seen[want] == 0 {
			t.Errorf("usage log lacks %s; it has %v", want, seen)
		}
	}
	if strings.Contains(p.Stderr.String(), set.AccessToken) || strings.Contains(p.Stderr.String(), set.RefreshToken) {
		t.Fatal("a token reached the server log")
	}
}
