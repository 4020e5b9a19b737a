package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/audit"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/mem"
)

// scrape reads m's endpoint as Prometheus would and returns the text and the parsed families.
func scrape(t *testing.T, m *api.Metrics) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, text)
	}
	return text, fams
}

func TestMetricsRequests(t *testing.T) {
	t.Parallel()
	m := api.NewMetrics()
	// The test clock stands still: a key's bucket of one request never refills.
	e := newEnvWith(t, func(c *api.Config) { c.Metrics = m; c.RateLimitPerKey = 1 })
	ctx := context.Background()
	c := e.client(1, client.WithRetries(1)) // one attempt: a 429 is not retried
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "metered", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, k.KeyTag, []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if _, err := c.Encrypt(ctx, k.KeyTag, []byte("hello"), nil); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests {
		t.Fatalf("second encrypt: got %v, want 429", err)
	}
	if st, _ := e.raw("GET", "/no/such/route", ""); st != http.StatusNotFound {
		t.Fatalf("unknown route: got %d, want 404", st)
	}
	if _, err := c.GetKey(ctx, strings.Repeat("ab", 32)); !isNotFoundErr(err) {
		t.Fatalf("get missing key: got %v, want NOT_FOUND", err)
	}

	text, fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys", "code": "SUCCESS"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt", "code": "SUCCESS"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt", "code": "420"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "unknown", "code": "300"}, 1},
		{"nkms_http_requests_total", map[string]string{"route": "GET /kms/v1/keys/{keyTag}", "code": "NOT_FOUND"}, 1},
		{"nkms_http_request_duration_seconds", map[string]string{"route": "POST /kms/v1/keys/{keyTag}/encrypt"}, 2},
		{"nkms_rate_limited_requests_total", map[string]string{"limit": "key"}, 1},
		{"nkms_rate_limited_requests_total", map[string]string{"limit": "caller"}, 0},
	} {
		if got := testkit.MetricValue(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, f := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[f] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", f)
		}
	}
	for _, secret := range []string{k.KeyTag, e.creds[1].AccessKey, e.creds[1].SecretKey, "metered"} {
		if strings.Contains(text, secret) {
			t.Errorf("the scrape contains %q (a key tag, name or credential)", secret)
		}
	}
}

func isNotFoundErr(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == http.StatusNotFound
}

func TestMetricsKeyCounts(t *testing.T) {
	t.Parallel()
	m := api.NewMetrics()
	e := newEnvWith(t, func(c *api.Config) { c.Metrics = m })
	ctx := context.Background()
	c1, c2 := e.client(1), e.client(2)
	var tags []string
	for _, kt := range []string{"AES256", "AES256", "RSA2048"} {
		k, err := c1.CreateKey(ctx, client.CreateKeyRequest{KeyName: "k" + kt + string(rune('a'+len(tags))), KeyType: kt})
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, k.KeyTag)
	}
	if _, err := c2.CreateKey(ctx, client.CreateKeyRequest{KeyName: "other", KeyType: "ECDSA"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.RequestDeletion(ctx, tags[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.DisableKey(ctx, tags[2]); err != nil {
		t.Fatal(err)
	}
	_, fams := scrape(t, m)
	if got := testkit.MetricValue(fams, "nkms_keys_counted_timestamp_seconds", nil); got != 0 {
		t.Errorf("before the first count: counted at %v, want 0", got)
	}
	if err := m.CountKeys(ctx, e.svc); err != nil {
		t.Fatal(err)
	}
	_, fams = scrape(t, m)
	for _, c := range []struct {
		state, typ string
		want       float64
	}{
		{"ENABLE", "AES256", 1}, {"REVOKE", "AES256", 1}, {"DISABLE", "AES256", 0},
		{"DISABLE", "RSA2048", 1}, {"ENABLE", "RSA2048", 0},
		{"ENABLE", "ECDSA", 1}, {"REVOKE", "ECDSA", 0},
	} {
		if got := testkit.MetricValue(fams, "nkms_keys", map[string]string{"state": c.state, "type": c.typ}); got != c.want {
			t.Errorf("nkms_keys{state=%s,type=%s}: got %v, want %v", c.state, c.typ, got, c.want)
		}
	}
	if got := testkit.MetricValue(fams, "nkms_keys_counted_timestamp_seconds", nil); got <= 0 {
		t.Errorf("after a count: counted at %v, want a time", got)
	}
}

func TestMetricsSchedulerPass(t *testing.T) {
	t.Parallel()
	m := api.NewMetrics()
	m.ObservePass(nkms.PassResult{Destroyed: 2, Rotated: 3, Pruned: 40}, nil)
	m.ObservePass(nkms.PassResult{Destroyed: 1, Failed: 1}, nil)
	m.ObservePass(nkms.PassResult{}, errors.New("store down"))
	_, fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nkms_scheduler_passes_total", map[string]string{"result": "ok"}, 1},
		{"nkms_scheduler_passes_total", map[string]string{"result": "error"}, 2},
		{"nkms_scheduler_keys_destroyed_total", nil, 3},
		{"nkms_scheduler_keys_rotated_total", nil, 3},
		{"nkms_scheduler_key_failures_total", nil, 1},
		{"nkms_usage_log_entries_pruned_total", nil, 40},
	} {
		if got := testkit.MetricValue(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// failingAuditor refuses every line.
type failingAuditor struct{}

func (failingAuditor) Write(audit.Entry) error { return errors.New("disk full") }
func (failingAuditor) Ready() error            { return nil }

func TestMetricsAuditFailures(t *testing.T) {
	t.Parallel()
	m := api.NewMetrics()
	e := newEnvWith(t, func(c *api.Config) { c.Metrics = m; c.Audit = failingAuditor{} })
	e.raw("GET", "/kms/v1/keys?pageNo=1", "")
	e.raw("GET", "/kms/v1/keys?pageNo=1", "")
	_, fams := scrape(t, m)
	if got := testkit.MetricValue(fams, "nkms_audit_failures_total", map[string]string{"stage": "write"}); got != 2 {
		t.Errorf("audit write failures: got %v, want 2", got)
	}
	if got := testkit.MetricValue(fams, "nkms_audit_failures_total", map[string]string{"stage": "ready"}); got != 0 {
		t.Errorf("audit ready failures: got %v, want 0", got)
	}
}

// TestRequestIDInLogs: with a JSON log, every line written while serving a
// request (the request line, an internal error) carries the request id that
// the answer's x-ncp-request-id header names; lines logged outside a request
// carry none.
func TestRequestIDInLogs(t *testing.T) {
	t.Parallel()
	logs := &testkit.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := newEnvWith(t, func(c *api.Config) {
		c.Log = log
		c.Ready = func(context.Context) error { return nil }
	})
	var ids []string
	for _, path := range []string{"/kms/v1/keys?pageNo=1", "/no/such/route", "/healthz"} {
		r, err := http.NewRequest("GET", e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("x-ncp-request-id")
		if len(id) != 24 {
			t.Fatalf("%s: x-ncp-request-id %q, want 24 hex digits", path, id)
		}
		if resp.Header.Get("X-Request-Id") != "" {
			t.Errorf("%s: the old X-Request-Id header is still sent", path)
		}
		ids = append(ids, id)
	}
	log.InfoContext(context.Background(), "outside any request")

	perID := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		id, _ := rec["requestId"].(string)
		if rec["msg"] == "outside any request" {
			if id != "" {
				t.Errorf("a line outside a request has requestId %q", id)
			}
			continue
		}
		if rec["msg"] == "request" {
			perID[id]++
		}
	}
	for _, id := range ids {
		if perID[id] != 1 {
			t.Errorf("request %s: %d request lines with its id, want 1 (ids seen: %v)", id, perID[id], perID)
		}
	}
}

// TestLogHandlerKeepsAttrs: the wrapped handler keeps WithAttrs and groups,
// and does not add a second requestId to a line that has one.
func TestLogHandlerKeepsAttrs(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	log := slog.New(api.LogHandler(slog.NewJSONHandler(&b, nil))).With("node", "n1")
	if api.LogHandler(log.Handler()) != log.Handler() {
		t.Error("LogHandler wraps a handler twice")
	}
	log.Info("x", "requestId", "given")
	var rec map[string]any
	if err := json.Unmarshal([]byte(b.String()), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["node"] != "n1" || rec["requestId"] != "given" {
		t.Errorf("got %v, want node=n1 requestId=given", rec)
	}
	if strings.Count(b.String(), "requestId") != 1 {
		t.Errorf("requestId twice: %s", b.String())
	}
}

// TestMetricsKeyCountsPages: a count reads keystores larger than one page
// whole, once, and counts each keystore that has an access key once.
func TestMetricsKeyCountsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := mem.New()
	for _, a := range []*nkms.AccessKey{{ID: "A1", Keystore: 1}, {ID: "A2", Keystore: 1}, {ID: "B", Keystore: 2}} {
		if err := st.PutAccessKey(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	create := func(keystore int64, n int, typ nkms.KeyType) {
		for i := range n {
			tag := fmt.Sprintf("%02d%s%058d", keystore, typ[:2], i)
			if _, err := st.Create(ctx, &nkms.Key{Tag: tag, Keystore: keystore, Name: tag, Type: typ, State: nkms.StateEnable}); err != nil {
				t.Fatal(err)
			}
		}
	}
	create(1, 4501, nkms.AES256)
	create(2, 3, nkms.ECDSA)
	m := api.NewMetrics()
	if err := m.CountKeys(ctx, &nkms.Service{Store: st}); err != nil {
		t.Fatal(err)
	}
	_, fams := scrape(t, m)
	if got := testkit.MetricValue(fams, "nkms_keys", map[string]string{"state": "ENABLE", "type": "AES256"}); got != 4501 {
		t.Errorf("AES256 keys: got %v, want 4501", got)
	}
	if got := testkit.MetricValue(fams, "nkms_keys", map[string]string{"state": "ENABLE", "type": "ECDSA"}); got != 3 {
		t.Errorf("ECDSA keys: got %v, want 3", got)
	}
}
