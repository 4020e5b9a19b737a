package server

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// TestDevClockSurvivesRestart: with --dev-clock, start-up warns; an advance
// is saved in the data dir, and a restart on the same data dir starts the
// clock where it was, so that a deletion requested on the moved clock comes
// due 72 hours later by that clock, not by the wall clock. Started again
// without --dev-clock, the route is gone and start-up says that the clock
// went back.
func TestDevClockSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.DevClock = true
	cfg.SchedulerInterval = time.Hour // only the advances' passes run during the test
	ctx := context.Background()
	stderr := &testkit.Buffer{}
	s, err := Start(ctx, cfg, stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "WARNING: --dev-clock is on") {
		t.Fatalf("no warning on stderr:\n%s", stderr.String())
	}
	c := newTestClient(t, s.URL)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "doomed", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AdvanceClock(ctx, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, k.KeyTag); err != nil {
		t.Fatal(err)
	}
	// A signed request right after the advance authenticates (HTTP keeps the wall clock).
	info, err := c.GetKey(ctx, k.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(*info.DestroyDate).Sub(time.Now()); d < 95*time.Hour || d > 97*time.Hour {
		t.Fatalf("destroyDate %v from the wall clock, want 96h (24h ahead + the 72h window)", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(cfg.DataDir, "dev-clock"))
	if err != nil || string(saved) != "24h0m0s\n" {
		t.Fatalf("saved dev clock %q, %v; want 24h0m0s", saved, err)
	}

	stderr = &testkit.Buffer{}
	s, err = Start(ctx, cfg, stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "dev clock: 24h0m0s ahead of the wall clock") {
		t.Fatalf("restart does not say where the clock is:\n%s", stderr.String())
	}
	c = newTestClient(t, s.URL)
	now, err := c.DevClock(ctx)
	if err != nil || now.Offset != 24*time.Hour {
		t.Fatalf("clock after restart: %+v, %v; want 24h ahead", now, err)
	}
	res, err := c.AdvanceClock(ctx, 71*time.Hour)
	if err != nil || res.Destroyed != 0 {
		t.Fatalf("advance 71h after restart: %+v, %v; want nothing destroyed yet", res, err)
	}
	res, err = c.AdvanceClock(ctx, time.Hour)
	if err != nil || res.Destroyed != 1 || res.Offset != 96*time.Hour {
		t.Fatalf("advance to 96h: %+v, %v; want the key destroyed", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.DevClock = false
	stderr = &testkit.Buffer{}
	s, err = Start(ctx, cfg, stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(stderr.String(), "96h0m0s ahead of the wall clock on this data dir; without --dev-clock") {
		t.Fatalf("start without --dev-clock on a moved data dir says nothing:\n%s", stderr.String())
	}
	_, err = newTestClient(t, s.URL).AdvanceClock(ctx, time.Hour)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 404 || ce.ErrorCode != "300" {
		t.Fatalf("advance without --dev-clock: %v, want 404 errorCode 300", err)
	}
}

// TestDevClockRefusedWithEtcd: --dev-clock with --store etcd is a
// configuration error (each node would keep its own clock).
func TestDevClockRefusedWithEtcd(t *testing.T) {
	cfg := testConfig(t)
	cfg.DevClock = true
	cfg.Store = "etcd"
	cfg.EtcdEndpoints = []string{"http://127.0.0.1:2379"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted --dev-clock with --store etcd")
	}
	if withEtcd && !strings.Contains(err.Error(), "--dev-clock cannot be used with --store etcd") {
		t.Fatalf("got %v, want the --dev-clock refusal", err)
	}
}

// TestDevClockMalformedFile: a dev-clock file that holds no valid offset
// stops start-up with a hint, rather than starting the clock anywhere.
func TestDevClockMalformedFile(t *testing.T) {
	for _, text := range []string{"soon\n", "-1h\n", "876001h\n"} {
		cfg := testConfig(t)
		cfg.DevClock = true
		if err := os.WriteFile(filepath.Join(cfg.DataDir, "dev-clock"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), cfg, io.Discard)
		var h interface{ Hint() string }
		if err == nil || !errors.As(err, &h) || !strings.Contains(err.Error(), "does not hold an offset") {
			t.Fatalf("dev-clock file %q: got %v, want a refusal with a hint", text, err)
		}
	}
}

func newTestClient(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
