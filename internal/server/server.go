// Package server assembles a running nkms server from a Config of plain
// fields: it opens the store that the Config names (bbolt in the data dir, or
// etcd), loads the root key and binds it to the store, opens the audit log,
// builds the Service and the HTTP API with the web console, serves it (with
// TLS from files or a --dev certificate it makes), starts the scheduler (on
// the elected leader with etcd), the usage recorder and the optional metrics
// and pprof listeners, and shuts all of it down when its context ends.
//
// It reads no flags and no environment: cmd/nkms does, and calls Run.
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/console"
	"github.com/nkms/nkms/store/cache"
)

// writeTimeout bounds a request from its headers to the end of its answer;
// requestTimeout, a little shorter, is its time limit (api.Config), so that a
// request the write timeout would cut off is answered and audited as failed.
const (
	writeTimeout   = 30 * time.Second
	requestTimeout = writeTimeout - 5*time.Second
)

// Run validates cfg and runs the server until ctx ends, then shuts down
// gracefully (Server.Close). It returns an error when the server cannot
// start or stops serving on its own; errors with a Hint method carry a
// suggestion for the operator.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	s, err := Start(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	select {
	case err := <-s.served:
		s.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return s.Close()
}

// Server is a running nkms server, from Start until Close.
type Server struct {
	// URL is where the API is served: http:// or https:// and the address
	// the listener got (the port is filled in for --listen with port 0).
	URL string

	srv    *http.Server
	served chan error // what Serve returned, once it has
	logOut *logBuffer
	stderr io.Writer
	// undo releases, in reverse order, what Start set up after the listener:
	// the scheduler and recorder, the extra listeners, the audit log, the store.
	undo      []func()
	hsm       *tokenWatch  // the token under the Service; nil without --hsm-module
	closeHSM  func() error // logs out of the token (once)
	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, opens its store and serves the API in the
// background; ctx bounds only the start-up (opening the store). Its log
// lines and its notices for the operator (the address it serves on, the
// first access key, the --dev certificate's fingerprint) go to stderr.
// When it returns an error, everything it set up is released again.
func Start(ctx context.Context, cfg Config, stderr io.Writer) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := disableCoreDumps(); err != nil {
		return nil, err
	}
	level, _ := cfg.logLevel()     // checked by Validate
	declared, err := readSeed(cfg) // before anything is written
	if err != nil {
		return nil, err
	}
	s := &Server{logOut: newLogBuffer(stderr), stderr: stderr, served: make(chan error, 1)}
	s.undo = append(s.undo, s.logOut.Flush)
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	log := slog.New(api.LogHandler(newLogHandler(cfg.LogFormat, s.logOut, level)))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	tok, err := openHSM(cfg) // hsm.go; before the root key, which it may guard
	if err != nil {
		return nil, err
	}
	if tok != nil {
		s.closeHSM = sync.OnceValue(tok.Close) // once: a test may close the token under the Service first
		s.undo = append(s.undo, func() { s.closeHSM() })
	}
	root, err := loadRootKey(cfg, tok, stderr) // rootkey_hsm.go
	if err != nil {
		return nil, err
	}
	be, err := openBackend(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s.undo = append(s.undo, func() { be.close() })
	if err := bindRootKey(ctx, be, root); err != nil {
		return nil, err
	}
	auditor, closeAudit, err := openAuditLog(cfg, log)
	if err != nil {
		return nil, err
	}
	s.undo = append(s.undo, closeAudit)
	store := be.store
	var metrics *api.Metrics
	if cfg.MetricsListen != "" {
		metrics = newMetrics(be)
	}
	clock, clockNotice, err := openDevClock(cfg) // devclock.go
	if err != nil {
		return nil, err
	}
	svc := &nkms.Service{Store: store, Root: root, Now: time.Now, DeletionWindow: cfg.DeletionWindow, Log: log,
		Recorder: nkms.NewRecorder(store, cfg.UsagePerKey, log), ActivityRetention: cfg.UsageRetention, ActivityPerKey: cfg.UsagePerKey,
		Heavy: nkms.NewHeavyPool(cfg.CryptoWorkers, cfg.CryptoQueueTimeout), AllowMaterialExport: cfg.AllowMaterialExport}
	if clock != nil {
		svc.Now, svc.DevClock = clock.Now, clock
	}
	if tok != nil {
		s.hsm = newTokenWatch(tok, log, time.Now) // hsm.go: nkms_hsm_up, a log line when the token stops answering
		svc.HSM = s.hsm
		if metrics != nil {
			addHSMMetrics(metrics, s.hsm)
		}
	}
	svc.HSMEmulate = svc.HSM == nil && (cfg.HSMEmulateSoftware || cfg.Dev)
	s.logOut.Flush()
	if clockNotice != "" {
		fmt.Fprintln(stderr, clockNotice)
	}
	if err := bootstrapAccessKey(ctx, svc, cfg, declaresOperator(declared), stderr); err != nil {
		return nil, err
	}
	if err := applySeed(ctx, svc, cfg, declared, s.logOut, stderr); err != nil {
		return nil, err
	}
	if err := startHSM(ctx, svc, cfg, log, stderr); err != nil {
		return nil, err
	}

	proxies, err := cfg.trustedProxies()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ln = limitConnections(ln, cfg.MaxConnections)
	tlsConf, err := serverTLS(cfg, stderr)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.URL = "http://" + listenAddr(cfg.Listen, ln.Addr())
	if tlsConf != nil {
		s.URL = "https://" + listenAddr(cfg.Listen, ln.Addr())
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = s.URL
	}
	handler := api.New(svc, api.Config{PublicURL: cfg.PublicURL, TrustedProxies: proxies, Log: log,
		RateLimitPerKey: cfg.RateLimitPerKey, RateLimitPerCaller: cfg.RateLimitPerCall,
		AuthFailuresPerSecond: cfg.AuthFailureRate, AuthFailureBurst: cfg.AuthFailureBurst,
		RejectReplayedSignatures: cfg.RejectReplays, Audit: auditor, AuditFailClosed: cfg.AuditFailClosed,
		Ready: be.ready, Metrics: metrics, RequestTimeout: requestTimeout, Now: time.Now})
	s.srv = &http.Server{
		Handler:           withConsole(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConf,
	}

	schedCtx, stopSched := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sched := &nkms.Scheduler{Service: svc, Interval: cfg.SchedulerInterval}
	if metrics != nil {
		sched.OnPass = metrics.ObservePass
		wg.Go(func() {
			metrics.RunKeyCounts(schedCtx, svc, cfg.MetricsKeysEvery, func(err error) {
				log.Warn("metrics: counting keys failed; nkms_keys keeps the last count", "err", err)
			})
		})
	}
	wg.Go(func() { be.lead(schedCtx, sched.Run) })
	if s.hsm != nil {
		wg.Go(func() { s.hsm.run(schedCtx, hsmProbeEvery) })
	}
	if be.watchDeleted != nil {
		wg.Go(func() { be.watchDeleted(schedCtx, svc.ForgetKey) })
	}
	wg.Go(func() { svc.Recorder.Run(schedCtx) }) // writes what is queued before it returns
	s.undo = append(s.undo, func() { stopSched(); wg.Wait() })

	go func() {
		if tlsConf != nil {
			s.served <- s.srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			s.served <- s.srv.Serve(ln)
		}
	}()
	s.logOut.Flush() // what was logged so far comes before the lines written directly to stderr
	if metrics != nil {
		stop, err := serveMetrics(cfg.MetricsListen, metrics, stderr)
		if err != nil {
			s.srv.Close()
			return nil, err
		}
		s.undo = append(s.undo, stop)
	}
	fmt.Fprintf(stderr, "nkms: serving on %s (%s)\n", s.URL, be.where)
	if cfg.PprofListen != "" {
		stop, err := servePprof(cfg.PprofListen, stderr)
		if err != nil {
			s.srv.Close()
			return nil, err
		}
		s.undo = append(s.undo, stop)
	}
	return s, nil
}

// Close shuts the server down gracefully: it stops taking connections,
// waits up to 30s for the requests in flight, stops the scheduler, writes
// the queued usage-log entries and closes the store. Only the first call
// does it; every call returns its result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.logOut.Flush()
		fmt.Fprintln(s.stderr, "nkms: shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(shutdownCtx); err != nil {
			s.closeErr = fmt.Errorf("shutdown: %w", err)
		}
		s.release()
	})
	return s.closeErr
}

// release undoes what Start set up, newest first.
func (s *Server) release() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// listenAddr is the host of --listen with the port the listener got (the
// port is new for port 0): "0.0.0.0:8383" stays 0.0.0.0 (decisions.md D8's
// http://<listen>), where the listener's own address would say [::].
func listenAddr(listen string, got net.Addr) string {
	host, _, err := net.SplitHostPort(listen)
	tcp, ok := got.(*net.TCPAddr)
	if err != nil || !ok || host == "" {
		return got.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// limitConnections caps at n (0: no cap) the connections of ln that are
// open at once, TLS or not, idle keep-alive ones included: the next one
// waits in the listen backlog, unanswered, until one of them closes. It
// bounds the server's memory and file descriptors under a flood of
// connections, as the read timeouts bound their time.
func limitConnections(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return netutil.LimitListener(ln, n)
}

// servePprof serves net/http/pprof's handlers on their own listener, apart
// from the API: profiles are never reachable through the KMS port.
func servePprof(addr string, stderr io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	fmt.Fprintf(stderr, "nkms: pprof on http://%s/debug/pprof/\n", ln.Addr())
	return func() { srv.Close() }, nil
}

// newLogHandler is the handler of --log-format (checked by Validate).
func newLogHandler(format string, w io.Writer, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// newMetrics returns the server's Prometheus metrics, with the read cache's
// hit and miss counts, and on etcd the quorum reads that catch up with the
// cluster.
func newMetrics(be *backend) *api.Metrics {
	m := api.NewMetrics()
	if be.catchUps != nil {
		m.CounterFunc("nkms_etcd_catch_up_reads_total",
			"Quorum reads this node made to catch up with the cluster's changes before reading from memory; each serves every request that waited for it.",
			nil, func() float64 { return float64(be.catchUps()) })
	}
	if c, ok := be.store.(*cache.Store); ok {
		const help = "Key and access-key reads served by the in-memory read cache (hit) or by the store (miss)."
		for _, x := range []struct {
			cache, result string
			get           func(cache.Stats) uint64
		}{
			{"key", "hit", func(s cache.Stats) uint64 { return s.KeyHits }},
			{"key", "miss", func(s cache.Stats) uint64 { return s.KeyMisses }},
			{"access_key", "hit", func(s cache.Stats) uint64 { return s.AccessKeyHits }},
			{"access_key", "miss", func(s cache.Stats) uint64 { return s.AccessKeyMisses }},
		} {
			m.CounterFunc("nkms_cache_requests_total", help, map[string]string{"cache": x.cache, "result": x.result},
				func() float64 { return float64(x.get(c.Stats())) })
		}
	}
	return m
}

// serveMetrics serves /metrics on its own listener, apart from the API:
// Prometheus scrapes without credentials, so it must not share the KMS port.
func serveMetrics(addr string, m *api.Metrics, stderr io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	fmt.Fprintf(stderr, "nkms: metrics on http://%s/metrics\n", ln.Addr())
	return func() { srv.Close() }, nil
}

// withConsole serves the web console under /console/ and everything else
// with api. The console is static files calling the API like any client:
// it is not part of the API (no NAVER error bodies, no audit lines). No
// ServeMux here: it would redirect non-canonical paths that the API answers
// with 404 itself.
func withConsole(api http.Handler) http.Handler {
	files := console.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/console":
			http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		case strings.HasPrefix(p, "/console/"):
			files.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// bootstrapAccessKey applies NKMS_ACCESS_KEY / NKMS_SECRET_KEY, or creates and
// prints a first access key when there is none and the seed declares no
// operator (seeded).
func bootstrapAccessKey(ctx context.Context, svc *nkms.Service, cfg Config, seeded bool, stderr io.Writer) error {
	if cfg.AccessKey != "" {
		if err := svc.EnsureAccessKey(ctx, cfg.AccessKey, cfg.SecretKey); err != nil {
			return fmt.Errorf("NKMS_ACCESS_KEY / NKMS_SECRET_KEY: %w", err)
		}
		return nil
	}
	if seeded {
		return nil
	}
	cred, err := svc.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap access key: %w", err)
	}
	if cred != nil {
		fmt.Fprintf(stderr, "nkms: created the first access key (keystore %d); it is shown only this once:\n", cred.Keystore)
		fmt.Fprintf(stderr, "NKMS_ACCESS_KEY=%s\nNKMS_SECRET_KEY=%s\n", cred.AccessKey, cred.SecretKey)
	}
	return nil
}
