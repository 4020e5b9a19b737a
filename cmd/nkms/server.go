package main

import (
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/server"
)

// defaultGCPercent is the server's GOGC unless the environment sets one.
const defaultGCPercent = 400

// serverCommand is `nkms server`: its flags and NKMS_ACCESS_KEY /
// NKMS_SECRET_KEY fill one server.Config (decisions.md D8), and server.Run
// validates and runs it.
func serverCommand(stderr io.Writer) *cobra.Command {
	cfg := server.Config{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the nkms server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AccessKey, cfg.SecretKey = os.Getenv("NKMS_ACCESS_KEY"), os.Getenv("NKMS_SECRET_KEY")
			cfg.SeedEnv = os.LookupEnv
			cfg.HSMPIN = os.Getenv("NKMS_HSM_PIN")
			if _, set := os.LookupEnv("GOGC"); !set {
				// The live heap is small (a few MiB) and each request allocates a few
				// KiB, so Go's default (collect at 2× live) collects ~70 times a second
				// at saturation. 4× measured +7% requests/s for +10 MiB peak RSS
				// (encrypt 32 B from wrk, c=16). GOGC in the environment still wins.
				debug.SetGCPercent(defaultGCPercent)
			}
			return server.Run(cmd.Context(), cfg, stderr)
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
	f.IntVar(&cfg.MaxConnections, "max-connections", 4096, "connections the API serves at once, idle keep-alive ones included; more wait unanswered until one closes (0: no cap)")
	f.Float64Var(&cfg.RateLimitPerKey, "rate-limit-per-key", 0, "requests a second allowed per key (token bucket; 0: no limit); excess gets 429")
	f.Float64Var(&cfg.RateLimitPerCall, "rate-limit-per-caller", 0, "requests a second allowed per access key (token bucket; 0: no limit); excess gets 429")
	f.Float64Var(&cfg.AuthFailureRate, "auth-failure-rate", api.DefaultAuthFailuresPerSecond, "failed authentications a second allowed per client address (IPv6: per /64); past it, every request from the address gets 429 (0: no limit)")
	f.IntVar(&cfg.AuthFailureBurst, "auth-failure-burst", 0, "failed authentications an address may make at once (0: ten seconds' worth of --auth-failure-rate)")
	f.IntVar(&cfg.CryptoWorkers, "crypto-workers", nkms.DefaultHeavyWorkers(), "RSA-2048 private-key operations (sign, decrypt; ~1.3 ms of CPU each) run at once; more wait, so that they cannot starve cheap requests (by default one less than the CPUs Go uses, at least 1; 0: no bound)")
	f.DurationVar(&cfg.CryptoQueueTimeout, "crypto-queue-timeout", 100*time.Millisecond, "how long an RSA-2048 private-key operation waits for one of --crypto-workers; past it the request gets 503 with Retry-After (0: as long as the request lasts)")
	f.StringVar(&cfg.Store, "store", "bolt", "where keys live: bolt (a file in --data-dir, one node), etcd (a cluster of nodes), or mem (in memory, lost when the server stops: for tests)")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "--store etcd: client URLs of the etcd members (http:// or https://)")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", server.DefaultEtcdPrefix, "--store etcd: key prefix; every node of one nkms cluster uses the same")
	f.StringVar(&cfg.EtcdCACert, "etcd-ca-cert", "", "--store etcd: PEM CA certificates that sign the etcd members' certificates")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "--store etcd: PEM client certificate for etcd (with --etcd-key)")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "--store etcd: PEM private key of --etcd-cert")
	f.DurationVar(&cfg.EtcdTimeout, "etcd-timeout", time.Second, "--store etcd: the longest one etcd request may take; a request that waits longer (no etcd leader, an unreachable cluster) answers 503 with Retry-After")
	f.StringVar(&cfg.AuditLog, "audit-log", "", "append one hash-chained JSON line per request to this file (off by default; check it with nkms audit verify)")
	f.BoolVar(&cfg.AuditFailClosed, "audit-fail-closed", false, "answer 500 and do nothing while the audit log cannot be written, instead of serving unaudited")
	f.BoolVar(&cfg.RejectReplays, "reject-replayed-signatures", false, "refuse a signature used before within its 5-minute window (401); see docs/api.md#replayed-signatures for the trade-off")
	f.StringVar(&cfg.PprofListen, "pprof-listen", "", "address for Go's /debug/pprof/ profiles, on its own listener (off by default; keep it on loopback)")
	f.StringVar(&cfg.Seed, "seed", "", "YAML file of access keys and keys to create at start-up when missing (${VAR} read from the environment; see nkms seed --help)")
	f.BoolVar(&cfg.AllowMaterialExport, "allow-material-export", false, "let operators export key material and secrets in plaintext (nkms seed export --material); for test data only")
	f.BoolVar(&cfg.DevClock, "dev-clock", false, "tests only: a clock that operators move forward with nkms dev advance (POST /nkms/v1/dev/clock), saved in --data-dir; not with --store etcd")
	f.StringSliceVar(&cfg.TrustedProxies, "trusted-proxies", nil, "CIDR list of proxies whose X-Forwarded-For gives the client address for IP ACLs")
	f.StringVar(&cfg.HSMModule, "hsm-module", "", "PKCS#11 module (.so) of the HSM that keeps COMMON_HSM keys; with --hsm-token, and the PIN in NKMS_HSM_PIN or --hsm-pin-file (docs/operations/hsm.md)")
	f.StringVar(&cfg.HSMToken, "hsm-token", "", "--hsm-module: label of the token to use")
	f.StringVar(&cfg.HSMPINFile, "hsm-pin-file", "", "--hsm-module: file holding the token's user PIN (instead of NKMS_HSM_PIN)")
	f.StringVar(&cfg.RootKeyHSM, "root-key-hsm", "", "--hsm-module: keep the root key file wrapped by the token's AES key with this label (made on first start; nkms root-key migrate-to-hsm converts a plain file)")
	f.BoolVar(&cfg.HSMEmulateSoftware, "hsm-emulate-software", false, "without an HSM, accept COMMON_HSM keys and keep them in software like BASIC ones (--dev does too); otherwise they are refused")
	return cmd
}
