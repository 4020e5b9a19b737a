package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/console"
	"github.com/nkms/nkms/internal/atomicfile"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/etcd"
)

// defaultGCPercent is the server's GOGC unless the environment sets one.
const defaultGCPercent = 400

// Config is everything `nkms server` reads from flags and environment (decisions.md D8).
type Config struct {
	Listen            string
	DataDir           string
	RootKeyFile       string
	DeletionWindow    time.Duration
	SchedulerInterval time.Duration
	PublicURL         string
	TrustedProxies    []string // CIDR prefixes or addresses
	LogLevel          string   // debug, info, warn or error
	LogFormat         string   // text or json
	MetricsListen     string   // empty: no /metrics endpoint
	MetricsKeysEvery  time.Duration
	UsageRetention    time.Duration
	UsagePerKey       int
	AccessKey         string // NKMS_ACCESS_KEY
	SecretKey         string // NKMS_SECRET_KEY
	PprofListen       string // empty: no profiling endpoint
	TLSCert, TLSKey   string // PEM files; both or neither
	Dev               bool   // self-signed TLS certificate in the data dir
	InsecureHTTP      bool   // allow plain HTTP on a non-loopback address
	RateLimitPerKey   float64
	RateLimitPerCall  float64 // per caller (access key)
	RejectReplays     bool
	Store             string   // "bolt" (default) or "etcd"
	EtcdEndpoints     []string // --store etcd: client URLs of the etcd cluster
	EtcdPrefix        string   // key prefix in etcd; clusters sharing an etcd use different ones
	EtcdCACert        string   // PEM CA bundle for https:// endpoints
	EtcdCert, EtcdKey string   // client certificate for etcd
	AuditLog          string   // empty: no audit log
	AuditFailClosed   bool     // refuse requests that cannot be audited
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q is not host:port", c.Listen)
	}
	if c.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	if c.RootKeyFile == "" {
		c.RootKeyFile = filepath.Join(c.DataDir, "root.key")
	}
	if c.DeletionWindow <= 0 {
		return errors.New("--pending-deletion-window must be positive")
	}
	if _, err := c.logLevel(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %q is not host:port", c.MetricsListen)
		}
	}
	if c.MetricsKeysEvery <= 0 {
		return errors.New("--metrics-keys-interval must be positive")
	}
	if c.UsageRetention <= 0 {
		return errors.New("--usage-log-retention must be positive")
	}
	if c.UsagePerKey < 1 {
		return errors.New("--usage-log-max-per-key must be at least 1")
	}
	if c.SchedulerInterval <= 0 {
		return errors.New("--scheduler-interval must be positive")
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if c.PprofListen != "" && !isLoopback(c.PprofListen) {
		return &hintError{fmt.Errorf("--pprof-listen %q is not a loopback address", c.PprofListen),
			"profiles are served without authentication or TLS; use 127.0.0.1:PORT and an SSH tunnel"}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key must be given together")
	}
	if c.Dev && c.TLSCert != "" {
		return errors.New("--dev makes its own certificate: give --dev or --tls-cert/--tls-key, not both")
	}
	if c.RateLimitPerKey < 0 || c.RateLimitPerCall < 0 {
		return errors.New("--rate-limit-per-key and --rate-limit-per-caller must not be negative (0 is no limit)")
	}
	if c.TLSCert == "" && !c.Dev && !c.InsecureHTTP && !isLoopback(c.Listen) {
		return &hintError{fmt.Errorf("refusing plain HTTP on %s, which is not a loopback address: signatures, tokens and plaintexts would cross the network in clear", c.Listen),
			"give --tls-cert and --tls-key (or --dev for a self-signed certificate); --insecure-http if a TLS proxy on this host terminates TLS"}
	}
	switch c.Store {
	case "bolt":
		if len(c.EtcdEndpoints) > 0 {
			return errors.New("--etcd-endpoints needs --store etcd")
		}
	case "etcd":
		if len(c.EtcdEndpoints) == 0 {
			return errors.New("--store etcd needs --etcd-endpoints")
		}
		if (c.EtcdCert == "") != (c.EtcdKey == "") {
			return errors.New("--etcd-cert and --etcd-key must be given together")
		}
	default:
		return fmt.Errorf("--store %q: want bolt or etcd", c.Store)
	}
	if c.AuditFailClosed && c.AuditLog == "" {
		return errors.New("--audit-fail-closed needs --audit-log")
	}
	if (c.AccessKey == "") != (c.SecretKey == "") {
		return &hintError{errors.New("NKMS_ACCESS_KEY and NKMS_SECRET_KEY must be set together"),
			"set both to bootstrap an access key, or neither to have one generated on first start"}
	}
	return nil
}

// logLevel parses --log-level.
func (c *Config) logLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// trustedProxies parses --trusted-proxies; a bare address is a one-address prefix.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR prefix or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func serverCommand(stderr io.Writer) *cobra.Command {
	cfg := Config{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the nkms server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AccessKey, cfg.SecretKey = os.Getenv("NKMS_ACCESS_KEY"), os.Getenv("NKMS_SECRET_KEY")
			if err := cfg.Validate(); err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8383", "address to listen on")
	f.StringVar(&cfg.DataDir, "data-dir", "./nkms-data", "directory of the data file (and of the root key by default)")
	f.StringVar(&cfg.RootKeyFile, "root-key-file", "", "root key file, created with mode 0600 on first start (default <data-dir>/root.key)")
	f.DurationVar(&cfg.DeletionWindow, "pending-deletion-window", nkms.DefaultDeletionWindow, "how long a key waits in REVOKE before it is destroyed")
	f.DurationVar(&cfg.SchedulerInterval, "scheduler-interval", nkms.DefaultSchedulerInterval, "how often destruction and auto rotation run")
	f.StringVar(&cfg.PublicURL, "public-url", "", "URL reported as baseUrl (default http://<listen>)")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info (one line per request), warn or error")
	f.StringVar(&cfg.LogFormat, "log-format", "text", "log lines as text (key=value) or json (one object a line)")
	f.StringVar(&cfg.MetricsListen, "metrics-listen", "", "address for Prometheus /metrics, on its own listener, unauthenticated (off by default; do not expose it publicly)")
	f.DurationVar(&cfg.MetricsKeysEvery, "metrics-keys-interval", 5*time.Minute, "how often the background count behind the nkms_keys metric lists every key")
	f.DurationVar(&cfg.UsageRetention, "usage-log-retention", nkms.DefaultActivityRetention, "how long usage-log entries are kept")
	f.IntVar(&cfg.UsagePerKey, "usage-log-max-per-key", nkms.DefaultActivityPerKey, "most usage-log entries kept per key (oldest go first)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) for HTTPS; with --tls-key")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.BoolVar(&cfg.Dev, "dev", false, "serve HTTPS with a self-signed certificate kept in the data dir (for local use)")
	f.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback --listen address")
	f.Float64Var(&cfg.RateLimitPerKey, "rate-limit-per-key", 0, "requests a second allowed per key (token bucket; 0: no limit); excess gets 429")
	f.Float64Var(&cfg.RateLimitPerCall, "rate-limit-per-caller", 0, "requests a second allowed per access key (token bucket; 0: no limit); excess gets 429")
	f.StringVar(&cfg.Store, "store", "bolt", "where keys live: bolt (a file in --data-dir, one node) or etcd (a cluster of nodes)")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "--store etcd: client URLs of the etcd members (http:// or https://)")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", etcd.DefaultPrefix, "--store etcd: key prefix; every node of one nkms cluster uses the same")
	f.StringVar(&cfg.EtcdCACert, "etcd-ca-cert", "", "--store etcd: PEM CA certificates that sign the etcd members' certificates")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "--store etcd: PEM client certificate for etcd (with --etcd-key)")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "--store etcd: PEM private key of --etcd-cert")
	f.StringVar(&cfg.AuditLog, "audit-log", "", "append one hash-chained JSON line per request to this file (off by default; check it with nkms audit verify)")
	f.BoolVar(&cfg.AuditFailClosed, "audit-fail-closed", false, "answer 500 and do nothing while the audit log cannot be written, instead of serving unaudited")
	f.BoolVar(&cfg.RejectReplays, "reject-replayed-signatures", false, "refuse a signature used before within its 5-minute window (401); see README for the trade-off")
	f.StringVar(&cfg.PprofListen, "pprof-listen", "", "address for Go's /debug/pprof/ profiles, on its own listener (off by default; keep it on loopback)")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", nil, "CIDR list of proxies whose X-Forwarded-For gives the client address for IP ACLs")
	return cmd
}

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg Config, stderr io.Writer) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		// The live heap is small (a few MiB) and each request allocates a few
		// KiB, so Go's default (collect at 2× live) collects ~70 times a second
		// at saturation. 4× measured +7% requests/s for +10 MiB peak RSS
		// (encrypt 32 B from wrk, c=16). GOGC in the environment still wins.
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := disableCoreDumps(); err != nil {
		return err
	}
	level, _ := cfg.logLevel() // checked by Validate
	logOut := newLogBuffer(stderr)
	defer logOut.Flush()
	log := slog.New(api.LogHandler(newLogHandler(cfg.LogFormat, logOut, level)))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	root, err := loadRootKey(cfg.RootKeyFile)
	if err != nil {
		return err
	}
	be, err := openBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer be.close()
	if err := bindRootKey(ctx, be, root); err != nil {
		return err
	}
	auditor, closeAudit, err := openAuditLog(cfg, log)
	if err != nil {
		return err
	}
	defer closeAudit()
	store := be.store
	var metrics *api.Metrics
	if cfg.MetricsListen != "" {
		metrics = newMetrics(store)
	}
	svc := &nkms.Service{Store: store, Root: root, Now: time.Now, DeletionWindow: cfg.DeletionWindow, Log: log,
		Recorder: nkms.NewRecorder(store, cfg.UsagePerKey, log), ActivityRetention: cfg.UsageRetention, ActivityPerKey: cfg.UsagePerKey}
	logOut.Flush()
	if err := bootstrapAccessKey(ctx, svc, cfg, stderr); err != nil {
		return err
	}

	proxies, err := cfg.trustedProxies()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	tlsConf, err := serverTLS(cfg, stderr)
	if err != nil {
		ln.Close()
		return err
	}
	url := "http://" + ln.Addr().String()
	if tlsConf != nil {
		url = "https://" + ln.Addr().String()
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = url
	}
	handler := api.New(svc, api.Config{PublicURL: cfg.PublicURL, TrustedProxies: proxies, Log: log,
		RateLimitPerKey: cfg.RateLimitPerKey, RateLimitPerCaller: cfg.RateLimitPerCall,
		RejectReplayedSignatures: cfg.RejectReplays, Audit: auditor, AuditFailClosed: cfg.AuditFailClosed,
		Ready: be.ready, Metrics: metrics})
	srv := &http.Server{
		Handler:           withConsole(handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
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
	if be.watchDeleted != nil {
		wg.Go(func() { be.watchDeleted(schedCtx, svc.ForgetKey) })
	}
	wg.Go(func() { svc.Recorder.Run(schedCtx) }) // writes what is queued before it returns
	defer func() { stopSched(); wg.Wait() }()

	served := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			served <- srv.Serve(ln)
		}
	}()
	logOut.Flush() // what was logged so far comes before the lines written directly to stderr
	if metrics != nil {
		stop, err := serveMetrics(cfg.MetricsListen, metrics, stderr)
		if err != nil {
			srv.Close()
			return err
		}
		defer stop()
	}
	fmt.Fprintf(stderr, "nkms: serving on %s (%s)\n", url, be.where)
	if cfg.PprofListen != "" {
		stop, err := servePprof(cfg.PprofListen, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logOut.Flush()
	fmt.Fprintln(stderr, "nkms: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
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
// hit and miss counts when store has the cache (bbolt).
func newMetrics(store nkms.Store) *api.Metrics {
	m := api.NewMetrics()
	if c, ok := store.(*cache.Store); ok {
		const help = "Key and access-key reads served by the in-memory read cache (hit) or by the store (miss); bbolt only."
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

// loadRootKey reads the root key file, creating it with mode 0600 when it does not exist.
// It refuses a file that its group or others may read or write.
func loadRootKey(path string) (*crypto.RootKey, error) {
	text, err := readPrivateFile(path)
	if errors.Is(err, os.ErrNotExist) {
		text, err = createRootKeyFile(path)
		if errors.Is(err, os.ErrExist) { // another process created it first: use that one
			text, err = readPrivateFile(path)
		} else if err != nil {
			return nil, fmt.Errorf("create root key file: %w", err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read root key file: %w", err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return root, nil
}

// createRootKeyFile writes a new root key file at path (mode 0600), whole or
// not at all; it fails with os.ErrExist if path exists.
func createRootKeyFile(path string) ([]byte, error) {
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := atomicfile.CreateFile(path, text); err != nil {
		return nil, err
	}
	return text, nil
}

// readPrivateFile reads a file that only its owner may read or write.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &hintError{fmt.Errorf("root key file %s has mode %04o: its group or others may read it", path, perm),
			"chmod 600 " + path + " (and check who may have copied it)"}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("root key file %s is not a regular file", path)
	}
	return io.ReadAll(f)
}

// bootstrapAccessKey applies NKMS_ACCESS_KEY / NKMS_SECRET_KEY, or creates and
// prints a first access key when there is none.
func bootstrapAccessKey(ctx context.Context, svc *nkms.Service, cfg Config, stderr io.Writer) error {
	if cfg.AccessKey != "" {
		if err := svc.EnsureAccessKey(ctx, cfg.AccessKey, cfg.SecretKey); err != nil {
			return fmt.Errorf("NKMS_ACCESS_KEY / NKMS_SECRET_KEY: %w", err)
		}
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
