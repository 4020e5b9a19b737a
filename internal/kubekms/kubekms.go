// Package kubekms is a Kubernetes KMS v2 plugin over the NAVER Cloud KMS
// API: the k8s.io/kms service.Service that kube-apiserver calls through a
// Unix socket to wrap its data encryption keys (DEKs) with one key of nkms,
// or of NAVER Cloud KMS itself (the plugin speaks only API 2.0 through
// package client).
//
//   - Encrypt sends the DEK to the key's encrypt route and returns the
//     "ncpkms:v<N>:<Base64>" ciphertext's bytes, with key_id "<tag>:v<N>"
//     taken from that ciphertext, so a rotated key gives a new key_id.
//   - Decrypt sends the ciphertext back to the key's decrypt route; the
//     server picks the version named in the ciphertext, so values written
//     before a rotation keep decrypting.
//   - Status answers "ok" only after an encrypt and decrypt probe that
//     succeeded within ProbeTTL; otherwise its healthz text says what failed
//     (unreachable, credentials refused, key not enabled ...) and its key_id
//     is empty, so that kube-apiserver does not extend the life of its
//     current DEK while the KMS cannot be used.
//
// Every call is bounded by Timeout (and by the caller's deadline); errors
// are gRPC status errors with a code that tells the kind of failure. The
// plugin logs no plaintext, DEK, ciphertext, secret or token.
package kubekms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/nkms/nkms/internal/crypto"
)

// APIVersion is the KMS API version Status reports.
const APIVersion = "v2"

// Healthy is the healthz text of a plugin whose last probe succeeded.
const Healthy = "ok"

// Defaults of Config.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultProbeTTL = 5 * time.Second
	// failedProbeTTL is how long a failed probe is reused: short, so that
	// the plugin notices a recovery soon, but a flood of Status calls
	// still sends at most one probe a second to the KMS.
	failedProbeTTL = time.Second
)

// KMS is what the plugin needs of a KMS client; *client.Client has it.
type KMS interface {
	Encrypt(ctx context.Context, tag string, plaintext, encContext []byte) (string, error)
	Decrypt(ctx context.Context, tag, ciphertext string, encContext []byte) ([]byte, error)
}

// Config is what New needs.
type Config struct {
	KMS    KMS    // a client with the plugin's credentials
	KeyTag string // the key that wraps the DEKs
	// Timeout bounds each Encrypt and Decrypt, and a Status probe (its
	// encrypt and decrypt together), retries included; a shorter deadline
	// of the caller wins. Default DefaultTimeout.
	Timeout time.Duration
	// ProbeTTL is how long a successful probe makes Status answer "ok"
	// without probing again. Default DefaultProbeTTL.
	ProbeTTL time.Duration
	Logger   *slog.Logger     // default: discard
	Now      func() time.Time // default time.Now
}

// Plugin is the KMS v2 service. It is safe for concurrent use.
type Plugin struct {
	kms      KMS
	tag      string
	timeout  time.Duration
	probeTTL time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu     sync.Mutex // serializes probes; guards last
	last   probeResult
	probed bool // last holds a probe
}

var _ kmsservice.Service = (*Plugin)(nil)

// probeResult is the outcome of one Status probe.
type probeResult struct {
	at      time.Time
	healthz string // Healthy or why not
	version int    // key version of the probe's ciphertext (0 when it failed)
}

// New returns a plugin of cfg.
func New(cfg Config) (*Plugin, error) {
	if cfg.KMS == nil {
		return nil, errors.New("kubekms: no KMS client")
	}
	if _, _, err := ParseKeyID(FormatKeyID(cfg.KeyTag, 1)); err != nil {
		return nil, errors.New("kubekms: the key tag must be non-empty, without ':' or white space")
	}
	if cfg.Timeout < 0 || cfg.ProbeTTL < 0 {
		return nil, errors.New("kubekms: negative timeout or probe TTL")
	}
	p := &Plugin{kms: cfg.KMS, tag: cfg.KeyTag, timeout: cfg.Timeout, probeTTL: cfg.ProbeTTL, log: cfg.Logger, now: cfg.Now}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.probeTTL == 0 {
		p.probeTTL = DefaultProbeTTL
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Encrypt wraps data (a DEK or DEK seed of kube-apiserver) with the key's
// current version.
func (p *Plugin) Encrypt(ctx context.Context, uid string, data []byte) (*kmsservice.EncryptResponse, error) {
	if len(data) == 0 {
		return nil, status.Error(codes.InvalidArgument, "encrypt: empty plaintext")
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ct, err := p.kms.Encrypt(ctx, p.tag, data, nil)
	if err != nil {
		return nil, p.fail(ctx, "encrypt", uid, err)
	}
	version, _, err := crypto.ParseCiphertext(ct)
	if err != nil {
		return nil, p.fail(ctx, "encrypt", uid, status.Error(codes.Internal, "the KMS answered a ciphertext that is not \"ncpkms:v<N>:<Base64>\""))
	}
	p.noteVersion(version)
	return &kmsservice.EncryptResponse{Ciphertext: []byte(ct), KeyID: FormatKeyID(p.tag, version)}, nil
}

// Decrypt unwraps a ciphertext that Encrypt returned, whatever key version
// made it, as long as the key and that version are enabled.
func (p *Plugin) Decrypt(ctx context.Context, uid string, req *kmsservice.DecryptRequest) ([]byte, error) {
	tag, version, err := ParseKeyID(req.KeyID)
	if err != nil {
		return nil, p.fail(ctx, "decrypt", uid, status.Error(codes.InvalidArgument, "decrypt: "+err.Error()))
	}
	if !strings.EqualFold(tag, p.tag) {
		// Not echoed in full: a key_id comes from storage.
		return nil, p.fail(ctx, "decrypt", uid, status.Errorf(codes.FailedPrecondition,
			"decrypt: the value was wrapped by key %s, and this plugin serves key %s (run a plugin for each key, a provider each in the EncryptionConfiguration)",
			clip(tag, 80), p.tag))
	}
	ct := string(req.Ciphertext)
	ctVersion, _, err := crypto.ParseCiphertext(ct)
	if err != nil {
		return nil, p.fail(ctx, "decrypt", uid, status.Error(codes.InvalidArgument, "decrypt: the ciphertext is not \"ncpkms:v<N>:<Base64>\""))
	}
	if ctVersion != version {
		return nil, p.fail(ctx, "decrypt", uid, status.Errorf(codes.InvalidArgument,
			"decrypt: the ciphertext is of key version %d but key_id names version %d", ctVersion, version))
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	pt, err := p.kms.Decrypt(ctx, p.tag, ct, nil)
	if err != nil {
		return nil, p.fail(ctx, "decrypt", uid, err)
	}
	return pt, nil
}

// Status reports the plugin's health and the key_id Encrypt would give now,
// from the last probe when it is recent enough, otherwise from a new one.
func (p *Plugin) Status(ctx context.Context) (*kmsservice.StatusResponse, error) {
	r := p.probe(ctx)
	resp := &kmsservice.StatusResponse{Version: APIVersion, Healthz: r.healthz}
	if r.healthz == Healthy {
		resp.KeyID = FormatKeyID(p.tag, r.version)
	}
	return resp, nil
}

// probe returns the last probe while it is fresh, or runs a new one: encrypt
// 32 random bytes, decrypt them, compare.
func (p *Plugin) probe(ctx context.Context) probeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.probed {
		ttl := p.probeTTL
		if p.last.healthz != Healthy {
			ttl = min(ttl, failedProbeTTL)
		}
		if age := now.Sub(p.last.at); age >= 0 && age < ttl {
			return p.last
		}
	}
	r := probeResult{at: now}
	r.healthz, r.version = p.runProbe(ctx)
	if r.healthz != Healthy && ctx.Err() != nil {
		// The caller went away or its deadline was shorter than the
		// probe: that says nothing of the KMS, so it is not kept.
		return r
	}
	if !p.probed || r.healthz != p.last.healthz || r.version != p.last.version {
		if r.healthz == Healthy {
			p.log.Info("kms plugin healthy", "key_id", FormatKeyID(p.tag, r.version))
		} else {
			p.log.Warn("kms plugin unhealthy", "healthz", r.healthz)
		}
	}
	p.last, p.probed = r, true
	return r
}

// runProbe sends one encrypt and one decrypt (within one Timeout) and
// returns Healthy and the key version of the probe's ciphertext, or why it
// failed.
func (p *Plugin) runProbe(ctx context.Context) (healthz string, version int) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	want := make([]byte, 32)
	rand.Read(want)
	ct, err := p.kms.Encrypt(ctx, p.tag, want, nil)
	if err != nil {
		return "probe encrypt failed: " + p.reason(ctx, err), 0
	}
	version, _, err = crypto.ParseCiphertext(ct)
	if err != nil {
		return "probe encrypt failed: the KMS answered a ciphertext that is not \"ncpkms:v<N>:<Base64>\"", 0
	}
	got, err := p.kms.Decrypt(ctx, p.tag, ct, nil)
	if err != nil {
		return "probe decrypt failed: " + p.reason(ctx, err), 0
	}
	if !bytes.Equal(got, want) {
		return "probe decrypt failed: the KMS gave back other bytes than were encrypted", 0
	}
	return Healthy, version
}

// noteVersion drops a cached probe that knows an older key version than an
// Encrypt just used: the next Status probes again and reports the new
// key_id, so that kube-apiserver's check that Status and Encrypt agree on
// the key_id passes right after a rotation.
func (p *Plugin) noteVersion(version int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probed && p.last.healthz == Healthy && version > p.last.version {
		p.probed = false
	}
}

// fail logs a failed call (never its data) and returns it as a gRPC status error.
func (p *Plugin) fail(ctx context.Context, op, uid string, err error) error {
	if _, ok := status.FromError(err); !ok {
		code, reason := classify(ctx, err, p.timeout)
		err = status.Error(code, op+": "+reason)
	}
	st, _ := status.FromError(err)
	p.log.Warn("kms plugin call failed", "op", op, "uid", clip(uid, 64), "code", st.Code().String(), "error", st.Message())
	return err
}

// reason is the healthz text of a failed probe call.
func (p *Plugin) reason(ctx context.Context, err error) string {
	_, reason := classify(ctx, err, p.timeout)
	return reason
}

// clip shortens s for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// String describes the plugin (its key, not its credentials).
func (p *Plugin) String() string { return fmt.Sprintf("kubekms plugin of key %s", p.tag) }
