package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/audit"
)

// Auditor takes one audit line per request (package audit; *audit.Log is
// one). Write is called before the answer is sent; Ready before the handler
// runs.
type Auditor interface {
	Write(audit.Entry) error
	Ready() error
}

// The audit log, as the server uses it:
//
//   - auditStart gives the route the response writer: with an audit log, one
//     that holds the answer (status, headers, body) until the line is written.
//   - auditRefuses runs before routing: in fail-closed mode, while the log's
//     Ready fails, the request answers 500 and nothing runs.
//   - auditFinish writes the line with the outcome, then sends the held
//     answer; in fail-closed mode, when the line cannot be written, it sends
//     500 instead (the handler's work stands: the residual window of the
//     audit package documentation).
//
// Every request that reaches ServeHTTP leaves one line, whichever layer
// answered it (routing, authentication, rate limit, body limit, handler);
// only a handler that panics (a bug: D3 allows none) leaves none.

// errAuditUnavailable answers requests that cannot be audited in fail-closed mode.
var errAuditUnavailable = nkms.Errorf(nkms.Internal, "audit log unavailable")

// maxAuditField bounds the strings a request puts in an audit line from its
// own URL (the path of an unknown route, the keyTag of a refused request).
const maxAuditField = 256

var discardLog = slog.New(slog.DiscardHandler)

// auditLimiter keeps audit failures to one error line a second.
type auditLimiter struct {
	last       atomic.Int64 // unix nanoseconds of the last line logged
	suppressed atomic.Int64
}

// auditError logs an audit failure, at most once a second.
func (s *Server) auditError(r *http.Request, msg string, err error) {
	now := time.Now().UnixNano()
	last := s.auditLim.last.Load()
	if now-last < int64(time.Second) || !s.auditLim.last.CompareAndSwap(last, now) {
		s.auditLim.suppressed.Add(1)
		return
	}
	s.log.Error(msg, "requestId", requestID(r.Context()), "failClosed", s.cfg.AuditFailClosed,
		"err", err, "suppressedSinceLast", s.auditLim.suppressed.Swap(0))
}

// auditStart returns the writer the request is served to, and the held
// answer (nil without an audit log: then w itself).
func (s *Server) auditStart(w http.ResponseWriter) (http.ResponseWriter, *heldAnswer) {
	if s.cfg.Audit == nil {
		return w, nil
	}
	h := &heldAnswer{srv: s, w: w, buf: heldBuffers.Get().(*bytes.Buffer)}
	h.buf.Reset()
	return h, h
}

// auditRefuses answers 500 and reports true when the request must not run:
// fail-closed, and the audit log cannot take a line. Without fail-closed, a
// log that is not ready is only reported.
func (s *Server) auditRefuses(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Audit == nil {
		return false
	}
	err := s.cfg.Audit.Ready()
	if err == nil {
		return false
	}
	if !s.cfg.AuditFailClosed {
		s.auditError(r, "audit log not ready; serving anyway (fail-open)", err)
		return false
	}
	s.auditError(r, "audit log not ready; refusing requests (fail-closed)", err)
	writeErrorTo(w, r, discardLog, errAuditUnavailable) // logged above, once a second at most
	return true
}

// auditFinish writes the request's line, then sends the held answer, or
// 500 in its place when the line cannot be written in fail-closed mode.
func (s *Server) auditFinish(h *heldAnswer, r *http.Request) {
	if h == nil {
		return
	}
	defer h.release()
	if h.streaming { // the line was written before the stream began
		return
	}
	status := h.status
	if status == 0 {
		status = http.StatusOK
	}
	if err := s.auditLine(r, status); err != nil && s.cfg.AuditFailClosed {
		writeErrorTo(h.w, r, discardLog, errAuditUnavailable)
		return
	}
	h.send(status)
}

// auditLine writes the request's line with the given status. It returns an
// error only when the line could not be written; in fail-open mode that is
// logged and the caller may answer anyway.
func (s *Server) auditLine(r *http.Request, status int) error {
	ri := info(r.Context())
	out := ri.out
	code := out.code
	if code == "" && status < 400 {
		code = "SUCCESS"
	}
	route := r.Pattern // set by the mux on r when it routed the request
	if route == "" || route == "/" {
		route = clip(r.Method) + " " + clip(r.URL.Path)
	}
	ip := ""
	if a := s.clientIP(r); a.IsValid() {
		ip = a.String()
	}
	err := s.cfg.Audit.Write(audit.Entry{
		Time: s.now(), RequestID: ri.id, AccessKey: out.caller.AccessKey, Keystore: out.caller.Keystore, ClientIP: ip,
		Route: route, KeyTag: out.tag.String(), Version: out.version, Status: status, Code: code,
	})
	switch {
	case err == nil:
	case !s.cfg.AuditFailClosed:
		s.auditError(r, "cannot write the audit line; the request was served unaudited", err)
	default:
		s.auditError(r, "cannot write the audit line; the request answers 500 (fail-closed), but what it did stands", err)
	}
	return err
}

// startStream lets a streamed answer (a backup) through a writer that
// holds answers for the audit log: the request's line is written now, with
// status, and what follows goes straight to the client instead of being held
// in memory. In fail-closed mode a line that cannot be written is an error,
// and nothing has been sent. Other writers need nothing: it returns nil.
func startStream(w http.ResponseWriter, r *http.Request, status int) error {
	h, ok := w.(*heldAnswer)
	if !ok {
		return nil
	}
	if err := h.srv.auditLine(r, status); err != nil && h.srv.cfg.AuditFailClosed {
		return errAuditUnavailable
	}
	h.streaming = true
	dst := h.w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	h.header = dst
	h.status = status
	h.w.WriteHeader(status)
	return nil
}

// heldAnswer is a ResponseWriter that keeps the answer until auditFinish
// has written the audit line. Headers set by the route are kept apart too,
// so that a replaced answer does not carry them.
type heldAnswer struct {
	srv       *Server
	w         http.ResponseWriter
	header    http.Header
	status    int
	buf       *bytes.Buffer
	streaming bool // startStream ran: writes go straight to w
}

func (h *heldAnswer) Header() http.Header {
	if h.header == nil {
		h.header = make(http.Header, 2)
	}
	return h.header
}

func (h *heldAnswer) WriteHeader(code int) {
	if h.streaming {
		return // sent by startStream
	}
	if h.status == 0 {
		h.status = code
	}
}

func (h *heldAnswer) Write(b []byte) (int, error) {
	if h.streaming {
		return h.w.Write(b)
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.buf.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (h *heldAnswer) Unwrap() http.ResponseWriter { return h.w }

// send writes the held answer to the client.
func (h *heldAnswer) send(status int) {
	dst := h.w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	h.w.WriteHeader(status)
	h.w.Write(h.buf.Bytes())
}

// heldBuffers recycles the buffers of held answers. Only what an answer
// wrote is dirty; release wipes it.
var heldBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// release returns the buffer, wiped: it may hold a decrypted plaintext.
func (h *heldAnswer) release() {
	if h.buf == nil {
		return
	}
	clear(h.buf.Bytes())
	if h.buf.Cap() <= 64<<10 { // one huge answer does not stay pinned
		heldBuffers.Put(h.buf)
	}
	h.buf = nil
}

// clip bounds a string taken from the request URL.
func clip(s string) string {
	if len(s) > maxAuditField {
		return s[:maxAuditField]
	}
	return s
}
