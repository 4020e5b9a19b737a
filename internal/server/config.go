package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Config is everything a running server needs, as plain fields (decisions.md
// D8). cmd/nkms fills it from the flags and the environment of `nkms
// server`; nothing here reads either. Validate's messages name the flag of
// each field, since that is what a user sets.
type Config struct {
	// Where it listens and what it says it is.
	Listen        string // host:port of the API
	PublicURL     string // reported as baseUrl; empty: the URL it listens on
	MetricsListen string // empty: no /metrics endpoint
	PprofListen   string // empty: no profiling endpoint; loopback only

	// TLS of the API listener.
	TLSCert, TLSKey string // PEM files; both or neither
	Dev             bool   // self-signed TLS certificate in the data dir
	InsecureHTTP    bool   // allow plain HTTP on a non-loopback address

	// Where the keys live.
	DataDir           string        // the bbolt data file, and the root key by default
	RootKeyFile       string        // empty: <DataDir>/root.key (filled by Validate)
	Store             string        // "bolt" (default), "etcd", or "mem" (nothing kept: for tests)
	EtcdEndpoints     []string      // Store "etcd": client URLs of the etcd cluster
	EtcdPrefix        string        // key prefix in etcd; clusters sharing an etcd use different ones
	EtcdCACert        string        // PEM CA bundle for https:// endpoints
	EtcdCert, EtcdKey string        // client certificate for etcd
	EtcdTimeout       time.Duration // bounds each etcd request (0: store/etcd.DefaultTimeout); past it, 503

	// Key lifecycle and usage logs.
	DeletionWindow    time.Duration
	SchedulerInterval time.Duration
	UsageRetention    time.Duration
	UsagePerKey       int

	// Limits on callers. 0 is no limit.
	MaxConnections   int      // connections of the API listener open at once; more wait
	RateLimitPerKey  float64  // requests a second per key
	RateLimitPerCall float64  // requests a second per caller (access key)
	AuthFailureRate  float64  // failed authentications a second per client address
	AuthFailureBurst int      // failures an address may make at once (0: ten seconds' worth)
	RejectReplays    bool     // refuse a signature seen before within its window
	TrustedProxies   []string // CIDR prefixes or addresses whose X-Forwarded-For is believed

	// Expensive crypto (RSA-2048 private-key operations; nkms.HeavyPool).
	CryptoWorkers      int           // at most this many run at once (0: no bound; cmd/nkms: nkms.DefaultHeavyWorkers)
	CryptoQueueTimeout time.Duration // how long one waits for a worker before 503 (0: while its request lasts)

	// DevClock makes the Service's clock a nkms.DevClock that operators can
	// move forward (POST /nkms/v1/dev/clock), saved in the data dir. Tests only.
	DevClock bool

	// Logs and audit.
	LogLevel         string // debug, info, warn or error
	LogFormat        string // text or json
	MetricsKeysEvery time.Duration
	AuditLog         string // empty: no audit log
	AuditFailClosed  bool   // refuse requests that cannot be audited

	// The first access key: both or neither (NKMS_ACCESS_KEY, NKMS_SECRET_KEY).
	// Neither: one is made and printed once when there is none.
	AccessKey, SecretKey string

	// Declared access keys and keys (seed.go): a YAML file applied at
	// start-up, after the first access key; empty: none.
	Seed string
	// SeedEnv gives the values of ${VAR} in the seed file; nil: os.LookupEnv.
	SeedEnv func(string) (string, bool)
	// AllowMaterialExport lets operators export key material and secrets
	// in plaintext (nkms seed export --material); start-up warns.
	AllowMaterialExport bool

	// The HSM of COMMON_HSM keys (issue 18; hsm.go): a PKCS#11 module, the
	// token's label and its user PIN (NKMS_HSM_PIN, or read from
	// HSMPINFile). HSMEmulateSoftware accepts COMMON_HSM keys without an
	// HSM, kept in software (--dev does too).
	HSMModule          string
	HSMToken           string
	HSMPIN             string
	HSMPINFile         string
	HSMEmulateSoftware bool
	// RootKeyHSM is the label of the AES key in the HSM token that wraps
	// the root key (--root-key-hsm; rootkey_hsm.go).
	RootKeyHSM string
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
	if err := c.validateRootKeyHSM(); err != nil {
		return err
	}
	if err := c.validateHSM(); err != nil {
		return err
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
	if c.MaxConnections < 0 {
		return errors.New("--max-connections must not be negative (0 is no cap)")
	}
	if c.AuthFailureRate < 0 || c.AuthFailureBurst < 0 {
		return errors.New("--auth-failure-rate and --auth-failure-burst must not be negative (0 is no limit, or the default burst)")
	}
	if c.CryptoWorkers < 0 || c.CryptoQueueTimeout < 0 {
		return errors.New("--crypto-workers and --crypto-queue-timeout must not be negative (0 is no bound, or a wait as long as the request)")
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
	case "mem":
		if len(c.EtcdEndpoints) > 0 {
			return errors.New("--etcd-endpoints needs --store etcd")
		}
	case "etcd":
		if !withEtcd {
			return errNoEtcd
		}
		if len(c.EtcdEndpoints) == 0 {
			return errors.New("--store etcd needs --etcd-endpoints")
		}
		if (c.EtcdCert == "") != (c.EtcdKey == "") {
			return errors.New("--etcd-cert and --etcd-key must be given together")
		}
		if c.EtcdTimeout < 0 {
			return errors.New("--etcd-timeout must not be negative")
		}
	default:
		return fmt.Errorf("--store %q: want bolt, etcd or mem", c.Store)
	}
	if c.DevClock && c.Store == "etcd" {
		return &hintError{errors.New("--dev-clock cannot be used with --store etcd: every node would need the same moved clock, and an advance reaches only the node that takes it"),
			"run the test server on one node with the bolt store (the default)"}
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

// etcdTLS is the client TLS configuration of the --etcd-* options; nil for
// plain http:// endpoints without options.
func (c *Config) etcdTLS() (*tls.Config, error) {
	if c.EtcdCACert == "" && c.EtcdCert == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.EtcdCACert != "" {
		pem, err := os.ReadFile(c.EtcdCACert)
		if err != nil {
			return nil, fmt.Errorf("--etcd-ca-cert: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-ca-cert %s: no PEM certificate in the file", c.EtcdCACert)
		}
	}
	if c.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(c.EtcdCert, c.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// isLoopback reports whether the host of a host:port listen address is a
// loopback address or "localhost". An empty host (all interfaces) is not.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hintError is an error with a suggestion for the user; cmd/nkms prints
// the suggestion of any error with a Hint method on its own line.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
