package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/nkms/nkms"
)

// gatewayError is a failure before a request reaches a key (decisions.md D3,
// first body): authentication, routing, body size.
type gatewayError struct {
	status    int
	errorCode string
	message   string
	details   string
}

func (e *gatewayError) Error() string { return e.message + ": " + e.details }

// The gateway errors of D3.
func errAuth(details string) error {
	return &gatewayError{http.StatusUnauthorized, "200", "Authentication Failed", details}
}

func errRateLimited(details string) error {
	return &gatewayError{http.StatusTooManyRequests, "420", "Rate Limited", details}
}

func errPermission(details string) error {
	return &gatewayError{http.StatusUnauthorized, "210", "Permission Denied", details}
}

// errBusy answers a request refused because the server is saturated with
// expensive operations (nkms.ErrBusy): 503 with Retry-After. D3 has no row
// for it yet; nkms chose errorCode "503", message "Service Unavailable".
func errBusy(details string) error {
	return &gatewayError{http.StatusServiceUnavailable, "503", "Service Unavailable", details}
}

// busyRetryAfter is the Retry-After of a 503 for a saturated server: the
// queue deadline is ~100 ms, so one second is a long enough back-off.
const busyRetryAfter = "1"

var (
	errNoRoute  = &gatewayError{http.StatusNotFound, "300", "Not Found Exception", "no such route"}
	errMethod   = &gatewayError{http.StatusMethodNotAllowed, "100", "Bad Request Exception", "method not allowed on this path"}
	errTooLarge = &gatewayError{http.StatusRequestEntityTooLarge, "430", "Request Entity Too Large", "request body over the limit of this route"}
)

type gatewayBody struct {
	Error struct {
		ErrorCode string `json:"errorCode"`
		Message   string `json:"message"`
		Details   string `json:"details,omitempty"`
	} `json:"error"`
}

// kmsBody is the KMS-style body, for successes and key errors alike.
type kmsBody struct {
	Code string  `json:"code"`
	Msg  *string `json:"msg,omitempty"`
	Data any     `json:"data"`
}

// kmsCodes is the one table from domain code to HTTP status and KMS code
// (D3). Unauthenticated and PermissionDenied answer with the gateway body
// (errAuth, errPermission); every other code with the KMS body.
var kmsCodes = map[nkms.Code]struct {
	status int
	code   string
}{
	nkms.Invalid:      {http.StatusBadRequest, "INVALID_REQUEST"},
	nkms.Forbidden:    {http.StatusForbidden, "FORBIDDEN"},
	nkms.NotFound:     {http.StatusNotFound, "NOT_FOUND"},
	nkms.Conflict:     {http.StatusConflict, "CONFLICT"},
	nkms.InvalidState: {http.StatusUnprocessableEntity, "UNPROCESSABLE_ENTITY"},
	nkms.Internal:     {http.StatusInternalServerError, "INTERNAL_SERVER_ERROR"},
}

// gateway returns the gateway error err stands for, if it is one: a
// gatewayError of this package, or a domain error of a gateway code
// (Unauthenticated, PermissionDenied, Unavailable).
func gateway(err error) (*gatewayError, bool) {
	var gw *gatewayError
	if errors.As(err, &gw) {
		return gw, true
	}
	switch nkms.ErrorCode(err) {
	case nkms.Unauthenticated:
		return errAuth(nkms.ErrorMessage(err)).(*gatewayError), true
	case nkms.PermissionDenied:
		return errPermission(nkms.ErrorMessage(err)).(*gatewayError), true
	case nkms.Unavailable:
		return errBusy(nkms.ErrorMessage(err)).(*gatewayError), true
	}
	return nil, false
}

// failureCode is the code the answer to err carries: "" for nil, the
// gateway errorCode (e.g. "210") or the KMS code (e.g. "UNPROCESSABLE_ENTITY").
// The audit log and the metrics name answers by it; usage logs keep the
// domain code, and show it as this (activityMessage).
func failureCode(err error) string {
	if err == nil {
		return ""
	}
	if gw, ok := gateway(err); ok {
		return gw.errorCode
	}
	if m, ok := kmsCodes[nkms.ErrorCode(err)]; ok {
		return m.code
	}
	return kmsCodes[nkms.Internal].code
}

// writeError writes err as one of the two D3 bodies and returns the code
// the answer carries. Internal errors are logged once with the request id;
// the caller sees only "Server internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) string {
	return writeErrorTo(w, r, s.log, err)
}

func writeErrorTo(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) string {
	if gw, ok := gateway(err); ok {
		var b gatewayBody
		b.Error.ErrorCode, b.Error.Message, b.Error.Details = gw.errorCode, gw.message, gw.details
		if gw.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", busyRetryAfter)
		}
		writeJSON(w, gw.status, b)
		return gw.errorCode
	}
	code := nkms.ErrorCode(err)
	m, ok := kmsCodes[code]
	if !ok {
		code, m = nkms.Internal, kmsCodes[nkms.Internal]
	}
	msg := nkms.ErrorMessage(err)
	switch {
	case isTimeout(err) || code == nkms.Internal:
		logInternal(log, r, err)
		m, msg = kmsCodes[nkms.Internal], "Server internal error"
	case code == nkms.InvalidState:
		msg = "Invalid status"
	}
	writeJSON(w, m.status, kmsBody{Code: m.code, Msg: &msg, Data: nil})
	return m.code
}

// logInternal logs, once, an error that answers 500 on either wire: the
// end of the request's time (a warning) or anything unexpected. The caller
// sees only a generic message.
func logInternal(log *slog.Logger, r *http.Request, err error) {
	if isTimeout(err) {
		log.Warn("request stopped: past its time limit, or the client went away", "requestId", requestID(r.Context()),
			"method", clip(r.Method), "path", clip(r.URL.Path), "err", err)
		return
	}
	log.Error("internal error", "requestId", requestID(r.Context()), "method", clip(r.Method), "path", clip(r.URL.Path), "err", err)
}

// writeJSON writes v in JSON, and a newline, as the body of an answer with
// status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeWrapped(w, status, "", v)
}

// writeSuccess writes the KMS body of a success, {"code":"SUCCESS","data":
// data} (with msg, the 1.0 routes' "msg":"" between them), as writeJSON
// would write the kmsBody, without going through it.
func writeSuccess(w http.ResponseWriter, data any, msg bool) {
	head := `{"code":"SUCCESS","data":`
	if msg {
		head = `{"code":"SUCCESS","msg":"","data":`
	}
	writeWrapped(w, http.StatusOK, head, data)
}

// jsonContentType is the Content-Type header value of JSON answers, shared by
// all of them: nothing changes a header value in place (Header.Add appends
// to a full slice, so it copies).
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeWrapped writes head, v in JSON and, after a non-empty head, the "}"
// that closes it, then a newline. The body is made in a pooled buffer,
// cleared after use as request bodies are: answers hold plaintext too.
func writeWrapped(w http.ResponseWriter, status int, head string, v any) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	buf.WriteString(head)
	if !writeFlat(buf, v) {
		if err := json.NewEncoder(buf).Encode(v); err != nil { // only our own wire types get here; they always marshal
			buf.Reset()
			buf.WriteString(`{"code":"INTERNAL_SERVER_ERROR","msg":"Server internal error","data":null}`)
			head, status = "", http.StatusInternalServerError
		} else {
			buf.Truncate(buf.Len() - 1) // Encode ends v with a newline
		}
	}
	if head != "" {
		buf.WriteByte('}')
	}
	buf.WriteByte('\n')
	w.Header()["Content-Type"] = jsonContentType // as Header.Set, without a slice per answer
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
