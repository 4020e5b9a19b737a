package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/audit"
)

// Metrics is the server's Prometheus registry (its own, not the global one)
// and the metrics the HTTP adapter, the scheduler and the stores feed. Labels
// are bounded sets: route patterns, response codes, key states and types.
// No label ever carries a key tag, an access key id or any request data:
// those identify tenants, and the endpoint is unauthenticated.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route

	passes        *prometheus.CounterVec // result
	destroyed     prometheus.Counter
	rotated       prometheus.Counter
	keyFailures   prometheus.Counter
	pruned        prometheus.Counter
	auditFailures *prometheus.CounterVec // stage

	keys         *prometheus.GaugeVec // state, type
	keysCounted  prometheus.Gauge     // unix time of the last complete count
	keysDuration prometheus.Gauge     // seconds the last count took
}

// unknownRoute is the route label of requests that matched no route.
const unknownRouteLabel = "unknown"

// NewMetrics returns a registry with the Go runtime and process collectors
// and every nkms metric.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nkms_http_requests_total",
		Help: `API requests by route pattern ("unknown" when none matched) and answer code: SUCCESS, the D3 error code (KMS code or gateway errorCode), or the status class (e.g. "5xx") when the answer carries no code.`,
	}, []string{"route", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nkms_http_request_duration_seconds",
		Help:    "Time from receiving an API request to having written its answer, by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	m.passes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nkms_scheduler_passes_total",
		Help: `Scheduler passes (destruction, auto rotation, usage-log pruning) by result: "ok" or "error" (a store query failed or a key failed).`,
	}, []string{"result"})
	m.destroyed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nkms_scheduler_keys_destroyed_total",
		Help: "Keys destroyed by the scheduler at the end of their pending-deletion window.",
	})
	m.rotated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nkms_scheduler_keys_rotated_total",
		Help: "Keys auto-rotated by the scheduler.",
	})
	m.keyFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nkms_scheduler_key_failures_total",
		Help: "Keys on which a scheduler destruction or rotation failed (retried on the next pass).",
	})
	m.pruned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "nkms_usage_log_entries_pruned_total",
		Help: "Usage-log entries the scheduler removed because they passed their retention.",
	})
	m.auditFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nkms_audit_failures_total",
		Help: `Audit log failures by stage: "ready" (the log could not take lines when a request arrived) or "write" (a request's line could not be written).`,
	}, []string{"stage"})
	m.keys = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nkms_keys",
		Help: "Keys by state (ENABLE, DISABLE, REVOKE) and type, as of the last background count (see nkms_keys_counted_timestamp_seconds).",
	}, []string{"state", "type"})
	m.keysCounted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nkms_keys_counted_timestamp_seconds",
		Help: "Unix time at which the last complete count of nkms_keys finished; 0 before the first.",
	})
	m.keysDuration = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nkms_keys_count_duration_seconds",
		Help: "How long the last complete count of nkms_keys took.",
	})
	m.reg.MustRegister(m.requests, m.duration, m.passes, m.destroyed, m.rotated, m.keyFailures, m.pruned,
		m.auditFailures, m.keys, m.keysCounted, m.keysDuration)
	for _, r := range []string{"ok", "error"} {
		m.passes.WithLabelValues(r)
	}
	for _, s := range []string{"ready", "write"} {
		m.auditFailures.WithLabelValues(s)
	}
	return m
}

// Handler serves the registry in the Prometheus text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry behind Handler, for metrics defined elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// CounterFunc registers a counter whose value fn reads at scrape time (fn
// must be quick and safe for concurrent use); labels are constant.
func (m *Metrics) CounterFunc(name, help string, labels prometheus.Labels, fn func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, fn))
}

// ObservePass records one scheduler pass (nkms.Scheduler.OnPass).
func (m *Metrics) ObservePass(res nkms.PassResult, err error) {
	result := "ok"
	if err != nil || res.Failed > 0 {
		result = "error"
	}
	m.passes.WithLabelValues(result).Inc()
	m.destroyed.Add(float64(res.Destroyed))
	m.rotated.Add(float64(res.Rotated))
	m.keyFailures.Add(float64(res.Failed))
	m.pruned.Add(float64(res.Pruned))
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
	m.requests.WithLabelValues(route, code).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
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
		m.keys.WithLabelValues(string(kind.State), string(kind.Type)).Set(float64(n))
	}
	m.keysDuration.Set(time.Since(began).Seconds())
	m.keysCounted.Set(float64(time.Now().UnixNano()) / 1e9)
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
	failures *prometheus.CounterVec
}

func (a countingAuditor) Ready() error {
	err := a.Auditor.Ready()
	if err != nil {
		a.failures.WithLabelValues("ready").Inc()
	}
	return err
}

func (a countingAuditor) Write(e audit.Entry) error {
	err := a.Auditor.Write(e)
	if err != nil {
		a.failures.WithLabelValues("write").Inc()
	}
	return err
}
