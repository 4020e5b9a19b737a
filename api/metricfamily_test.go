package api

import (
	"math"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeFamilies parses m's endpoint with Prometheus's own text parser.
func scrapeFamilies(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("scrape does not parse: %v\n%s", err, rec.Body)
	}
	return fams
}

// Help texts and label values with a backslash, a quote or a newline come
// back from Prometheus's parser as they went in.
func TestMetricsTextEscaping(t *testing.T) {
	m := NewMetrics()
	const help = "a \\ help\nover two lines with \"quotes\""
	odd := "x\"y\\z\nw"
	m.CounterFunc("nkms_test_total", help, map[string]string{"b": odd, "a": "plain"}, func() float64 { return 7 })
	m.CounterFunc("nkms_test_total", help, map[string]string{"b": "other", "a": "plain"}, func() float64 { return 8 })
	f := scrapeFamilies(t, m)["nkms_test_total"]
	if f == nil || f.GetHelp() != help || f.GetType() != dto.MetricType_COUNTER || len(f.GetMetric()) != 2 {
		t.Fatalf("family: %v", f)
	}
	got := map[string]float64{}
	for _, s := range f.GetMetric() {
		l := s.GetLabel()
		if len(l) != 2 || l[0].GetName() != "a" || l[0].GetValue() != "plain" || l[1].GetName() != "b" {
			t.Fatalf("labels %v", l)
		}
		got[l[1].GetValue()] = s.GetCounter().GetValue()
	}
	if got[odd] != 7 || got["other"] != 8 {
		t.Errorf("values by label: %v", got)
	}
}

// A registration that contradicts an earlier one is a programming error,
// caught at start rather than served as a broken scrape.
func TestMetricsRegistrationConflicts(t *testing.T) {
	for name, register := range map[string]func(m *Metrics){
		"same series twice": func(m *Metrics) {
			m.CounterFunc("nkms_x_total", "x", map[string]string{"a": "1"}, func() float64 { return 0 })
			m.CounterFunc("nkms_x_total", "x", map[string]string{"a": "1"}, func() float64 { return 0 })
		},
		"other labels": func(m *Metrics) {
			m.CounterFunc("nkms_x_total", "x", map[string]string{"a": "1"}, func() float64 { return 0 })
			m.CounterFunc("nkms_x_total", "x", map[string]string{"b": "1"}, func() float64 { return 0 })
		},
		"a built-in family's name": func(m *Metrics) {
			m.CounterFunc("nkms_keys", "x", nil, func() float64 { return 0 })
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			register(NewMetrics())
		})
	}
}

// Requests observed while scrapes run: every scrape parses, its buckets are
// cumulative and end in the sample count, and the last one counts every
// request with the sum of their durations.
func TestMetricsHistogramUnderLoad(t *testing.T) {
	m := NewMetrics()
	const route, workers, each = "POST /kms/v1/keys/{keyTag}/encrypt", 4, 500
	durations := []time.Duration{200 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 20 * time.Second}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				m.observeRequest(route, "", 200, durations[(w+i)%len(durations)])
			}
		})
	}
	check := func() *dto.Histogram {
		f := scrapeFamilies(t, m)["nkms_http_request_duration_seconds"]
		if f == nil {
			return nil
		}
		h := f.GetMetric()[0].GetHistogram()
		prev := uint64(0)
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < prev {
				t.Fatalf("buckets decrease: %v", h.GetBucket())
			}
			prev = b.GetCumulativeCount()
		}
		if prev > h.GetSampleCount() {
			t.Fatalf("last bucket %d > count %d", prev, h.GetSampleCount())
		}
		return h
	}
	for range 20 {
		check()
	}
	wg.Wait()
	h := check()
	const n = workers * each
	if h.GetSampleCount() != n {
		t.Fatalf("count %d, want %d", h.GetSampleCount(), n)
	}
	want := 0.0
	for i := range n {
		want += durations[i%len(durations)].Seconds()
	}
	if math.Abs(h.GetSampleSum()-want) > 1e-6 {
		t.Errorf("sum %v, want %v", h.GetSampleSum(), want)
	}
	// Bounds are "less than or equal": 1 ms lands in le="0.001".
	for _, b := range h.GetBucket() {
		var want uint64
		switch b.GetUpperBound() {
		case .0005:
			want = n / 4
		case .001, .0025:
			want = n / 2
		case .005, .01, 10:
			want = 3 * n / 4
		default:
			continue
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if c := scrapeFamilies(t, m)["nkms_http_requests_total"].GetMetric()[0].GetCounter().GetValue(); c != n {
		t.Errorf("nkms_http_requests_total %v, want %d", c, n)
	}
}
