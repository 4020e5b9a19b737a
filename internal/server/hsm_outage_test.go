package server

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/hsm/hsmtest"
	"github.com/nkms/nkms/internal/testkit"
)

var metricsRE = regexp.MustCompile(`nkms: metrics on (http://\S+/metrics)`)

// scrape GETs /metrics as Prometheus does and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	_, fams := testkit.Scrape(t, url)
	return fams
}

// hsmFailures sums nkms_hsm_failures_total over its ops.
func hsmFailures(fams map[string]*dto.MetricFamily) float64 {
	var n float64
	for _, op := range hsmOps {
		n += testkit.MetricValue(fams, "nkms_hsm_failures_total", map[string]string{"op": op})
	}
	return n
}

// wantHSMUnavailable fails t unless err is the 503 of a token that does
// not answer: the gateway body with errorCode "503" and details naming the
// HSM — not a 400 "decryption failed", not a 500.
func wantHSMUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusServiceUnavailable || ce.ErrorCode != "503" ||
		!strings.Contains(ce.Details, "HSM") {
		t.Errorf("%s: got %v, want 503 with details naming the HSM", what, err)
	}
}

// TestHSMOutage: when the token under a running server stops answering
// (here: its PKCS#11 session pool is closed), every operation on a
// COMMON_HSM key — with a version already in use (a cached token handle) or
// not yet loaded, encrypt, decrypt, sign and create — answers 503 with a
// message naming the HSM, never 400 "decryption failed" or 500; BASIC keys
// keep working and /healthz stays 200; /metrics shows nkms_hsm_up 0 and the
// failures; the log says so once, not once a request.
func TestHSMOutage(t *testing.T) {
	tok := hsmtest.NewToken(t)
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.HSMModule, cfg.HSMToken, cfg.HSMPIN = tok.Module, tok.Token, tok.PIN
	cfg.MetricsListen = "127.0.0.1:0"
	logs := &testkit.Buffer{}
	s, err := Start(ctx, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := metricsRE.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics listener in the output:\n%s", logs)
	}
	metrics := m[1]
	c, err := client.New(s.URL, testAccessKey, testSecretKey, client.WithRetries(1)) // a 503 is retried otherwise
	if err != nil {
		t.Fatal(err)
	}
	create := func(name, typ, prot string) string {
		t.Helper()
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: typ, ProtectionType: prot})
		if err != nil {
			t.Fatal(err)
		}
		return k.KeyTag
	}
	used := create("used", "AES256", "COMMON_HSM")
	fresh := create("fresh", "AES256", "COMMON_HSM") // never used: its version is not loaded yet
	signer := create("signer", "ECDSA", "COMMON_HSM")
	basic := create("basic", "AES256", "BASIC")
	ct, err := c.Encrypt(ctx, used, []byte("in the token"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, signer, []byte("msg")); err != nil {
		t.Fatal(err)
	}
	// A tampered ciphertext is the request's fault while the token answers:
	// 400, as for a BASIC key, and no failure of the HSM.
	tampered := ct[:len(ct)-4] + "AAA="
	if ct[len(ct)-4:] == "AAA=" {
		tampered = ct[:len(ct)-4] + "BBB="
	}
	var ce *client.Error
	if _, err := c.Decrypt(ctx, used, tampered, nil); !errors.As(err, &ce) || ce.Status != http.StatusBadRequest || ce.Code != "INVALID_REQUEST" {
		t.Fatalf("tampered ciphertext with the token up: got %v, want 400 INVALID_REQUEST", err)
	}
	fams := scrape(t, metrics)
	if got := testkit.MetricValue(fams, "nkms_hsm_up", nil); got != 1 {
		t.Fatalf("nkms_hsm_up before the outage: %v, want 1", got)
	}
	if got := hsmFailures(fams); got != 0 {
		t.Fatalf("nkms_hsm_failures_total before the outage: %v, want 0", got)
	}
	if err := s.closeHSM(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Encrypt(ctx, used, []byte("x"), nil)
	wantHSMUnavailable(t, "encrypt with a cached version", err)
	_, err = c.Decrypt(ctx, used, ct, nil)
	wantHSMUnavailable(t, "decrypt with a cached version", err)
	_, err = c.Sign(ctx, signer, []byte("msg"))
	wantHSMUnavailable(t, "sign", err)
	_, err = c.Encrypt(ctx, fresh, []byte("x"), nil)
	wantHSMUnavailable(t, "encrypt with a version not loaded yet", err)
	_, err = c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "during", KeyType: "AES256", ProtectionType: "COMMON_HSM"})
	wantHSMUnavailable(t, "create a COMMON_HSM key", err)

	bct, err := c.Encrypt(ctx, basic, []byte("software"), nil)
	if err != nil {
		t.Fatalf("BASIC encrypt during the outage: %v", err)
	}
	if pt, err := c.Decrypt(ctx, basic, bct, nil); err != nil || string(pt) != "software" {
		t.Fatalf("BASIC decrypt during the outage: %q, %v", pt, err)
	}
	if err := c.Health(ctx); err != nil {
		t.Errorf("/healthz during the outage: %v, want 200 (BASIC keys work)", err)
	}

	fams = scrape(t, metrics)
	if got := testkit.MetricValue(fams, "nkms_hsm_up", nil); got != 0 {
		t.Errorf("nkms_hsm_up during the outage: %v, want 0", got)
	}
	if got := hsmFailures(fams); got < 4 {
		t.Errorf("nkms_hsm_failures_total during the outage: %v, want at least 4 (one a failed request)", got)
	}
	s.logOut.Flush()
	if n := strings.Count(logs.String(), "hsm: the token does not answer"); n != 1 {
		t.Errorf("the outage is logged %d times, want once:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), tok.PIN) {
		t.Errorf("the PIN appears in the server's output")
	}
}
