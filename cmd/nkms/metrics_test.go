package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
)

var metricsRE = regexp.MustCompile(`nkms: metrics on (http://\S+/metrics)`)

// scrapeMetrics GETs the server's /metrics as Prometheus does and parses it.
func scrapeMetrics(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	return testkit.Scrape(t, url)
}

// TestMetricsEndToEnd: the real binary with --metrics-listen serves /metrics
// on its own listener; requests, throttling, key counts, scheduler passes and
// the read cache show there, and no key tag or access key id does.
func TestMetricsEndToEnd(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv, "--metrics-listen", "127.0.0.1:0", "--rate-limit-per-key", "0.001",
		"--metrics-keys-interval", "100ms")
	m := metricsRE.FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no metrics address in the server's output:\n%s", p.Stderr)
	}
	url := m[1]
	ctx := context.Background()
	c := adminClient(t, p, client.WithRetries(1)) // a 429 is not retried
	a, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "metered", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, a.KeyTag, []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := c.Encrypt(ctx, a.KeyTag, []byte("hello"), nil); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests {
		t.Fatalf("second encrypt within the per-key limit: got %v, want 429", err)
	}
	if _, err := c.GetKey(ctx, strings.Repeat("0f", 32)); !isNotFound(err) {
		t.Fatalf("get a missing key: got %v, want NOT_FOUND", err)
	}
	resp, err := http.Get(p.URL + "/no/such/route")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "doomed", KeyType: "RSA2048"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RequestDeletion(ctx, b.KeyTag); err != nil {
		t.Fatal(err)
	}

	// The key counts and the first scheduler pass are background work: wait for them.
	eventually(t, "the key count sees the deletion request", 10*time.Second, func() bool {
		_, fams := scrapeMetrics(t, url)
		return testkit.MetricValue(fams, "nkms_keys", map[string]string{"state": "REVOKE", "type": "RSA2048"}) == 1 &&
			testkit.MetricValue(fams, "nkms_scheduler_passes_total", map[string]string{"result": "ok"}) >= 1
	})
	text, fams := scrapeMetrics(t, url)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys", "code": "SUCCESS"}, 2},
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt", "code": "SUCCESS"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt", "code": "420"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "GET /kms/v1/keys/{keyTag}", "code": "NOT_FOUND"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "unknown", "code": "300"}, 1},
		{"nkms_http_request_duration_seconds", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt"}, 2},
		{"nkms_rate_limited_requests_total", map[string]string{"limit": "key"}, 1},
		{"nkms_rate_limited_requests_total", map[string]string{"limit": "caller"}, 0},
		{"nkms_keys", map[string]string{"state": "ENABLE", "type": "AES256"}, 1},
		{"nkms_keys", map[string]string{"state": "REVOKE", "type": "RSA2048"}, 1},
		{"nkms_keys", map[string]string{"state": "ENABLE", "type": "RSA2048"}, 0},
		{"nkms_scheduler_keys_destroyed_total", nil, 0},
	} {
		if got := testkit.MetricValue(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if hits, misses := testkit.MetricValue(fams, "nkms_cache_requests_total", map[string]string{"cache": "access_key", "result": "hit"}),
		testkit.MetricValue(fams, "nkms_cache_requests_total", map[string]string{"cache": "access_key", "result": "miss"}); hits+misses < 6 || misses < 1 {
		t.Errorf("access-key cache: %v hits, %v misses; want every signed request counted, the first a miss", hits, misses)
	}
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes", "nkms_audit_failures_total"} {
		if fams[f] == nil {
			t.Errorf("no %s in the scrape", f)
		}
	}
	for _, s := range []string{a.KeyTag, b.KeyTag, testAccessKey, testSecretKey, "metered", "doomed"} {
		if strings.Contains(text, s) {
			t.Errorf("the scrape contains %q (a key tag, key name or credential)", s)
		}
	}
	// The API port does not serve the metrics.
	resp, err = http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API port: %d, want 404", resp.StatusCode)
	}
}

// signedGet sends a GET signed with the test access key and returns the
// answer's status and request id header.
func signedGet(t *testing.T, url string) (int, string) {
	t.Helper()
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	sigv2.SignRequest(r, testAccessKey, []byte(testSecretKey), time.Now())
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "" {
		t.Errorf("%s: the old X-Request-Id header is still sent", url)
	}
	return resp.StatusCode, resp.Header.Get("x-ncp-request-id")
}

// TestRequestLogsJSON: with --log-format json every log line is a JSON
// object, and each request's lines carry the id its x-ncp-request-id header
// names; no secret appears.
func TestRequestLogsJSON(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv, "--log-format", "json")
	ctx := context.Background()
	c := adminClient(t, p)
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "logged", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, k.KeyTag, []byte("top secret plaintext"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{} // request id → status
	for _, path := range []string{"/kms/v1/keys?pageNo=1", "/kms/v1/keys/" + k.KeyTag, "/no/such/route", "/kms/v1/keys/" + strings.Repeat("0f", 32)} {
		status, id := signedGet(t, p.URL+path)
		if len(id) != 24 {
			t.Fatalf("GET %s: x-ncp-request-id %q, want 24 hex digits", path, id)
		}
		want[id] = status
	}
	if _, err := c.CreateAccessKey(ctx, 2, "viewer"); err != nil { // logged by the service, not the HTTP layer
		t.Fatal(err)
	}
	p.Stop(t) // a graceful stop flushes the log
	out := p.Stderr.String()

	got := map[string]int{} // request id → status of its request line
	var serviceIDs []string // request ids of the service's "access key created" lines
	lines := 0
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "nkms: ") || strings.HasPrefix(line, "NKMS_") {
			continue // CLI messages, not log lines
		}
		lines++
		var rec struct {
			Msg       string `json:"msg"`
			RequestID string `json:"requestId"`
			Status    int    `json:"status"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		if rec.Msg == "request" {
			if rec.RequestID == "" {
				t.Errorf("request line without requestId: %s", line)
			}
			if _, dup := got[rec.RequestID]; dup {
				t.Errorf("two request lines with requestId %s", rec.RequestID)
			}
			got[rec.RequestID] = rec.Status
		}
		if rec.Msg == "access key created" {
			serviceIDs = append(serviceIDs, rec.RequestID)
		}
	}
	if len(serviceIDs) != 1 {
		t.Fatalf("%d \"access key created\" lines, want 1:\n%s", len(serviceIDs), out)
	}
	if _, ok := got[serviceIDs[0]]; !ok {
		t.Errorf("the service's line has requestId %q, which no request line has", serviceIDs[0])
	}
	if lines < 6 {
		t.Fatalf("%d log lines, want one per request at least:\n%s", lines, out)
	}
	for id, status := range want {
		if got[id] != status {
			t.Errorf("request %s: the log's request line says status %d, the answer was %d", id, got[id], status)
		}
	}
	for _, s := range []string{testSecretKey, "top secret plaintext", ct, "ncpkms:"} {
		if strings.Contains(out, s) {
			t.Errorf("the log shows %q:\n%s", s, out)
		}
	}
}

// TestRequestLogsText: the default text format carries the same request id.
func TestRequestLogsText(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv)
	_, id := signedGet(t, p.URL+"/kms/v1/keys?pageNo=1")
	p.Stop(t) // a graceful stop flushes the log
	out := p.Stderr.String()
	if !regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=request .*requestId=` + id + `\b`).MatchString(out) {
		t.Errorf("no text request line with requestId=%s:\n%s", id, out)
	}
}

// TestLogFormatRefused: a bad --log-format stops the server at start with a clear message.
func TestLogFormatRefused(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "xml").CombinedOutput()
	if err == nil {
		t.Fatalf("nkms server --log-format xml started:\n%s", out)
	}
	if !strings.Contains(string(out), `nkms: --log-format "xml": want text or json`) {
		t.Errorf("got %q, want a message naming --log-format and its values", out)
	}
}
