package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	vmetrics "github.com/VictoriaMetrics/metrics"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/audit"
)

// Metrics is the server's metrics, served in Prometheus's text format: the
// families the HTTP adapter, the scheduler and the stores feed, and the Go
// runtime and process metrics. Labels are bounded sets: route patterns,
// response codes, key states and types. No label ever carries a key tag, an
// access key id or any request data: those identify tenants, and the
// endpoint is unauthenticated.
type Metrics struct {
	mu       sync.Mutex
	families map[string]*family // by name

	requests *family // route, code
	duration *family // route

	passes        *family // result
	destroyed     *series
	rotated       *series
	keyFailures   *series
	pruned        *series
	auditFailures *family // stage

	keys         *family // state, type
	keysCounted  *series // unix time of the last complete count
	keysDuration *series // seconds the last count took
}

// unknownRoute is the route label of requests that matched no route.
const unknownRouteLabel = "unknown"

// NewMetrics returns every nkms metric, with the Go runtime and process
// metrics.
func NewMetrics() *Metrics {
	m := &Metrics{families: map[string]*family{}}
	m.requests = m.add(newFamily("nkms_http_requests_total",
		`API requests by route pattern ("unknown" when none matched) and answer code: SUCCESS, the D3 error code (KMS code or gateway errorCode), or the status class (e.g. "5xx") when the answer carries no code.`,
		counterType, "route", "code"))
	m.duration = m.add(newHistogram("nkms_http_request_duration_seconds",
		"Time from receiving an API request to having written its answer, by route pattern.",
		[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route"))
	m.passes = m.add(newFamily("nkms_scheduler_passes_total",
		`Scheduler passes (destruction, auto rotation, usage-log pruning) by result: "ok" or "error" (a store query failed or a key failed).`,
		counterType, "result"))
	m.destroyed = m.add(newFamily("nkms_scheduler_keys_destroyed_total",
		"Keys destroyed by the scheduler at the end of their pending-deletion window.", counterType)).with()
	m.rotated = m.add(newFamily("nkms_scheduler_keys_rotated_total",
		"Keys auto-rotated by the scheduler.", counterType)).with()
	m.keyFailures = m.add(newFamily("nkms_scheduler_key_failures_total",
		"Keys on which a scheduler destruction or rotation failed (retried on the next pass).", counterType)).with()
	m.pruned = m.add(newFamily("nkms_usage_log_entries_pruned_total",
		"Usage-log entries the scheduler removed because they passed their retention.", counterType)).with()
	m.auditFailures = m.add(newFamily("nkms_audit_failures_total",
		`Audit log failures by stage: "ready" (the log could not take lines when a request arrived) or "write" (a request's line could not be written).`,
		counterType, "stage"))
	m.keys = m.add(newFamily("nkms_keys",
		"Keys by state (ENABLE, DISABLE, REVOKE) and type, as of the last background count (see nkms_keys_counted_timestamp_seconds).",
		gaugeType, "state", "type"))
	m.keysCounted = m.add(newFamily("nkms_keys_counted_timestamp_seconds",
		"Unix time at which the last complete count of nkms_keys finished; 0 before the first.", gaugeType)).with()
	m.keysDuration = m.add(newFamily("nkms_keys_count_duration_seconds",
		"How long the last complete count of nkms_keys took.", gaugeType)).with()
	for _, r := range []string{"ok", "error"} {
		m.passes.with(r)
	}
	for _, s := range []string{"ready", "write"} {
		m.auditFailures.with(s)
	}
	return m
}

// add registers f; a name registered twice is a programming error.
func (m *Metrics) add(f *family) *family {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.families[f.name] != nil {
		panic("metric " + f.name + " registered twice")
	}
	m.families[f.name] = f
	return f
}

// Handler serves the metrics in Prometheus's text format: the nkms families
// by name, then the Go runtime and process metrics.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		fams := make([]*family, 0, len(m.families))
		for _, f := range m.families {
			fams = append(fams, f)
		}
		m.mu.Unlock()
		slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
		var b bytes.Buffer
		for _, f := range fams {
			f.write(&b)
		}
		vmetrics.WriteGoMetrics(&b)
		vmetrics.WriteProcMetrics(&b)
		vmetrics.WriteFDMetrics(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		_, _ = w.Write(b.Bytes()) // the scraper went away: nothing to do
	})
}

// CounterFunc registers a counter whose value fn reads at scrape time (fn
// must be quick and safe for concurrent use). Several calls may share a name
// (and help) with different values of the same label names.
func (m *Metrics) CounterFunc(name, help string, labels map[string]string, fn func() float64) {
	m.funcSeries(counterType, name, help, labels, fn)
}

// GaugeFunc registers a gauge without labels whose value fn reads at scrape
// time (fn must be quick and safe for concurrent use).
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	m.funcSeries(gaugeType, name, help, nil, fn)
}

func (m *Metrics) funcSeries(typ, name, help string, labels map[string]string, fn func() float64) {
	names := make([]string, 0, len(labels))
	for l := range labels {
		names = append(names, l)
	}
	slices.Sort(names)
	values := make([]string, len(names))
	for i, l := range names {
		values[i] = labels[l]
	}
	m.mu.Lock()
	f := m.families[name]
	if f == nil {
		f = newFamily(name, help, typ, names...)
		m.families[name] = f
	} else if f.typ != typ || !slices.Equal(f.labels, names) {
		m.mu.Unlock()
		panic(fmt.Sprintf("metric %s: registered again with labels %v", name, names))
	}
	m.mu.Unlock()
	f.setFunc(fn, values...)
}

// ObservePass records one scheduler pass (nkms.Scheduler.OnPass).
func (m *Metrics) ObservePass(res nkms.PassResult, err error) {
	result := "ok"
	if err != nil || res.Failed > 0 {
		result = "error"
	}
	m.passes.with(result).inc()
	m.destroyed.add(float64(res.Destroyed))
	m.rotated.add(float64(res.Rotated))
	m.keyFailures.add(float64(res.Failed))
	m.pruned.add(float64(res.Pruned))
}

// observeRequest records one answered request.
func (m *Metrics) observeRequest(route, code string, status int, d time.Duration) {
	if route == "" || route == "/" {
		route = unknownRouteLabel
	}
	if code == "" {
		if status == 0 {
			status = http.StatusOK
		}
		if status < 400 {
			code = "SUCCESS"
		} else {
			code = strconv.Itoa(status/100) + "xx"
		}
	}
	m.requests.with(route, code).inc()
	m.duration.observe(m.duration.with(route), d.Seconds())
}

// CountKeys counts every key by state and type (Service.CountKeys) and
// publishes the result as nkms_keys. Its cost is that of listing every key
// once, so it runs in the background (RunKeyCounts), never on a scrape.
func (m *Metrics) CountKeys(ctx context.Context, svc *nkms.Service) error {
	began := time.Now()
	counts, err := svc.CountKeys(ctx)
	if err != nil {
		return err
	}
	for kind, n := range counts {
		m.keys.with(string(kind.State), string(kind.Type)).set(float64(n))
	}
	m.keysDuration.set(time.Since(began).Seconds())
	m.keysCounted.set(float64(time.Now().UnixNano()) / 1e9)
	return nil
}

// RunKeyCounts runs CountKeys at once and then every interval until ctx
// ends; failures go to onErr (nil: ignored) and the last count stays.
func (m *Metrics) RunKeyCounts(ctx context.Context, svc *nkms.Service, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := m.CountKeys(ctx, svc); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// countingAuditor counts the failures of the Auditor it wraps.
type countingAuditor struct {
	Auditor
	failures *family
}

func (a countingAuditor) Ready() error {
	err := a.Auditor.Ready()
	if err != nil {
		a.failures.with("ready").inc()
	}
	return err
}

func (a countingAuditor) Write(e audit.Entry) error {
	err := a.Auditor.Write(e)
	if err != nil {
		a.failures.with("write").inc()
	}
	return err
}
