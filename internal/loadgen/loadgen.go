// Package loadgen sends one signed HTTP request over and over from several
// workers and measures the answers: the engine of `nkms bench`.
//
// The hot loop is kept cheap so that it measures the server rather than
// itself: one shared Transport with an idle connection per worker, the body
// built once, and per request only a fresh timestamp and signature v2
// (sigv2.Sign) and the headers. Every answer is read to the end. A 2xx
// status is a success; any other status is counted under its number, and a
// request that got no answer (a transport error) under "error". A worker
// answered 429 or 503 with a Retry-After of whole seconds waits that long
// (within the phase) before its next request, as a well-behaved client
// does, unless Config.IgnoreRetryAfter.
package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nkms/nkms/internal/sigv2"
)

// TransportError is the key of Result.Errors for requests that got no HTTP answer.
const TransportError = "error"

// Request is the request every worker sends.
type Request struct {
	Method string
	URL    string // absolute: http://host:port/path?query
	Body   []byte // sent as application/json when not nil
}

// Config is one load run.
type Config struct {
	Request   Request
	AccessKey string
	Secret    []byte

	Concurrency int           // workers, each with at most one request in flight; at least 1
	Requests    int           // total requests of the measured phase across workers; 0 = run for Duration
	Duration    time.Duration // length of the measured phase when Requests is 0
	Warmup      time.Duration // load sent before the measured phase and not reported; 0 = none

	// Progress, when not nil, is called from its own goroutine about every
	// ProgressEvery (default 500ms) during the measured phase.
	Progress      func(Progress)
	ProgressEvery time.Duration

	// Client sends the requests; nil means NewClient(Concurrency).
	Client *http.Client

	// NextBody, when not nil, gives every request its own body instead of
	// Request.Body (for example a new key name each time). It is called
	// from every worker at once.
	NextBody func() []byte

	// IgnoreRetryAfter makes a worker send its next request at once after a
	// 429 or 503, as a client that does not back off would.
	IgnoreRetryAfter bool

	// Hosts, when not empty, spreads the load over several servers: worker
	// i sends to Hosts[i % len(Hosts)] (host:port) instead of the URL's host,
	// with the same path, body and signature.
	Hosts []string
}

// Progress is a snapshot of the measured phase.
type Progress struct {
	Elapsed  time.Duration
	Requests int64 // answered or failed so far
	Errors   int64 // of which not 2xx
}

// Result is the outcome of the measured phase.
type Result struct {
	Requests  int             // requests sent and finished, errors included
	Elapsed   time.Duration   // wall time of the measured phase
	Latencies []time.Duration // of every request that got an HTTP answer, sorted ascending
	Errors    map[string]int  // non-2xx answers by status ("404"), and TransportError
}

// ErrorCount returns the number of requests that were not a 2xx answer.
func (r *Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// RequestsPerSecond is Requests over Elapsed (0 when nothing was measured).
func (r *Result) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies.
func (r *Result) Percentile(p float64) time.Duration { return Percentile(r.Latencies, p) }

// Mean returns the mean latency (0 without latencies).
func (r *Result) Mean() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range r.Latencies {
		sum += d
	}
	return sum / time.Duration(len(r.Latencies))
}

// Percentile returns the p-th percentile of sorted by the nearest-rank
// method: the smallest value such that at least p percent of the values are
// at most it. p <= 0 gives the minimum and p >= 100 the maximum; an empty
// slice gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n))) // 1-based
	rank = max(1, min(n, rank))
	return sorted[rank-1]
}

// NewClient returns an HTTP client for a load of concurrency workers on one
// host: an idle connection kept for each worker, no proxy, no compression,
// no redirects, a 30-second timeout. tlsConf (nil: Go's default) is for
// https URLs.
func NewClient(concurrency int, tlsConf *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     tlsConf,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Run sends the warm-up load, then the measured load, and returns the
// measured result. When ctx ends early, Run stops, leaves out the requests
// that ctx cancelled and returns what was measured with ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if cfg.Requests < 0 || (cfg.Requests == 0 && cfg.Duration <= 0) {
		return nil, errors.New("loadgen: need a positive number of requests or a positive duration")
	}
	u, err := url.Parse(cfg.Request.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadgen: bad URL %q", cfg.Request.URL)
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(cfg.Concurrency, nil)
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 500 * time.Millisecond
	}
	r := &runner{cfg: cfg, requestURI: u.RequestURI()}
	if cfg.Warmup > 0 {
		r.phase(ctx, 0, cfg.Warmup, nil)
		if ctx.Err() != nil {
			return &Result{Errors: map[string]int{}}, ctx.Err()
		}
	}
	res := r.phase(ctx, cfg.Requests, cfg.Duration, cfg.Progress)
	return res, ctx.Err()
}

type runner struct {
	cfg        Config
	requestURI string
}

// worker is what one worker measured.
type worker struct {
	latencies []time.Duration
	errors    map[string]int
	requests  int
}

// phase runs the workers until requests have been sent (requests > 0) or
// for d, and merges what they measured.
func (r *runner) phase(ctx context.Context, requests int, d time.Duration, progress func(Progress)) *Result {
	var (
		stop    atomic.Bool
		issued  atomic.Int64 // requests taken from the budget
		done    atomic.Int64 // for progress
		errs    atomic.Int64 // for progress
		wg      sync.WaitGroup
		workers = make([]*worker, r.cfg.Concurrency)
	)
	// next reports whether the worker may send one more request.
	next := func() bool {
		if stop.Load() || ctx.Err() != nil {
			return false
		}
		return requests == 0 || issued.Add(1) <= int64(requests)
	}
	start := time.Now()
	if requests == 0 {
		t := time.AfterFunc(d, func() { stop.Store(true) })
		defer t.Stop()
	}
	for i := range workers {
		w := &worker{errors: map[string]int{}}
		if requests > 0 {
			w.latencies = make([]time.Duration, 0, requests/r.cfg.Concurrency+1)
		}
		workers[i] = w
		host := ""
		if len(r.cfg.Hosts) > 0 {
			host = r.cfg.Hosts[i%len(r.cfg.Hosts)]
		}
		wg.Go(func() {
			body := r.cfg.Request.Body // built once, only read
			for next() {
				if r.cfg.NextBody != nil {
					body = r.cfg.NextBody()
				}
				lat, status, wait, ok := r.send(ctx, body, host)
				if ctx.Err() != nil && !ok {
					return // cancelled, not a failure of the server
				}
				if wait > 0 && !r.cfg.IgnoreRetryAfter {
					backOff(ctx, &stop, wait)
				}
				w.requests++
				done.Add(1)
				if ok {
					w.latencies = append(w.latencies, lat)
				}
				if status != "" {
					w.errors[status]++
					errs.Add(1)
				}
			}
		})
	}
	finished := make(chan struct{})
	var reporter sync.WaitGroup
	if progress != nil {
		reporter.Go(func() {
			tick := time.NewTicker(r.cfg.ProgressEvery)
			defer tick.Stop()
			for {
				select {
				case <-finished:
					return
				case <-tick.C:
					progress(Progress{Elapsed: time.Since(start), Requests: done.Load(), Errors: errs.Load()})
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(finished)
	reporter.Wait() // no progress call after Run returns

	res := &Result{Elapsed: elapsed, Errors: map[string]int{}}
	n := 0
	for _, w := range workers {
		n += len(w.latencies)
	}
	res.Latencies = make([]time.Duration, 0, n)
	for _, w := range workers {
		res.Requests += w.requests
		res.Latencies = append(res.Latencies, w.latencies...)
		for k, v := range w.errors {
			res.Errors[k] += v
		}
	}
	slices.Sort(res.Latencies)
	return res
}

// Once sends cfg.Request one time, signed as Run signs it, and returns the
// status and (at most 64 KiB of) the body of the answer. Use it to check
// the request before loading the server with it.
func Once(ctx context.Context, cfg Config) (status int, body []byte, err error) {
	u, err := url.Parse(cfg.Request.URL)
	if err != nil {
		return 0, nil, err
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(1, nil)
	}
	r := &runner{cfg: cfg, requestURI: u.RequestURI()}
	reqBody := cfg.Request.Body
	if cfg.NextBody != nil {
		reqBody = cfg.NextBody()
	}
	req, err := r.newRequest(ctx, reqBody, time.Now(), "")
	if err != nil {
		return 0, nil, err
	}
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body, err
}

// newRequest returns the request with body, signed at now, sent to host
// ("": the URL's host).
func (r *runner) newRequest(ctx context.Context, body []byte, now time.Time, host string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.cfg.Request.Method, r.cfg.Request.URL, rd)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.URL.Host, req.Host = host, host
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	h := req.Header
	h["Accept"] = []string{"application/json"}
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	h[hdrTimestamp] = []string{ts}
	h[hdrAccessKey] = []string{r.cfg.AccessKey}
	h[hdrSignature] = []string{sigv2.Sign(r.cfg.Secret, r.cfg.Request.Method, r.requestURI, ts, r.cfg.AccessKey)}
	return req, nil
}

// Canonical forms of the signature headers, set directly into the map.
var (
	hdrTimestamp = http.CanonicalHeaderKey(sigv2.HeaderTimestamp)
	hdrAccessKey = http.CanonicalHeaderKey(sigv2.HeaderAccessKey)
	hdrSignature = http.CanonicalHeaderKey(sigv2.HeaderSignatureV2)
)

// send sends one request, freshly signed, and reads the whole answer. ok
// reports that an HTTP answer came back; status is "" for a 2xx answer, the
// status number for another answer, and TransportError when none came;
// wait is the Retry-After of a 429 or 503 (0 if none).
func (r *runner) send(ctx context.Context, body []byte, host string) (lat time.Duration, status string, wait time.Duration, ok bool) {
	t0 := time.Now()
	req, err := r.newRequest(ctx, body, t0, host)
	if err != nil {
		return 0, TransportError, 0, false
	}
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		return 0, TransportError, 0, false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat = time.Since(t0)
	if err != nil {
		return 0, TransportError, 0, false
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			wait = retryAfter(resp.Header.Get("Retry-After"))
		}
		return lat, strconv.Itoa(resp.StatusCode), wait, true
	}
	return lat, "", 0, true
}

// maxRetryAfter caps the wait a Retry-After asks of a worker.
const maxRetryAfter = time.Minute

// retryAfter reads a Retry-After of whole seconds (the only form nkms
// sends); 0 for anything else.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// backOff waits d, or until the phase stops or ctx ends.
func backOff(ctx context.Context, stop *atomic.Bool, d time.Duration) {
	end := time.Now().Add(d)
	for !stop.Load() && ctx.Err() == nil {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		// The phase's end is a flag, not a channel: look at it every 50ms.
		time.Sleep(min(left, 50*time.Millisecond))
	}
}
