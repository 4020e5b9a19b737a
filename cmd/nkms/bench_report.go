package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nkms/nkms/internal/loadgen"
)

// benchReport is the report of one bench run. The JSON names are stable:
// scripts read them.
type benchReport struct {
	Op                string         `json:"op"`
	KeyType           string         `json:"keyType"`              // "" for the ceiling
	Protection        string         `json:"protection,omitempty"` // BASIC or COMMON_HSM; none for the ceiling and list-keys
	KeyTag            string         `json:"keyTag,omitempty"`
	Payload           int            `json:"payload"` // bytes; 0 for operations without one
	Concurrency       int            `json:"concurrency"`
	Requests          int            `json:"requests"` // measured, errors included
	DurationSeconds   float64        `json:"durationSeconds"`
	RequestsPerSecond float64        `json:"requestsPerSecond"`
	LatencyMs         benchLatency   `json:"latencyMs"`      // of the requests that got an HTTP answer
	Errors            map[string]int `json:"errors"`         // by HTTP status, and "error" for no answer
	FirstRequestMs    float64        `json:"firstRequestMs"` // the check request sent before the run, on cold caches
}

type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func newBenchReport(o *benchOptions, t *benchTarget, res *loadgen.Result, first time.Duration) *benchReport {
	ms := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }
	return &benchReport{
		Op:                o.op,
		KeyType:           t.keyType,
		Protection:        t.protection,
		KeyTag:            t.keyTag,
		Payload:           t.payload,
		Concurrency:       o.concurrency,
		Requests:          res.Requests,
		DurationSeconds:   round(res.Elapsed.Seconds(), 3),
		RequestsPerSecond: round(res.RequestsPerSecond(), 1),
		LatencyMs: benchLatency{
			P50:  ms(res.Percentile(50)),
			P90:  ms(res.Percentile(90)),
			P99:  ms(res.Percentile(99)),
			Max:  ms(res.Percentile(100)),
			Mean: ms(res.Mean()),
		},
		Errors:         res.Errors,
		FirstRequestMs: ms(first),
	}
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// errorCount is the number of requests that did not get a 2xx answer.
func (r *benchReport) errorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// errorText is "none", or the counts by status: "401: 3  error: 2".
func (r *benchReport) errorText(sep, kv string) string {
	if len(r.Errors) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		parts = append(parts, fmt.Sprintf("%s%s%d", k, kv, r.Errors[k]))
	}
	return strings.Join(parts, sep)
}

func (r *benchReport) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "tsv":
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		errs := "-"
		if len(r.Errors) > 0 {
			errs = r.errorText(",", "=")
		}
		// protection is the last column: bench/run reads the others by position.
		_, err := fmt.Fprintf(w, "op\tkeyType\tpayload\tconcurrency\trequests\tdurationSeconds\trequestsPerSecond\tp50\tp90\tp99\tmax\tmean\terrors\terrorsByStatus\tprotection\n"+
			"%s\t%s\t%d\t%d\t%d\t%.3f\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%s\t%s\n",
			r.Op, dash(r.KeyType), r.Payload, r.Concurrency, r.Requests, r.DurationSeconds, r.RequestsPerSecond,
			r.LatencyMs.P50, r.LatencyMs.P90, r.LatencyMs.P99, r.LatencyMs.Max, r.LatencyMs.Mean, r.errorCount(), errs, dash(r.Protection))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	key := "none (ceiling)"
	if r.KeyType != "" {
		key = r.KeyType + " " + r.KeyTag
		if r.Protection != "" {
			key = r.KeyType + " " + r.Protection + " " + r.KeyTag
		}
	}
	fmt.Fprintf(tw, "op\t%s\n", r.Op)
	fmt.Fprintf(tw, "key\t%s\n", key)
	fmt.Fprintf(tw, "payload\t%d B\n", r.Payload)
	fmt.Fprintf(tw, "concurrency\t%d\n", r.Concurrency)
	fmt.Fprintf(tw, "requests\t%d in %.2fs\n", r.Requests, r.DurationSeconds)
	fmt.Fprintf(tw, "throughput\t%.1f req/s\n", r.RequestsPerSecond)
	l := r.LatencyMs
	fmt.Fprintf(tw, "latency\tp50 %s  p90 %s  p99 %s  max %s  mean %s\n",
		fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.Max), fmtMs(l.Mean))
	fmt.Fprintf(tw, "errors\t%s\n", r.errorText("  ", ": "))
	return tw.Flush()
}

// fmtMs prints milliseconds with three significant digits or so.
func fmtMs(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}
