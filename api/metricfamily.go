package api

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The nkms metric families are kept and written here, in Prometheus's text
// format (version 0.0.4), rather than through the Prometheus Go client: that
// client and the protobuf runtime it links cost a bbolt-only server about
// 2.3 MiB of its ~14 MiB idle RSS (issue 15, item 5), and a family here is a
// map of atomics. The Go runtime and process metrics come from
// github.com/VictoriaMetrics/metrics (Metrics.Handler).

// Family types, as written on the # TYPE line.
const (
	counterType   = "counter"
	gaugeType     = "gauge"
	histogramType = "histogram"
)

// maxLabels is how many labels a family may have: the series map's key is
// a fixed array, so that finding a series allocates nothing.
const maxLabels = 2

type labelValues [maxLabels]string

// family is one metric family: its name, help, type, label names and
// series. Series are created on first use and never removed; every label
// is a bounded set (route patterns, codes, states), so the map stays small.
type family struct {
	name, help, typ string
	labels          []string
	buckets         []float64 // histograms: the upper bounds, ascending, without +Inf

	mu     sync.RWMutex
	series map[labelValues]*series
}

// series is one labelled series of a family. Counters and gauges keep their
// value's float64 bits in bits (or read it from fn); histograms keep a count
// per bucket, the sample count and the sum's bits.
type series struct {
	bits   atomic.Uint64
	fn     func() float64
	counts []atomic.Uint64 // histograms: per bucket, not cumulative; the last is +Inf
	count  atomic.Uint64
	sum    atomic.Uint64
}

func newFamily(name, help, typ string, labels ...string) *family {
	if len(labels) > maxLabels {
		panic(fmt.Sprintf("metric %s: %d labels; at most %d", name, len(labels), maxLabels))
	}
	return &family{name: name, help: help, typ: typ, labels: labels, series: map[labelValues]*series{}}
}

func newHistogram(name, help string, buckets []float64, labels ...string) *family {
	f := newFamily(name, help, histogramType, labels...)
	f.buckets = buckets
	return f
}

// with returns the series of the given label values (one per label, in the
// family's label order), creating it on first use.
func (f *family) with(values ...string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for %d labels", f.name, len(values), len(f.labels)))
	}
	var k labelValues
	copy(k[:], values)
	f.mu.RLock()
	s := f.series[k]
	f.mu.RUnlock()
	if s != nil {
		return s
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s = f.series[k]; s == nil {
		s = &series{}
		if f.typ == histogramType {
			s.counts = make([]atomic.Uint64, len(f.buckets)+1)
		}
		f.series[k] = s
	}
	return s
}

// setFunc adds the series of values, whose value fn reads at every scrape
// (fn must be quick and safe for concurrent use). A series is given a
// function once, when it is created: a second one is a programming error.
func (f *family) setFunc(fn func() float64, values ...string) {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metric %s: %d label values for %d labels", f.name, len(values), len(f.labels)))
	}
	var k labelValues
	copy(k[:], values)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.series[k] != nil {
		panic(fmt.Sprintf("metric %s%v: registered twice", f.name, values))
	}
	f.series[k] = &series{fn: fn}
}

func addFloat(u *atomic.Uint64, v float64) {
	for {
		old := u.Load()
		if u.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (s *series) add(v float64) { addFloat(&s.bits, v) }
func (s *series) inc()          { s.add(1) }
func (s *series) set(v float64) { s.bits.Store(math.Float64bits(v)) }

// observe records one sample in a histogram series of f.
func (f *family) observe(s *series, v float64) {
	i, _ := slices.BinarySearch(f.buckets, v) // the first bound ≥ v: buckets are "≤ le"
	s.counts[i].Add(1)
	addFloat(&s.sum, v)
	s.count.Add(1)
}

// value is the current value of a counter or gauge series.
func (s *series) value() float64 {
	if s.fn != nil {
		return s.fn()
	}
	return math.Float64frombits(s.bits.Load())
}

// write appends the family in the text format, its series ordered by label
// values. A family with no series writes nothing.
func (f *family) write(b *bytes.Buffer) {
	f.mu.RLock()
	keys := make([]labelValues, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	all := make([]*series, len(keys))
	slices.SortFunc(keys, func(a, b labelValues) int { return slices.Compare(a[:], b[:]) })
	for i, k := range keys {
		all[i] = f.series[k]
	}
	f.mu.RUnlock()
	if len(keys) == 0 {
		return
	}
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
	for i, s := range all {
		labels := f.labelText(keys[i])
		if f.typ != histogramType {
			writeSample(b, f.name, labels, "", s.value())
			continue
		}
		var cum uint64
		for j, le := range f.buckets {
			cum += s.counts[j].Load()
			writeSample(b, f.name+"_bucket", labels, formatFloat(le), float64(cum))
		}
		// The sample count is read after the buckets and is at least their
		// sum; +Inf is that count, so the buckets never decrease.
		count := s.count.Load()
		writeSample(b, f.name+"_bucket", labels, "+Inf", float64(max(count, cum)))
		writeSample(b, f.name+"_sum", labels, "", math.Float64frombits(s.sum.Load()))
		writeSample(b, f.name+"_count", labels, "", float64(max(count, cum)))
	}
}

// labelText is `a="x",b="y"` for the family's labels and the values k.
func (f *family) labelText(k labelValues) string {
	var sb strings.Builder
	for i, l := range f.labels {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(l)
		sb.WriteString(`="`)
		sb.WriteString(escapeLabel(k[i]))
		sb.WriteByte('"')
	}
	return sb.String()
}

// writeSample writes one line: name{labels,le="le"} value.
func writeSample(b *bytes.Buffer, name, labels, le string, v float64) {
	b.WriteString(name)
	if labels != "" || le != "" {
		b.WriteByte('{')
		b.WriteString(labels)
		if le != "" {
			if labels != "" {
				b.WriteByte(',')
			}
			b.WriteString(`le="`)
			b.WriteString(le)
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	b.WriteByte('\n')
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
