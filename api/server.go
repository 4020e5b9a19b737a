// Package api is the HTTP adapter of nkms: the route table, wire types,
// handlers, authentication and the one error-to-HTTP mapping.
package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nkms/nkms"
)

// Config is what the HTTP adapter needs besides the Service.
type Config struct {
	// PublicURL is reported as baseUrl in key info.
	PublicURL string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed when
	// deciding a token call's client address for the key's IP ACL.
	TrustedProxies []netip.Prefix
	// Log receives one line per request and every internal error. Never
	// bodies, secrets or key material.
	Log *slog.Logger
	// RateLimitPerKey and RateLimitPerCaller are requests a second allowed
	// per keyTag and per access key (token bucket, bursts of one second's
	// worth); 0 is no limit. Excess requests get 429 and are not executed.
	RateLimitPerKey, RateLimitPerCaller float64
	// AuthFailuresPerSecond limits failed authentications (401) per client
	// address (as TrustedProxies decide; IPv6 per /64), in a token bucket of
	// AuthFailureBurst (<= 0: ten seconds' worth). An address over it gets
	// 429 on every authenticated route, before any signature or store work,
	// until the bucket refills; successful requests spend nothing. 0 is no
	// limit; nkms server uses DefaultAuthFailuresPerSecond (authlimit.go).
	AuthFailuresPerSecond float64
	AuthFailureBurst      int
	// RejectReplayedSignatures refuses a signature seen before within its
	// 5-minute window (401); off by default, see docs/api.md ("Replayed signatures").
	RejectReplayedSignatures bool
	// Audit, when set, takes one line per request, written before the
	// answer is sent (package audit). With AuditFailClosed, requests answer
	// 500 and do nothing while Audit is not ready, and a request whose line
	// cannot be written answers 500 instead of its result.
	Audit           Auditor
	AuditFailClosed bool
	// Ready, when set, decides GET /healthz: an error answers 503 with the
	// error's text (e.g. the etcd cluster cannot be reached). It should be
	// quick; it is called on every health check.
	Ready func(ctx context.Context) error
	// Metrics, when set, receives every request's route, answer code and
	// latency, the rate limiters' refusals and the audit log's failures.
	// One Metrics serves one Server.
	Metrics *Metrics
	// RequestTimeout is the time limit of one request (0: none): a request
	// whose handler finishes later answers 500 and is audited as failed,
	// not served (what it did stands, as it would if the write timeout cut
	// its answer off; its usage-log entry says what the Service did). Set it a little below the http.Server's WriteTimeout, so
	// that a request the write timeout cuts off is recorded as failed. (Work
	// per request is bounded by its size: see nkms.MaxItems; the crypto
	// loops also stop when the client goes away.) A streamed answer (backup)
	// moves its own write deadline and is not bound by it.
	RequestTimeout time.Duration
	// Now is the wall clock of the HTTP layer: the signature's 5-minute
	// window (and the replay cache's), the rate limits, the auth-failure
	// limit and the audit line's time. nil: the wall clock of the Service's
	// DevClock when it has one (clients sign with their own wall clock,
	// which does not move when the dev clock does), else the Service's
	// clock, so that a test that fixes Service.Now signs with the same clock.
	Now func() time.Time
}

// Server serves the NAVER Cloud KMS API over a Service.
type Server struct {
	svc *nkms.Service
	cfg Config
	log *slog.Logger
	mux *http.ServeMux

	perKey, perCaller *limiter     // nil: no limit
	replays           *replayCache // nil: signatures may be used again
	authFailures      *authFailureLimit
	auditLim          auditLimiter
	fast              map[fastKey]fastRoute // the routes found without the mux (fastroute.go)
	now               func() time.Time      // Config.Now, or the Service's clock
}

// New returns the HTTP handler of the whole API.
func New(svc *nkms.Service, cfg Config) *Server {
	s := &Server{svc: svc, cfg: cfg, log: cfg.Log, mux: http.NewServeMux(),
		perKey: newLimiter(cfg.RateLimitPerKey), perCaller: newLimiter(cfg.RateLimitPerCaller),
		authFailures: newAuthFailureLimit(cfg)}
	if cfg.RejectReplayedSignatures {
		s.replays = &replayCache{}
	}
	s.now = cfg.Now
	switch {
	case s.now != nil:
	case svc != nil && svc.DevClock != nil:
		s.now = svc.DevClock.Wall // a moved clock never moves the signature window
	default:
		s.now = func() time.Time { return s.svc.Now() }
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = slog.New(LogHandler(s.log.Handler()))
	if m := cfg.Metrics; m != nil {
		const help = `Requests refused with 429 by a rate limit: "key" (--rate-limit-per-key) or "caller" (--rate-limit-per-caller).`
		m.CounterFunc("nkms_rate_limited_requests_total", help, map[string]string{"limit": "key"},
			func() float64 { return float64(s.perKey.Refused()) })
		m.CounterFunc("nkms_rate_limited_requests_total", help, map[string]string{"limit": "caller"},
			func() float64 { return float64(s.perCaller.Refused()) })
		if cfg.Audit != nil {
			s.cfg.Audit = countingAuditor{Auditor: cfg.Audit, failures: m.auditFailures}
		}
	}
	rs := s.routes()
	hs := make([]http.Handler, len(rs))
	for i, rt := range rs {
		h := s.serve(rt)
		if rt.handle == nil {
			h = http.HandlerFunc(s.health)
		}
		s.mux.Handle(rt.method+" "+rt.path, h)
		hs[i] = h
	}
	s.fast = newFastRoutes(rs, hs)
	s.mux.HandleFunc("/", s.unknownRoute)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	start := time.Now()
	st := &served{rec: statusRecorder{ResponseWriter: w}, idHeader: [1]string{id}}
	w.Header()[canonicalRequestID] = st.idHeader[:] // as Header.Set, without a slice of its own
	st.info = reqInfo{id: id, start: start, out: &st.out}
	out, rec := &st.out, &st.rec
	// One read scope per request: on a cluster, its reads share one check that
	// this node has caught up with etcd (nkms.ReadScope).
	st.ctx = reqContext{Context: nkms.WithReadScope(r.Context()), info: &st.info}
	r = r.WithContext(&st.ctx)
	sink, held := s.auditStart(rec) // with an audit log, holds the answer until its line is written
	if s.auditRefuses(sink, r) {
		// Fail-closed, and the audit log cannot take a line: 500, nothing done.
		out.code = failureCode(errAuditUnavailable)
	} else if p := r.URL.Path; !canonicalPath(p) {
		// No route has a non-canonical path; answer 404 rather than let the
		// mux redirect a signed request elsewhere.
		out.code = s.writeError(sink, r, errNoRoute)
	} else if fr, tag, ok := s.fastRoute(r, p); ok {
		// r.Pattern as the mux sets it: the metrics and the audit line read it.
		r.Pattern, st.info.keyTag, st.info.routed = fr.pattern, tag, true
		fr.h.ServeHTTP(sink, r)
	} else {
		s.mux.ServeHTTP(sink, r)
	}
	s.auditFinish(held, r)
	end := time.Now()
	elapsed := end.Sub(start)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.observeRequest(r.Pattern, out.code, rec.status, elapsed) // r.Pattern: set by the mux when it routed r
	}
	h := s.log.Handler()
	if ih, ok := h.(requestIDHandler); ok {
		h = ih.Handler // the line carries its requestId already
	}
	if h.Enabled(r.Context(), slog.LevelInfo) {
		// The record is made here rather than by Logger.LogAttrs, without
		// the caller's program counter: finding it costs a stack walk per
		// request, and the source of this line is always this function.
		line := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		line.AddAttrs(slog.String("requestId", id), // given: LogHandler need not copy the record
			slog.String("method", clip(r.Method)), slog.String("path", clip(r.URL.Path)), slog.Int("status", rec.status),
			slog.Duration("duration", elapsed), slog.String("accessKey", out.caller.AccessKey))
		h.Handle(r.Context(), line) //nolint:errcheck // as Logger.LogAttrs: a log that fails does not fail the request
	}
}

// canonicalPath reports whether p is rooted and path.Clean leaves it as it
// is: no empty, "." or ".." segment, and no trailing slash but the root's.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	if p == "/" {
		return true
	}
	for start := 1; ; {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		switch p[start:end] {
		case "", ".", "..":
			return false
		}
		if end == len(p) {
			return true
		}
		start = end + 1
	}
}

// served is what ServeHTTP keeps of one request, in one allocation: the
// reqInfo its context carries, the outcome the route fills in, the
// recorder of the answer's status, the value of its request-id header and
// its context.
type served struct {
	info     reqInfo
	out      outcome
	rec      statusRecorder
	idHeader [1]string
	ctx      reqContext
}

// reqContext is the context of a request that ServeHTTP serves: its parent's,
// with the request's reqInfo under reqInfoKey, as context.WithValue would
// make it, but in served's allocation.
type reqContext struct {
	context.Context
	info *reqInfo
}

func (c *reqContext) Value(key any) any {
	if key == (reqInfoKey{}) {
		return c.info
	}
	return c.Context.Value(key)
}

// RequestIDHeader is the response header that carries the request id, as
// NAVER Cloud's API gateway names it; every log line of the request carries
// the same id as requestId.
const RequestIDHeader = "x-ncp-request-id"

// canonicalRequestID is RequestIDHeader as http.Header keys it: setting it
// makes no canonical copy.
var canonicalRequestID = http.CanonicalHeaderKey(RequestIDHeader)

// LogHandler wraps h so that every record logged with the context of a
// request this package serves carries the request's id as requestId (unless
// the record already has one). Records logged without such a context pass
// through unchanged. The server wraps its Config.Log with it; wrap the
// Service's logger too so that lines logged during a request carry the id.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok && ri.id != "" && !hasAttr(r, "requestId") {
		r = r.Clone()
		r.AddAttrs(slog.String("requestId", ri.id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// health is GET /healthz: 200 "ok", or 503 while Config.Ready fails.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "unready: "+err.Error())
			return
		}
	}
	io.WriteString(w, "ok")
}

// rateLimit takes a token from the caller's bucket and the key's; it returns
// a 429 error when either is empty.
func (s *Server) rateLimit(w http.ResponseWriter, c nkms.Caller, tag nkms.Tag) error {
	if c.AccessKey == "" || (s.perCaller == nil && s.perKey == nil) { // an unauthenticated route, or no limits
		return nil
	}
	now := s.now()
	if !s.perCaller.allow(c.AccessKey, now) {
		w.Header().Set("Retry-After", "1")
		return errRateLimited("this access key is over its rate limit")
	}
	// The bucket is the caller's keystore's view of the tag: requests naming
	// another keystore's key cannot drain that key's bucket.
	if !tag.IsZero() && !s.perKey.allow(strconv.FormatInt(c.Keystore, 10)+"/"+tag.String(), now) {
		w.Header().Set("Retry-After", "1")
		return errRateLimited("this key is over its rate limit")
	}
	return nil
}

// Throttled returns how many requests the per-key and per-caller rate limits refused.
func (s *Server) Throttled() (perKey, perCaller uint64) {
	return s.perKey.Refused(), s.perCaller.Refused()
}

// unknownRoute answers 405 when the path exists with another method, and 404 otherwise.
func (s *Server) unknownRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); strings.HasPrefix(pattern, m+" ") {
			allow = append(allow, m)
		}
	}
	out := info(r.Context()).out
	if len(allow) == 0 {
		out.code = s.writeError(w, r, errNoRoute)
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	out.code = s.writeError(w, r, errMethod)
}

// decode reads the JSON body of the request into v. An empty body is an empty object.
// Unknown fields are ignored, as a gateway would; anything else malformed is
// INVALID_REQUEST, and a body over the route's limit is 413.
func decode(rq *request, v any) error {
	buf, err := readBody(rq)
	if err != nil {
		return err
	}
	defer putBodyBuffer(buf)
	return decodeBytes(buf.Bytes(), v)
}

// readBody reads the body of the request into a pooled buffer, which the
// caller gives back with putBodyBuffer.
func readBody(rq *request) (*bytes.Buffer, error) {
	r := rq.Request
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	if n := r.ContentLength; n > 0 && n <= maxPresize {
		buf.Grow(int(n) + bytes.MinRead) // one read, and ReadFrom sees the end without growing
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		putBodyBuffer(buf)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errTooLarge
		}
		return nil, nkms.Errorf(nkms.Invalid, "cannot read request body")
	}
	return buf, nil
}

// decodeBytes is decode of the body b.
func decodeBytes(b []byte, v any) error {
	if len(trimJSONSpace(b)) == 0 {
		return nil
	}
	// Both decoders copy what they keep, so the buffer can go back to the pool.
	if f, ok := v.(flatDecoder); ok && f.decodeFlat(b) {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return decodeProblem(b, v)
	}
	return nil
}

// maxPresize bounds the buffer decode allocates up front from a declared
// Content-Length; larger bodies grow as they arrive.
const maxPresize = 1 << 20

// bodyBuffers recycles request-body buffers; putBodyBuffer keeps only
// buffers of ordinary size, so that one huge body does not stay pinned.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 {
		clear(b.Bytes()[:b.Cap()]) // request bodies hold plaintext: do not leave it in the pool
		bodyBuffers.Put(b)
	}
}

// decodeProblem explains why b, which json.Unmarshal refused, is not a
// request body for v: it decodes again with a json.Decoder, which tells a
// malformed value from data after a valid one.
func decodeProblem(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return nkms.Errorf(nkms.Invalid, "request body is not valid JSON for this route: %s", jsonProblem(err))
	}
	if dec.More() {
		return nkms.Errorf(nkms.Invalid, "request body has data after the JSON object")
	}
	return nkms.Errorf(nkms.Invalid, "request body is not valid JSON for this route: malformed")
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return "field " + te.Field + " has the wrong type"
		}
		return "wrong type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error"
	}
	return "malformed"
}

// newRequestID returns 12 random bytes in hex. A request id tells requests
// apart in logs; it guards nothing, so it comes from the runtime's generator
// (ChaCha8, seeded from the OS at start), which costs a fraction of
// crypto/rand's per request.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var h [2 * len(b)]byte
	hex.Encode(h[:], b[:])
	return string(h[:])
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
