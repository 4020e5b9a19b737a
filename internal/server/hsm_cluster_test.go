//go:build !noetcd

package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/etcdtest"
	"github.com/nkms/nkms/internal/hsm"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
)

// labelsOf returns the labels of the token's nkms objects that contain sub.
func labelsOf(t *testing.T, tok *hsm.Token, sub string) []string {
	t.Helper()
	objs, err := tok.Objects()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if strings.Contains(o.Label, sub) {
			out = append(out, o.Label)
		}
	}
	return out
}

// TestHSMCluster: two `nkms server` processes on one etcd, each with its
// own PKCS#11 session on the same SoftHSM2 token (one token directory,
// SOFTHSM2_CONF shared), share COMMON_HSM keys: a key made on A encrypts on
// A and decrypts on B, a rotation on B decrypts on A — SoftHSM2's file store
// lets each process find the objects another made after it started. A
// third node on a token with the same label but its own directory warns at
// start-up and answers 503 naming the version, never "decryption failed".
// The start-up sweep of a restarted node deletes an orphan older than the
// grace but not a fresh one, which may be another node's create in
// progress; destroying the key on one node deletes its token objects.
func TestHSMCluster(t *testing.T) {
	tokCfg := hsmtest.NewToken(t) // sets SOFTHSM2_CONF for this process and the nodes
	bin, err := testkit.BuildNKMS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ec := etcdtest.Start(t, 1)
	ctx := context.Background()
	env := []string{"NKMS_ACCESS_KEY=" + testAccessKey, "NKMS_SECRET_KEY=" + testSecretKey, "NKMS_HSM_PIN=" + tokCfg.PIN}
	args := []string{"--store", "etcd", "--etcd-endpoints", strings.Join(ec.Endpoints(), ","),
		"--hsm-module", tokCfg.Module, "--hsm-token", tokCfg.Token}
	base := t.TempDir()
	dirA, dirB, dirC := filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")
	nodeA := testkit.StartServer(t, bin, dirA, env, args...)
	root, err := os.ReadFile(filepath.Join(dirA, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dirB, dirC} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "root.key"), root, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nodeB := testkit.StartServer(t, bin, dirB, env, args...)
	newClient := func(p *testkit.Proc) *client.Client {
		c, err := client.New(p.URL, testAccessKey, testSecretKey, client.WithRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := newClient(nodeA), newClient(nodeB)

	// The test's own session on the token, to look at its objects.
	tok, err := hsm.Open(tokCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tok.Close()

	k, err := a.CreateKey(ctx, client.CreateKeyRequest{KeyName: "shared", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	if err != nil {
		t.Fatal(err)
	}
	ct1, err := a.Encrypt(ctx, k.KeyTag, []byte("made on A"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ctx, k.KeyTag, ct1, nil); err != nil || string(pt) != "made on A" {
		t.Fatalf("decrypt on B what A encrypted: %q, %v", pt, err)
	}
	if _, err := b.Rotate(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	ct2, err := b.Encrypt(ctx, k.KeyTag, []byte("made on B"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct2, "ncpkms:v2:") {
		t.Fatalf("B encrypted with %q, want version 2", ct2[:min(len(ct2), 12)])
	}
	if pt, err := a.Decrypt(ctx, k.KeyTag, ct2, nil); err != nil || string(pt) != "made on B" {
		t.Fatalf("decrypt on A what B encrypted with the version B made: %q, %v", pt, err)
	}
	if got := labelsOf(t, tok, k.KeyTag); len(got) != 2 {
		t.Fatalf("token objects of the key: %q, want one for each of its 2 versions", got)
	}

	// Node C: the same token label and PIN, but a token directory of its own.
	envC := append(append([]string{}, env...), "SOFTHSM2_CONF="+hsmtest.NewConf(t)) // a token with the same label and PINs, other contents
	nodeC := testkit.StartServer(t, bin, dirC, envC, append(args, "--metrics-listen", "127.0.0.1:0")...)
	if !strings.Contains(nodeC.Stderr.String(), "nkms: warning: 2 COMMON_HSM key version(s) are kept in HSM objects this token does not have") {
		t.Errorf("node C on another token does not warn at start-up:\n%s", nodeC.Stderr)
	}
	c := newClient(nodeC)
	for _, tc := range []struct {
		what    string
		version int
		call    func() error
	}{
		{"decrypt v1", 1, func() error { _, err := c.Decrypt(ctx, k.KeyTag, ct1, nil); return err }},
		{"decrypt v2", 2, func() error { _, err := c.Decrypt(ctx, k.KeyTag, ct2, nil); return err }},
		{"encrypt", 2, func() error { _, err := c.Encrypt(ctx, k.KeyTag, []byte("x"), nil); return err }},
	} {
		err := tc.call()
		want := fmt.Sprintf("key version %d is kept in an HSM object this server's token does not have", tc.version)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || !strings.Contains(ce.Details, want) {
			t.Errorf("node C, %s: got %v, want 503 with %q", tc.what, err, want)
		}
	}
	m := metricsRE.FindStringSubmatch(nodeC.Stderr.String())
	if m == nil {
		t.Fatalf("node C has no metrics listener:\n%s", nodeC.Stderr)
	}
	fams := scrape(t, m[1])
	if got := testkit.MetricValue(fams, "nkms_hsm_missing_objects_total", nil); got != 3 {
		t.Errorf("node C: nkms_hsm_missing_objects_total = %v, want 3", got)
	}
	if got := testkit.MetricValue(fams, "nkms_hsm_up", nil); got != 1 {
		t.Errorf("node C: nkms_hsm_up = %v, want 1 (its token answers; it lacks objects)", got)
	}
	nodeC.Stop(t)

	// Two orphans, as a create that has made its object but not yet written
	// its key leaves them: one made now (it may be another node's create in
	// progress), one two hours ago (past the sweep's grace of an hour).
	fresh, stale := randomTag(t), randomTag(t)
	for _, o := range []struct {
		tag string
		at  time.Time
	}{{fresh, time.Now()}, {stale, time.Now().Add(-2 * time.Hour)}} {
		id, err := crypto.RandomBytes(20)
		if err != nil {
			t.Fatal(err)
		}
		if err := tok.Generate(crypto.AES256, false, id, fmt.Sprintf("nkms:%s:v1:%d", o.tag, o.at.UnixMilli())); err != nil {
			t.Fatal(err)
		}
	}
	nodeB.Stop(t)
	nodeB = testkit.StartServer(t, bin, dirB, env, args...) // its start-up sweeps the token
	b = newClient(nodeB)
	if got := labelsOf(t, tok, stale); len(got) != 0 {
		t.Errorf("the stale orphan survived B's start-up sweep: %q", got)
	}
	if got := labelsOf(t, tok, fresh); len(got) != 1 {
		t.Errorf("B's start-up sweep deleted a fresh object (another node's create in progress?): %q left", got)
	}
	if got := labelsOf(t, tok, k.KeyTag); len(got) != 2 {
		t.Errorf("after B's sweep the key has objects %q, want its 2 versions'", got)
	}

	// Destroy on B (request deletion, then delete at once: D6); A sees it gone.
	if _, err := b.RequestDeletion(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteKey(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(t, tok, k.KeyTag); len(got) != 0 {
		t.Errorf("token objects of the destroyed key: %q, want none", got)
	}
	_, err = a.Decrypt(ctx, k.KeyTag, ct1, nil)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Errorf("decrypt on A after the key was destroyed on B: got %v, want 404", err)
	}
	for _, p := range []*testkit.Proc{nodeA, nodeB} {
		if strings.Contains(p.Stderr.String(), tokCfg.PIN) {
			t.Errorf("the PIN appears in a node's output")
		}
	}
}

// randomTag returns a key tag that no key has.
func randomTag(t *testing.T) string {
	b, err := crypto.RandomBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
