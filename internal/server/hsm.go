package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/hsm"
)

// validateHSM checks the HSM settings (issue 18): a module needs a token
// label and a PIN (NKMS_HSM_PIN or --hsm-pin-file, never a flag value), and
// a binary built without cgo refuses --hsm-module.
func (c *Config) validateHSM() error {
	if c.HSMModule == "" {
		switch {
		case c.HSMToken != "":
			return errors.New("--hsm-token needs --hsm-module")
		case c.HSMPINFile != "":
			return errors.New("--hsm-pin-file needs --hsm-module")
		}
		return nil
	}
	if !hsm.Supported {
		return &hintError{errors.New("--hsm-module: this nkms binary was built without HSM support"),
			"PKCS#11 needs cgo: build nkms with CGO_ENABLED=1 and a C compiler (the container image is a static build without it)"}
	}
	if c.HSMToken == "" {
		return errors.New("--hsm-module needs --hsm-token LABEL (the token's label)")
	}
	if c.HSMPIN == "" && c.HSMPINFile == "" {
		return &hintError{errors.New("--hsm-module needs the token's user PIN"),
			"set NKMS_HSM_PIN or give --hsm-pin-file FILE"}
	}
	if c.HSMPIN != "" && c.HSMPINFile != "" {
		return errors.New("the HSM PIN is both in NKMS_HSM_PIN and in --hsm-pin-file: give one")
	}
	if c.HSMEmulateSoftware {
		return errors.New("--hsm-emulate-software is for servers without an HSM: not with --hsm-module")
	}
	return nil
}

// openHSM logs in to the configured token; nil without --hsm-module.
func openHSM(cfg Config) (*hsm.Token, error) {
	if cfg.HSMModule == "" {
		return nil, nil
	}
	pin := cfg.HSMPIN
	if cfg.HSMPINFile != "" {
		b, err := os.ReadFile(cfg.HSMPINFile)
		if err != nil {
			return nil, fmt.Errorf("--hsm-pin-file: %w", err)
		}
		pin = strings.TrimRight(string(b), "\r\n")
		if pin == "" {
			return nil, fmt.Errorf("--hsm-pin-file %s is empty", cfg.HSMPINFile)
		}
	}
	tok, err := hsm.Open(hsm.Config{Module: cfg.HSMModule, Token: cfg.HSMToken, PIN: pin})
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// startHSM reports the COMMON_HSM keys at start-up and sweeps orphaned
// token objects (nkms.Service.StartHSM); it refuses to start when key
// versions live in an HSM that is not configured.
func startHSM(ctx context.Context, svc *nkms.Service, cfg Config, log *slog.Logger, stderr io.Writer) error {
	r, err := svc.StartHSM(ctx)
	if err != nil {
		return fmt.Errorf("hsm: %w", err)
	}
	switch {
	case svc.HSM != nil:
		log.Info("HSM ready: COMMON_HSM keys are generated and used in the token",
			"module", cfg.HSMModule, "token", cfg.HSMToken, "tokenVersions", r.TokenVersions, "orphansDeleted", r.Swept)
	case svc.HSMEmulate:
		fmt.Fprintln(stderr, "nkms: no HSM: COMMON_HSM keys are accepted and kept in software like BASIC ones (--hsm-emulate-software or --dev)")
	}
	if r.Missing > 0 {
		fmt.Fprintf(stderr, "nkms: warning: %d COMMON_HSM key version(s) are kept in HSM objects this token does not have; using them answers 503\n", r.Missing)
		fmt.Fprintln(stderr, "nkms: hint: every node needs the same token contents (a shared SoftHSM2 token directory, or the vendor's HSM cluster): docs/operations/hsm.md")
	}
	if r.SoftwareKeys > 0 {
		fmt.Fprintf(stderr, "nkms: %d COMMON_HSM key(s) are kept in software (made before HSM support, or emulated); they keep working\n", r.SoftwareKeys)
		fmt.Fprintln(stderr, "nkms: hint: with --hsm-module their next versions are made in the HSM; docs/operations/hsm.md")
	}
	return nil
}

// hsmProbeEvery is how often a server with an HSM asks its token whether it
// answers (tokenWatch.run), besides every operation that uses it.
const hsmProbeEvery = 15 * time.Second

// hsmMissingLogEvery bounds the log lines about key versions whose object
// the token does not have: one a minute at most, with the count since.
const hsmMissingLogEvery = time.Minute

// hsmOps are the operations nkms_hsm_failures_total counts, by its op label.
var hsmOps = []string{"generate", "load", "destroy", "list", "encrypt", "decrypt", "sign", "probe"}

// tokenWatch is the server's HSM: the token, and how it fares. Every call
// through it, every crypto operation of a token key (nkms.HSMMonitor) and a
// probe every hsmProbeEvery decide whether the token is up; the log says so
// once when the token stops answering and once when it answers again, never
// once a request. Metrics read its counts.
type tokenWatch struct {
	tok nkms.HSM
	log *slog.Logger
	now func() time.Time

	down      atomic.Bool
	rsaLogged atomic.Bool               // the token's RSA-OAEP mechanism was logged
	failures  map[string]*atomic.Uint64 // by op (hsmOps); read-only after newTokenWatch
	missing   atomic.Uint64

	mu          sync.Mutex // guards the fields below
	stateSince  time.Time
	missingLog  time.Time // when the last line about a missing object was written
	missingSeen uint64    // missing as of that line
}

func newTokenWatch(tok nkms.HSM, log *slog.Logger, now func() time.Time) *tokenWatch {
	w := &tokenWatch{tok: tok, log: log, now: now, failures: map[string]*atomic.Uint64{}}
	for _, op := range hsmOps {
		w.failures[op] = new(atomic.Uint64)
	}
	return w
}

// up reports whether the token answered the last operation or probe.
func (w *tokenWatch) up() bool { return !w.down.Load() }

// Observe records the outcome of op: nil (the token answered) or a failure
// of the token. The first failure after a success, and the first success
// after a failure, are logged.
func (w *tokenWatch) Observe(op string, err error) {
	if err == nil {
		if op == "decrypt" {
			w.noteRSA()
		}
		if w.down.Load() && w.down.CompareAndSwap(true, false) {
			w.mu.Lock()
			since := w.stateSince
			w.stateSince = w.now()
			w.mu.Unlock()
			w.log.Info("hsm: the token answers again: COMMON_HSM keys work", "op", op, "downFor", w.now().Sub(since).Round(time.Second).String())
		}
		return
	}
	if c := w.failures[op]; c != nil {
		c.Add(1)
	}
	if w.down.CompareAndSwap(false, true) {
		w.mu.Lock()
		w.stateSince = w.now()
		w.mu.Unlock()
		w.log.Error("hsm: the token does not answer: operations on COMMON_HSM keys fail (503) until it does; BASIC keys are not affected",
			"op", op, "err", err)
	}
}

// Missing counts a request for a key version whose object the token does
// not have, and logs it at most once a hsmMissingLogEvery.
func (w *tokenWatch) Missing(tag string, version int) {
	n := w.missing.Add(1)
	w.mu.Lock()
	now := w.now()
	if !w.missingLog.IsZero() && now.Sub(w.missingLog) < hsmMissingLogEvery {
		w.mu.Unlock()
		return
	}
	since := n - w.missingSeen
	w.missingLog, w.missingSeen = now, n
	w.mu.Unlock()
	w.log.Error("hsm: a key version's object is not in this server's token: is this node on the same token as the others? (docs/operations/hsm.md)",
		"keyTag", tag, "version", version, "requestsSinceLastLine", since)
}

// Check asks the token whether it answers: it looks for an object that
// does not exist (a random CKA_ID), which a token that answers reports as
// absent.
func (w *tokenWatch) Check() error {
	id, err := crypto.RandomBytes(20)
	if err != nil {
		return err
	}
	_, err = w.tok.Load(crypto.AES256, false, id)
	if err == nil || errors.Is(err, nkms.ErrHSMNoObject) {
		w.Observe("probe", nil)
		return nil
	}
	w.Observe("probe", err)
	return err
}

// run probes the token every interval until ctx ends.
func (w *tokenWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// result records the outcome of a call of the HSM interface: a token that
// answers "no such object" or "no such mechanism" answered.
func (w *tokenWatch) result(op string, err error) error {
	if err == nil || errors.Is(err, nkms.ErrHSMNoObject) || errors.Is(err, crypto.ErrUnsupported) {
		w.Observe(op, nil)
	} else {
		w.Observe(op, err)
	}
	return err
}

func (w *tokenWatch) Generate(alg crypto.Algorithm, convergent bool, id []byte, label string) error {
	err := w.result("generate", w.tok.Generate(alg, convergent, id, label))
	if err == nil && alg == crypto.RSA2048 {
		w.noteRSA()
	}
	return err
}

// noteRSA logs, once, how the token decrypts RSA-OAEP: a token finds out
// with its first RSA2048 key (generated, or first used to decrypt), and
// its own CKM_RSA_PKCS_OAEP and the raw CKM_RSA_X_509 with the padding
// removed by nkms are worth telling apart for an operator.
func (w *tokenWatch) noteRSA() {
	if w.rsaLogged.Load() {
		return
	}
	t, ok := w.tok.(interface{ RSADecryptMechanism() string })
	if !ok {
		return
	}
	if m := t.RSADecryptMechanism(); m != "" && w.rsaLogged.CompareAndSwap(false, true) {
		w.log.Info("hsm: RSA2048 keys decrypt RSA-OAEP in the token with "+m, "mechanism", m)
	}
}

func (w *tokenWatch) Load(alg crypto.Algorithm, convergent bool, id []byte) (*crypto.Key, error) {
	k, err := w.tok.Load(alg, convergent, id)
	return k, w.result("load", err)
}

func (w *tokenWatch) Destroy(id []byte) error { return w.result("destroy", w.tok.Destroy(id)) }

func (w *tokenWatch) Objects() ([]nkms.HSMObject, error) {
	objs, err := w.tok.Objects()
	return objs, w.result("list", err)
}

// addHSMMetrics registers the token's metrics (docs/operations/metrics.md).
func addHSMMetrics(m *api.Metrics, w *tokenWatch) {
	m.GaugeFunc("nkms_hsm_up",
		"1 when the HSM token answered the last operation or probe (every 15 s), 0 when it failed: COMMON_HSM keys then answer 503, BASIC keys are not affected.",
		func() float64 {
			if w.up() {
				return 1
			}
			return 0
		})
	for _, op := range hsmOps {
		c := w.failures[op]
		m.CounterFunc("nkms_hsm_failures_total",
			`HSM token operations that failed other than by their input, by op: generate, load, destroy, list, encrypt, decrypt, sign, probe.`,
			map[string]string{"op": op}, func() float64 { return float64(c.Load()) })
	}
	m.CounterFunc("nkms_hsm_missing_objects_total",
		"Requests for a COMMON_HSM key version whose object this node's token does not have (a node on another token than the others, or a token that lost its contents).",
		nil, func() float64 { return float64(w.missing.Load()) })
}
