package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/nkms/nkms"
)

// The API 3.0 wire (ncp-kms-api-v3.md, decisions.md D9): bare resource
// bodies, NCP-standard errors, strict input. Its routes share the request
// edge (serve) and the Service with 2.0; only the encoding differs.

// routesV3 is the 3.0 route table: keys and versions (v3_keys.go), crypto
// (v3_crypto.go), ACLs, token generators, tokens and activities
// (v3_access.go).
func (s *Server) routesV3() []route {
	var rs []route
	rs = append(rs, s.v3KeyRoutes()...)
	rs = append(rs, s.v3CryptoRoutes()...)
	return append(rs, s.v3AccessRoutes()...)
}

// v3Codes is the one table from domain code to the 3.0 HTTP status and
// errorCode (D9). Authentication failures keep the gateway body of 2.0 (the
// gateway stands in front of both APIs).
var v3Codes = map[nkms.Code]struct {
	status int
	code   string
}{
	nkms.Invalid:          {http.StatusBadRequest, "InvalidParameter"},
	nkms.InvalidState:     {http.StatusBadRequest, "InvalidState"},
	nkms.Forbidden:        {http.StatusForbidden, "AccessDenied"},
	nkms.PermissionDenied: {http.StatusForbidden, "AccessDenied"},
	nkms.NotFound:         {http.StatusNotFound, "ResourceNotFound"},
	nkms.Conflict:         {http.StatusConflict, "AlreadyExists"},
	nkms.Unavailable:      {http.StatusServiceUnavailable, "ServiceUnavailable"},
	nkms.Internal:         {http.StatusInternalServerError, "InternalServerError"},
}

// v3Messages are the NCP-standard messages of the 3.0 error codes; the
// domain's own text goes to "detail".
var v3Messages = map[string]string{
	"InvalidParameter":     "The specified parameter is invalid.",
	"InvalidState":         "The request cannot be processed in the current state.",
	"AccessDenied":         "You do not have permission to perform this operation.",
	"ResourceNotFound":     "One or more of the resources in the request do not exist in the system.",
	"AlreadyExists":        "The resource already exists.",
	"PayloadTooLarge":      "The request body is too large.",
	"UnsupportedMediaType": "The request body must be JSON.",
	"TooManyRequests":      "Too many requests.",
	"ServiceUnavailable":   "The service is temporarily unavailable. Retry later.",
	"InternalServerError":  "An internal error occurred.",
}

// v3Error is the NCP-standard error object.
type v3Error struct {
	ErrorCode   string         `json:"errorCode"`
	Message     string         `json:"message"`
	Detail      string         `json:"detail,omitempty"`
	FieldErrors []v3FieldError `json:"fieldErrors,omitempty"`
}

type v3FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type v3ErrorBody struct {
	Error v3Error `json:"error"`
}

// errUnsupportedMedia answers a 3.0 body that is not JSON.
var errUnsupportedMedia = errors.New("unsupported media type")

// v3ErrorOf returns the status and error object that answer err on a 3.0
// route, or ok false for the gateway errors that keep their 2.0 body
// (authentication, unknown routes and methods).
func v3ErrorOf(err error) (status int, e v3Error, ok bool) {
	if gw, isGW := gateway(err); isGW {
		switch gw.errorCode {
		case "210": // refused by role
			status, e = http.StatusForbidden, v3Error{ErrorCode: "AccessDenied", Detail: gw.details}
		case "420":
			status, e = http.StatusTooManyRequests, v3Error{ErrorCode: "TooManyRequests", Detail: gw.details}
		case "430":
			status, e = http.StatusRequestEntityTooLarge, v3Error{ErrorCode: "PayloadTooLarge"}
		case "503": // saturated (nkms.ErrBusy)
			status, e = http.StatusServiceUnavailable, v3Error{ErrorCode: "ServiceUnavailable", Detail: gw.details}
		default:
			return 0, v3Error{}, false
		}
		e.Message = v3Messages[e.ErrorCode]
		return status, e, true
	}
	if errors.Is(err, errUnsupportedMedia) {
		return http.StatusUnsupportedMediaType, v3Error{ErrorCode: "UnsupportedMediaType", Message: v3Messages["UnsupportedMediaType"]}, true
	}
	code := nkms.ErrorCode(err)
	m, known := v3Codes[code]
	if !known || isTimeout(err) {
		code, m = nkms.Internal, v3Codes[nkms.Internal]
	}
	e = v3Error{ErrorCode: m.code, Message: v3Messages[m.code]}
	if code != nkms.Internal {
		e.Detail = nkms.ErrorMessage(err)
		if f := nkms.ErrorField(err); f != "" {
			e.FieldErrors = []v3FieldError{{Field: f, Message: e.Detail}}
		}
	}
	return m.status, e, true
}

// writeErrorV3 writes err as the 3.0 error body and returns its errorCode
// (for the audit line and metrics). Internal errors are logged once.
func (s *Server) writeErrorV3(w http.ResponseWriter, r *http.Request, err error) string {
	if errors.Is(err, errRequestLineTooLong) {
		w.WriteHeader(http.StatusRequestURITooLong) // no body, as the gateway answers (D9)
		return "RequestURITooLong"
	}
	if be := (*nkms.BatchError)(nil); errors.As(err, &be) {
		return s.writeBatchFailures(w, r, be) // v3_batch.go
	}
	status, e, ok := v3ErrorOf(err)
	if !ok {
		return s.writeError(w, r, err) // the gateway's own body
	}
	if e.ErrorCode == "InternalServerError" {
		logInternal(s.log, r, err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", busyRetryAfter)
	}
	writeJSON(w, status, v3ErrorBody{Error: e})
	return e.ErrorCode
}

// answerV3 writes a 3.0 success: the bare resource with 200 or 201, or 204
// with no body.
func answerV3(w http.ResponseWriter, kind routeKind, data any) {
	switch kind {
	case v3NoContent:
		w.WriteHeader(http.StatusNoContent)
	case v3Created:
		writeJSON(w, http.StatusCreated, data)
	default:
		writeJSON(w, http.StatusOK, data)
	}
}

// decodeV3 reads a 3.0 JSON body into v: a body whose Content-Type is not
// JSON (or, with patch, merge-patch JSON) is 415; an empty body is an empty
// object; malformed JSON or a value of the wrong type is InvalidParameter
// naming the field. Integers must be JSON integers (strictInt).
func decodeV3(rq *request, v any, patch bool) error {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(rq.Body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errTooLarge
		}
		return nkms.Errorf(nkms.Invalid, "cannot read request body")
	}
	b := trimJSONSpace(buf.Bytes())
	if len(b) == 0 {
		return nil
	}
	if !jsonMedia(rq.Header.Get("Content-Type"), patch) {
		return errUnsupportedMedia
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nkms.FieldErrorf(te.Field, "%s has the wrong type", te.Field)
		}
		var fe *fieldError
		if errors.As(err, &fe) {
			return nkms.FieldErrorf(fe.field, "%s", fe.msg)
		}
		return nkms.Errorf(nkms.Invalid, "request body is not valid JSON: %s", jsonProblem(err))
	}
	return nil
}

// jsonMedia reports whether a Content-Type is JSON: application/json, or
// with patch also application/merge-patch+json. A missing Content-Type on a
// body is taken as JSON, as NAVER's curl examples send it.
func jsonMedia(ct string, patch bool) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (patch && mt == "application/merge-patch+json")
}

// fieldError is a decoding refusal of one field, raised from UnmarshalJSON.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// strictInt is an integer that must be written as a JSON integer: 30, not
// 30.0, "30" or 3e1 (ncp-kms-api-v3.md §2.6).
type strictInt struct {
	Set   bool
	Value int
}

func (n *strictInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return &fieldError{"", "must be an integer"}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return &fieldError{"", "must be a decimal integer (int32), written as a JSON integer"}
	}
	n.Set, n.Value = true, int(v)
	return nil
}

// base64V3 decodes a Base64 field of a 3.0 body: the pattern of the 3.0
// pages (isBase64V3), then standard decoding.
func base64V3(field, s string) ([]byte, error) {
	if !isBase64V3(s) {
		return nil, nkms.FieldErrorf(field, "%s must be standard Base64", field)
	}
	return nkms.DecodeBase64(field, s)
}

// dateTime is a 3.0 time: RFC 3339 UTC with milliseconds, or null.
func dateTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000Z")
	return &s
}

// stateV3 is the 3.0 name of a key, version or generator state (D9).
func stateV3(s nkms.State) string {
	switch s {
	case nkms.StateEnable:
		return "ENABLED"
	case nkms.StateDisable:
		return "DISABLED"
	case nkms.StateRevoke:
		return "REVOKED"
	}
	return string(s)
}

// pageV3 parses 3.0 paging: pageNo from 0 (default 0), pageSize 1-200
// (default 20), decimal only, pageNo × pageSize within int32. It returns the
// 1-based page number the Service takes.
func pageV3(rq *request) (pageNo, pageSize int, err error) {
	q := rq.URL.Query()
	no, err := queryDecimal(q.Get("pageNo"), "pageNo", 0)
	if err != nil {
		return 0, 0, err
	}
	size, err := queryDecimal(q.Get("pageSize"), "pageSize", 20)
	if err != nil {
		return 0, 0, err
	}
	if size < 1 || size > 200 {
		return 0, 0, nkms.FieldErrorf("pageSize", "pageSize must be 1-200")
	}
	if int64(no)*int64(size) > 1<<31-1 {
		return 0, 0, nkms.FieldErrorf("pageNo", "pageNo × pageSize must be at most 2147483647")
	}
	return no + 1, size, nil
}

// queryDecimal parses an optional decimal query value (int32, no sign, no
// other notation).
func queryDecimal(v, name string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, nkms.FieldErrorf(name, "%s must be a decimal integer", name)
		}
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, nkms.FieldErrorf(name, "%s must be a decimal integer (int32)", name)
	}
	return int(n), nil
}
