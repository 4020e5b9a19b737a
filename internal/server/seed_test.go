package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/seed"
	"github.com/nkms/nkms/internal/testkit"
)

// The example seed file of the documentation and what it declares.
const (
	exampleSeed = "../../docs/examples/seed.yaml"
	exampleTag  = "3a922c672183301414e0844bc9624588f62db98294dab24455107880a1fcd9d2"
	ciKey       = "CIACCESSKEY00001"
	ciSecret    = "ci-secret-0123456789"
	appKey      = "CIAPPKEY00000001"
	appSecret   = "app-secret-0123456789"
)

func seedEnv(k string) (string, bool) {
	v, ok := map[string]string{"CI_SECRET": ciSecret, "CI_APP_SECRET": appSecret}[k]
	return v, ok
}

// seededConfig is testConfig with the example seed and no NKMS_ACCESS_KEY.
func seededConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.AccessKey, cfg.SecretKey = "", ""
	cfg.Seed = exampleSeed
	cfg.SeedEnv = seedEnv
	return cfg
}

func startSeeded(t *testing.T, cfg Config) (*Server, *testkit.Buffer) {
	t.Helper()
	var stderr testkit.Buffer
	s, err := Start(context.Background(), cfg, &stderr)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { s.Close() })
	return s, &stderr
}

func newClient(t *testing.T, url, id, secret string) *client.Client {
	t.Helper()
	c, err := client.New(url, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSeedAcrossDataDirs: the example seed gives a fixed key whose
// ciphertexts decrypt on a fresh data dir (another root key) seeded with
// the same file; a second start on the same data dir changes nothing; no
// first access key is generated, since the seed declares an operator.
func TestSeedAcrossDataDirs(t *testing.T) {
	ctx := context.Background()
	cfg := seededConfig(t)
	a, stderr := startSeeded(t, cfg)
	if out := stderr.String(); !strings.Contains(out, "nkms: seed "+exampleSeed+": 4 created, 0 already present") ||
		strings.Contains(out, "NKMS_SECRET_KEY=") {
		t.Fatalf("stderr of the first start:\n%s", out)
	}
	app := newClient(t, a.URL, appKey, appSecret)
	ct, err := app.Encrypt(ctx, exampleTag, []byte("across runs"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ops := newClient(t, a.URL, ciKey, ciSecret)
	before, err := ops.ListKeys(ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	versions, err := ops.ListVersions(ctx, exampleTag)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()

	a2, stderr := startSeeded(t, cfg)
	if out := stderr.String(); !strings.Contains(out, "0 created, 4 already present") {
		t.Fatalf("stderr of the second start:\n%s", out)
	}
	ops = newClient(t, a2.URL, ciKey, ciSecret)
	after, err := ops.ListKeys(ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	versions2, err := ops.ListVersions(ctx, exampleTag)
	if err != nil {
		t.Fatal(err)
	}
	if !equalJSON(t, before, after) || !equalJSON(t, versions, versions2) {
		t.Fatalf("the second start changed keys:\n%+v\n%+v", before, after)
	}
	a2.Close()

	b, _ := startSeeded(t, seededConfig(t)) // a fresh data dir and root key
	pt, err := newClient(t, b.URL, appKey, appSecret).Decrypt(ctx, exampleTag, ct, nil)
	if err != nil || string(pt) != "across runs" {
		t.Fatalf("decrypt on a fresh data dir: %q, %v", pt, err)
	}
}

// TestSeedConflictStopsStart: a seed that contradicts the data dir stops
// the start with every conflict, applies nothing and serves nothing.
func TestSeedConflictStopsStart(t *testing.T) {
	cfg := seededConfig(t)
	a, _ := startSeeded(t, cfg)
	a.Close()
	changed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(changed, []byte(`
accessKeys:
  - {accessKey: CIACCESSKEY00001, secretKey: another-secret-0123456789, keystore: 1, role: admin}
  - {accessKey: NEWKEY0001, secretKey: new-secret-0123456789, keystore: 1, role: admin}
keys:
  - {keystore: 1, name: orders, type: RSA2048}
  - {keystore: 1, name: brandnew, type: AES256}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = changed
	var stderr testkit.Buffer
	s, err := Start(context.Background(), cfg, &stderr)
	if err == nil {
		s.Close()
		t.Fatal("started with a conflicting seed")
	}
	for _, want := range []string{"--seed " + changed, "nothing was applied",
		`accessKeys[0] (accessKey "CIACCESSKEY00001"): secretKey: differs`,
		`keys[0] (keystore 1, name "orders"): type: existing AES256, declared RSA2048`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error\n%v\ndoes not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "another-secret") || strings.Contains(stderr.String(), "serving on") {
		t.Fatalf("error %v\nstderr %s", err, stderr.String())
	}
	// Nothing of it was applied: the first seed still starts, and finds
	// neither NEWKEY0001 nor brandnew.
	cfg.Seed = exampleSeed
	a, _ = startSeeded(t, cfg)
	ops := newClient(t, a.URL, ciKey, ciSecret)
	list, err := ops.ListKeys(context.Background(), 1, 10)
	if err != nil || list.TotalCount != 2 {
		t.Fatalf("keys after the refused seed: %+v, %v", list, err)
	}
	if aks, err := ops.ListAccessKeys(context.Background()); err != nil || len(aks) != 2 {
		t.Fatalf("access keys after the refused seed: %+v, %v", aks, err)
	}
}

// TestSeedExportRoute: only operators export; material only from a server
// started with AllowMaterialExport; an export with material, written as a
// file and seeded into a fresh server, decrypts what the first encrypted.
func TestSeedExportRoute(t *testing.T) {
	ctx := context.Background()
	a, _ := startSeeded(t, seededConfig(t))
	ops := newClient(t, a.URL, ciKey, ciSecret)
	if _, err := newClient(t, a.URL, appKey, appSecret).ExportSeed(ctx, false); !isGateway(err, http.StatusUnauthorized, "210") {
		t.Fatalf("a crypto access key exports: %v", err)
	}
	tenant, err := ops.CreateAccessKey(ctx, 2, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, a.URL, tenant.AccessKey, tenant.SecretKey).ExportSeed(ctx, false); !isGateway(err, http.StatusUnauthorized, "210") {
		t.Fatalf("an admin of keystore 2 exports: %v", err)
	}
	var ce *client.Error
	if _, err := ops.ExportSeed(ctx, true); !errors.As(err, &ce) || ce.Status != http.StatusForbidden ||
		!strings.Contains(ce.Message, "--allow-material-export") {
		t.Fatalf("material from a server without --allow-material-export: %v", err)
	}
	x, err := ops.ExportSeed(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Keys) != 2 || len(x.AccessKeys) != 3 || x.Keys[0].Material != "" || x.AccessKeys[0].SecretKey != "" {
		t.Fatalf("export without material: %+v", x)
	}
	a.Close()

	cfg := seededConfig(t)
	cfg.AllowMaterialExport = true
	a, stderr := startSeeded(t, cfg)
	if !strings.Contains(stderr.String(), "WARNING: --allow-material-export") {
		t.Fatalf("no warning at start-up:\n%s", stderr.String())
	}
	ops = newClient(t, a.URL, ciKey, ciSecret)
	signing := ""
	list, err := ops.ListKeys(ctx, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.KeyList {
		if k.KeyName == "signing" {
			signing = k.KeyTag
		}
	}
	if _, err := ops.Rotate(ctx, exampleTag); err != nil {
		t.Fatal(err)
	}
	ct, err := ops.Encrypt(ctx, exampleTag, []byte("version 2"), nil)
	if err != nil || !strings.HasPrefix(ct, "ncpkms:v2:") {
		t.Fatalf("encrypt: %q, %v", ct, err)
	}
	sig, err := ops.Sign(ctx, signing, []byte("signed by A"))
	if err != nil {
		t.Fatal(err)
	}
	var f seed.File
	if err := ops.Do(ctx, http.MethodGet, "/nkms/v1/seed?material=true", nil, &f); err != nil {
		t.Fatal(err)
	}
	text, err := seed.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "exported.yaml")
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgB := seededConfig(t)
	cfgB.Seed = file
	b, _ := startSeeded(t, cfgB)
	opsB := newClient(t, b.URL, ciKey, ciSecret)
	pt, err := opsB.Decrypt(ctx, exampleTag, ct, nil)
	if err != nil || string(pt) != "version 2" {
		t.Fatalf("B decrypts A's ciphertext: %q, %v", pt, err)
	}
	if ok, err := opsB.Verify(ctx, signing, []byte("signed by A"), sig); err != nil || !ok {
		t.Fatalf("B verifies A's signature: %v, %v", ok, err)
	}
}

func isGateway(err error, status int, code string) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == status && ce.ErrorCode == code
}

// equalJSON compares two answers as the client decoded them.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}
