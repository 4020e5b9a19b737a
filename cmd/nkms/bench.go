package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/loadgen"
)

// benchOp is one operation `nkms bench` can load the server with.
type benchOp struct {
	method  string
	suffix  string // appended to /kms/v1/keys/{keyTag}
	sign    bool   // needs a key that signs (else one that encrypts); ignored by key-info
	payload bool   // the request carries --payload bytes
}

// benchOps are the operations of --op; "ceiling" is handled apart.
var benchOps = map[string]benchOp{
	"encrypt":           {http.MethodPost, "/encrypt", false, true},
	"decrypt":           {http.MethodPost, "/decrypt", false, true},
	"re-encrypt":        {http.MethodPost, "/re-encrypt", false, true},
	"create-custom-key": {http.MethodPost, "/create-custom-key", false, false},
	"sign":              {http.MethodPost, "/sign", true, true},
	"verify":            {http.MethodPost, "/verify", true, true},
	"key-info":          {http.MethodGet, "", false, false},
}

// ceilingTag is the key tag of --op ceiling: the ceiling server answers any path.
var ceilingTag = strings.Repeat("0", 64)

// benchOptions are the flags of `nkms bench`.
type benchOptions struct {
	cli              *cli
	op               string
	keyType          string
	protection       string // --protection of the key created for the run
	keyTag           string
	payload          int
	concurrency      int
	duration         time.Duration
	requests         int
	warmup           time.Duration
	format           string
	json             bool
	nodes            []string // --nodes: spread the load over these servers
	ignoreRetryAfter bool     // --ignore-retry-after
	hosts            []string // their host:port, from validate
}

func benchCommand(c *cli) *cobra.Command {
	o := &benchOptions{cli: c}
	stdout, stderr := c.stdout, c.stderr
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a server with signed requests of one operation and report throughput and latency",
		Long: `Load a server with signed requests of one operation and report throughput and latency.

Unless --key-tag names an existing key, bench creates a key of --key-type
and --protection for the run (and requests its deletion afterwards), and
prepares what the operation needs: a ciphertext to decrypt or re-encrypt, a
signature to verify. A server refuses COMMON_HSM keys unless it has an HSM
(docs/operations/hsm.md), and refuses the key types its HSM cannot keep.
Each request is signed like a real client's, with a fresh timestamp.
Requests that do not get a 2xx answer are counted by status; requests that
get no answer at all, as "error".

--op ceiling loads a server that answers a fixed JSON body (nkms
bench-ceiling) with the same signed request as encrypt, to measure what the
machine and this tool can do at best.`,
		Example: `  nkms bench --op encrypt --payload 4096 --concurrency 16 --duration 10s
  nkms bench --op sign --key-type ECDSA --requests 10000 --json
  nkms bench --op sign --key-type ECDSA --protection COMMON_HSM --concurrency 16`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd); err != nil {
				return err
			}
			return o.run(cmd.Context(), stdout, stderr)
		},
	}
	c.connectionFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.op, "op", "encrypt", "operation: "+strings.Join(benchOpNames(), ", ")+", list-keys, create-key (a new key per request; they stay), or ceiling")
	f.StringVar(&o.keyType, "key-type", "AES256", "type of the key created for the run: AES256, RSA2048 or ECDSA")
	f.StringVar(&o.protection, "protection", string(nkms.ProtectionBasic), "protection type of the key created for the run (and of --op create-key's keys): BASIC or COMMON_HSM (kept in the server's HSM)")
	f.StringVar(&o.keyTag, "key-tag", "", "use this existing key instead of creating one")
	f.IntVar(&o.payload, "payload", 32, "bytes of plaintext (encrypt, decrypt, re-encrypt) or of data (sign, verify)")
	f.IntVar(&o.concurrency, "concurrency", 1, "workers, each with one request in flight")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure (unless --requests)")
	f.IntVar(&o.requests, "requests", 0, "send exactly this many requests in all, instead of running for --duration")
	f.DurationVar(&o.warmup, "warmup", time.Second, "load sent first and left out of the report (0 for none)")
	f.StringVar(&o.format, "format", "text", "report format: text, json or tsv (a header line and one row); wrk prints a wrk script with one pre-signed request instead of running")
	f.BoolVar(&o.json, "json", false, "print the report as JSON (same as --format json)")
	f.BoolVar(&o.ignoreRetryAfter, "ignore-retry-after", false, "send the next request at once after a 429 or 503 (by default a worker waits the answer's Retry-After, as a well-behaved client does)")
	f.StringSliceVar(&o.nodes, "nodes", nil, "spread the load over these servers of one cluster (URLs; worker i uses node i mod N); the key is set up through --endpoint")
	return cmd
}

func benchOpNames() []string {
	names := make([]string, 0, len(benchOps))
	for n := range benchOps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// validate checks the flags before anything is sent.
func (o *benchOptions) validate(cmd *cobra.Command) error {
	if o.json {
		if cmd.Flags().Changed("format") && o.format != "json" {
			return errors.New("--json and --format " + o.format + " disagree")
		}
		o.format = "json"
	}
	switch o.format {
	case "text", "json", "tsv", "wrk":
	default:
		return fmt.Errorf("--format %q is not text, json, tsv or wrk", o.format)
	}
	if o.concurrency < 1 {
		return errors.New("--concurrency must be at least 1")
	}
	for _, n := range o.nodes {
		u, err := url.Parse(n)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--nodes: %q is not a base URL like http://host:port", n)
		}
		o.hosts = append(o.hosts, u.Host)
	}
	if o.requests < 0 {
		return errors.New("--requests must not be negative")
	}
	if o.requests > 0 && cmd.Flags().Changed("duration") {
		return &hintError{errors.New("--duration and --requests exclude each other"), "give one of them"}
	}
	if o.requests == 0 && o.duration <= 0 {
		return errors.New("--duration must be positive")
	}
	if o.warmup < 0 {
		return errors.New("--warmup must not be negative")
	}
	if o.payload < 0 {
		return errors.New("--payload must not be negative")
	}
	if !nkms.Protection(o.protection).Valid() {
		return fmt.Errorf("--protection %q is not BASIC or COMMON_HSM", o.protection)
	}
	if o.op == "ceiling" || o.op == "list-keys" {
		if cmd.Flags().Changed("protection") {
			return fmt.Errorf("--protection has no meaning with --op %s: it uses no key", o.op)
		}
		return nil
	}
	if o.op == "create-key" {
		if o.format == "wrk" {
			return errors.New("--op create-key cannot be pre-signed for wrk: every request needs its own key name")
		}
		if !nkms.KeyType(o.keyType).Valid() {
			return fmt.Errorf("--key-type %q is not AES256, RSA2048 or ECDSA", o.keyType)
		}
		return nil
	}
	if _, ok := benchOps[o.op]; !ok {
		return &hintError{fmt.Errorf("--op %q is not an operation bench knows", o.op),
			"use one of " + strings.Join(benchOpNames(), ", ") + ", list-keys, create-key or ceiling"}
	}
	if o.keyTag != "" && cmd.Flags().Changed("protection") {
		return &hintError{errors.New("--protection and --key-tag exclude each other: the key's protection is its own"),
			"leave out --protection, or let bench create a key"}
	}
	if o.keyTag != "" && !cmd.Flags().Changed("key-type") {
		return nil // the key's own type is checked once it is known
	}
	return o.checkKeyType(o.keyType)
}

// checkKeyType checks that op can run on a key of type kt with the payload.
func (o *benchOptions) checkKeyType(kt string) error {
	t := nkms.KeyType(kt)
	if !t.Valid() {
		return fmt.Errorf("--key-type %q is not AES256, RSA2048 or ECDSA", kt)
	}
	op := benchOps[o.op]
	switch {
	case o.op == "key-info":
	case op.sign && !t.CanSign():
		return &hintError{fmt.Errorf("--op %s needs an RSA2048 or ECDSA key, not %s", o.op, kt),
			"use --key-type RSA2048 or --key-type ECDSA"}
	case !op.sign && !t.CanEncrypt():
		return &hintError{fmt.Errorf("--op %s needs an AES256 or RSA2048 key, not %s", o.op, kt),
			"use --key-type AES256 or --key-type RSA2048"}
	}
	if !op.payload {
		return nil
	}
	limit := t.MaxPlaintext()
	if op.sign {
		limit = nkms.MaxSignData
	}
	if o.payload > limit {
		return fmt.Errorf("--payload %d is over the %d bytes that %s takes with %s keys", o.payload, limit, o.op, kt)
	}
	return nil
}

// benchTarget is what the timed run sends, and what setup left behind.
type benchTarget struct {
	req        loadgen.Request
	nextBody   func() []byte // create-key: a new key name per request
	keyType    string        // "" for the ceiling
	protection string        // BASIC or COMMON_HSM; "" for the ceiling and list-keys
	keyTag     string
	payload    int             // bytes of payload in the request
	cleanup    func(io.Writer) // removes what setup created; never nil
}

func (o *benchOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	ak, sk := os.Getenv("NKMS_ACCESS_KEY"), os.Getenv("NKMS_SECRET_KEY")
	var t *benchTarget
	var err error
	if o.op == "ceiling" {
		if ak == "" || sk == "" { // the ceiling server checks nothing; sign all the same
			ak, sk = "BENCHCEILING", "bench-ceiling-secret"
		}
		t, err = o.ceilingTarget()
	} else if o.op == "list-keys" {
		t, err = o.listTarget()
	} else if o.op == "create-key" {
		t, err = o.createKeyTarget(stderr)
	} else {
		var c *client.Client
		if c, err = o.cli.client(); err != nil {
			return err
		}
		t, err = o.setup(ctx, c)
	}
	if err != nil {
		return err
	}
	if o.format == "wrk" { // the key stays: wrk will use it
		return writeWrkScript(stdout, t.req, ak, []byte(sk), time.Now())
	}
	defer t.cleanup(stderr)

	cfg := loadgen.Config{
		Request:     t.req,
		AccessKey:   ak,
		Secret:      []byte(sk),
		Concurrency: o.concurrency,
		Requests:    o.requests,
		Duration:    o.duration,
		Warmup:      o.warmup,

		IgnoreRetryAfter: o.ignoreRetryAfter,
	}
	tlsConf, err := o.cli.tlsConfig()
	if err != nil {
		return err
	}
	cfg.Client = loadgen.NewClient(o.concurrency, tlsConf)
	cfg.Hosts = o.hosts
	cfg.NextBody = t.nextBody
	probeStart := time.Now()
	if err := probe(ctx, cfg, o.op); err != nil {
		return err
	}
	first := time.Since(probeStart)
	live := o.format == "text" && isTerminal(stderr)
	if live {
		cfg.Progress = func(p loadgen.Progress) {
			rate := float64(p.Requests) / p.Elapsed.Seconds()
			fmt.Fprintf(stderr, "\rnkms: bench %s  %5.1fs  %d requests  %.0f req/s  %d errors\033[K",
				o.op, p.Elapsed.Seconds(), p.Requests, rate, p.Errors)
		}
	}
	if live && o.warmup > 0 {
		fmt.Fprintf(stderr, "\rnkms: bench %s  warming up for %v\033[K", o.op, o.warmup)
	}
	res, runErr := loadgen.Run(ctx, cfg)
	if live {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if runErr != nil && res.Requests == 0 {
		return fmt.Errorf("bench interrupted: %w", runErr)
	}
	rep := newBenchReport(o, t, res, first)
	if err := rep.write(stdout, o.format); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("bench interrupted after %d requests: %w", res.Requests, runErr)
	}
	return nil
}

// listTarget is Get Key List, first page of 100: no key to set up.
func (o *benchOptions) listTarget() (*benchTarget, error) {
	base, err := o.base()
	if err != nil {
		return nil, err
	}
	return &benchTarget{
		req:     loadgen.Request{Method: http.MethodGet, URL: base + "/kms/v1/keys?pageNo=1&pageSize=100"},
		cleanup: func(io.Writer) {},
	}, nil
}

// createKeyTarget is Create Key with a new name for every request (a
// management write: the store's write latency). The keys stay; they are
// named b<run><n>, and the run's prefix is printed.
func (o *benchOptions) createKeyTarget(stderr io.Writer) (*benchTarget, error) {
	base, err := o.base()
	if err != nil {
		return nil, err
	}
	run := hex.EncodeToString(randomBytes(2)) // 4 hex digits: names stay within 15 characters
	var n atomic.Uint64
	next := func() []byte {
		name := "b" + run + strconv.FormatUint(n.Add(1), 36)
		return []byte(`{"keyName":"` + name + `","keyType":"` + o.keyType + `","protectionType":"` + o.protection + `"}`)
	}
	return &benchTarget{
		req:        loadgen.Request{Method: http.MethodPost, URL: base + "/kms/v1/keys"},
		nextBody:   next,
		keyType:    o.keyType,
		protection: o.protection,
		cleanup: func(io.Writer) {
			fmt.Fprintf(stderr, "nkms: bench left the %d keys it created in place (named b%s…)\n", n.Load(), run)
		},
	}, nil
}

// ceilingTarget is encrypt's request, sent to a server that answers any path.
func (o *benchOptions) ceilingTarget() (*benchTarget, error) {
	base, err := o.base()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"plaintext": randomBytes(o.payload)})
	if err != nil {
		return nil, err
	}
	return &benchTarget{
		req:     loadgen.Request{Method: http.MethodPost, URL: base + "/kms/v1/keys/" + ceilingTag + "/encrypt", Body: body},
		payload: o.payload,
		cleanup: func(io.Writer) {},
	}, nil
}

// setup finds or creates the key and prepares the request of the operation.
func (o *benchOptions) setup(ctx context.Context, c *client.Client) (_ *benchTarget, err error) {
	base, err := o.base()
	if err != nil {
		return nil, err
	}
	t := &benchTarget{keyTag: o.keyTag, keyType: o.keyType, protection: o.protection, cleanup: func(io.Writer) {}}
	if o.keyTag != "" {
		k, err := c.GetKey(ctx, o.keyTag)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", o.keyTag, err)
		}
		if err := o.checkKeyType(k.KeyType); err != nil {
			return nil, fmt.Errorf("key %s: %w", o.keyTag, err)
		}
		t.keyType, t.protection = k.KeyType, k.ProtectionType
	} else {
		name := "bench-" + hex.EncodeToString(randomBytes(4))
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: o.keyType, ProtectionType: o.protection})
		if err != nil {
			return nil, createKeyError(o.keyType, o.protection, err)
		}
		t.keyTag = k.KeyTag
		t.cleanup = func(stderr io.Writer) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := c.RequestDeletion(ctx, k.KeyTag); err != nil {
				fmt.Fprintf(stderr, "nkms: could not request deletion of bench key %s: %v\n", k.KeyTag, err)
			}
		}
		defer func() {
			if err != nil {
				t.cleanup(io.Discard)
			}
		}()
	}
	op := benchOps[o.op]
	payload := randomBytes(o.payload)
	var body any // []byte values encode as Base64
	switch o.op {
	case "encrypt":
		body = map[string]any{"plaintext": payload}
	case "decrypt", "re-encrypt":
		ct, err := c.Encrypt(ctx, t.keyTag, payload, nil)
		if err != nil {
			return nil, fmt.Errorf("prepare a ciphertext: %w", err)
		}
		body = map[string]any{"ciphertext": ct}
	case "sign":
		body = map[string]any{"data": payload}
	case "verify":
		sig, err := c.Sign(ctx, t.keyTag, payload)
		if err != nil {
			return nil, fmt.Errorf("prepare a signature: %w", err)
		}
		body = map[string]any{"data": payload, "signature": sig}
	case "create-custom-key":
		body = map[string]any{"requestPlainKey": false}
	}
	if op.payload {
		t.payload = o.payload
	}
	t.req = loadgen.Request{Method: op.method, URL: base + "/kms/v1/keys/" + url.PathEscape(t.keyTag) + op.suffix}
	if body != nil {
		if t.req.Body, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// createKeyError explains why the key for the run could not be created.
// bench/run looks for "refused to create a COMMON_HSM" in it: a server whose
// HSM cannot keep a key type refuses such keys with a 400, and that row of
// its table then says so instead of failing the run.
func createKeyError(keyType, protection string, err error) error {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status == http.StatusBadRequest && protection == string(nkms.ProtectionCommonHSM) {
		return &hintError{fmt.Errorf("the server refused to create a %s %s key for the run: %w", protection, keyType, err),
			"the server needs an HSM (--hsm-module) that can keep " + keyType + " keys; see docs/operations/hsm.md"}
	}
	return &hintError{fmt.Errorf("create a %s %s key for the run: %w", protection, keyType, err),
		"the access key needs the manager or admin role, or give an existing key with --key-tag"}
}

// probe sends the request once and fails unless it gets a 2xx answer, so
// that a wrong URL, credential or key shows as one clear error rather than
// as a run of failures.
func probe(ctx context.Context, cfg loadgen.Config, op string) error {
	status, body, err := loadgen.Once(ctx, cfg)
	if err != nil {
		return &hintError{fmt.Errorf("first %s request: %w", op, err), "is the server running at --endpoint?"}
	}
	if status < 200 || status > 299 {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return fmt.Errorf("first %s request answered HTTP %d: %s", op, status, msg)
	}
	return nil
}

// base is the resolved endpoint, checked, without a final "/".
func (o *benchOptions) base() (string, error) {
	s, err := o.cli.settings()
	if err != nil {
		return "", err
	}
	return benchBase(s.endpoint.value)
}

// benchBase checks the base URL and returns it without a trailing slash.
func benchBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("endpoint %q must be http(s)://host[:port][/path]", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails
	return b
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
