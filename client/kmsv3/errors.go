package kmsv3

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nkms/nkms/client/internal/httpx"
)

// Error codes of API 3.0 (decisions.md D9, and those read in NAVER's pages).
const (
	CodeInvalidParameter     = "InvalidParameter"
	CodeInvalidState         = "InvalidState"
	CodeAccessDenied         = "AccessDenied"
	CodeForbidden            = "Forbidden"
	CodeResourceNotFound     = "ResourceNotFound"
	CodeAlreadyExists        = "AlreadyExists"
	CodePayloadTooLarge      = "PayloadTooLarge"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeTooManyRequests      = "TooManyRequests"
	CodeInternalServerError  = "InternalServerError"
)

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a failure answered by the server: the NCP-standard error body
// {"error":{"errorCode","message","detail","fieldErrors"}}. For an answer
// without such a body (for example a 414 from the gateway, which has none)
// only Status, RequestID and a short Message (the HTTP status text) are
// set. The text comes from the server and never includes the client's
// secret; a token client's token is replaced by "[token]" should the
// server echo it.
type Error struct {
	Status      int    // HTTP status
	ErrorCode   string // e.g. "InvalidParameter"; "200" for a gateway authentication failure
	Message     string
	Detail      string // optional
	FieldErrors []FieldError
	RequestID   string // x-ncp-request-id of the answer, when the server sent one
}

// Error formats e as "HTTP <status>: <errorCode>: <message> (<detail>) [field: message; …]".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.ErrorCode != "" {
		fmt.Fprintf(&b, ": %s", e.ErrorCode)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (%s)", e.Detail)
	}
	if len(e.FieldErrors) > 0 {
		b.WriteString(" [")
		for i, f := range e.FieldErrors {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", f.Field, f.Message)
		}
		b.WriteString("]")
	}
	return b.String()
}

// BatchError is the failure of a batch call (BatchEncrypt, BatchDecrypt,
// BatchReEncrypt) reported item by item: the batch is all or nothing, so
// no item was processed, and Failures holds the items that failed, keyed by
// their 0-based index in the request. Items not in Failures did not fail
// but were not processed either.
type BatchError struct {
	Status    int // HTTP status: the failing cause's, or 400 for several causes
	Failures  map[int]*Error
	RequestID string
}

// Error formats b as "HTTP <status>: batch failed: item <i>: <errorCode>: <message>; …", by index.
func (b *BatchError) Error() string {
	var s strings.Builder
	fmt.Fprintf(&s, "HTTP %d: batch failed", b.Status)
	for i, idx := range b.Indexes() {
		if i == 0 {
			s.WriteString(": ")
		} else {
			s.WriteString("; ")
		}
		f := b.Failures[idx]
		fmt.Fprintf(&s, "item %d: %s", idx, f.ErrorCode)
		if f.Message != "" {
			fmt.Fprintf(&s, ": %s", f.Message)
		}
		if i == 9 && len(b.Failures) > 10 {
			fmt.Fprintf(&s, "; and %d more", len(b.Failures)-10)
			break
		}
	}
	return s.String()
}

// Indexes returns the indexes of the failed items, in increasing order.
func (b *BatchError) Indexes() []int {
	out := make([]int, 0, len(b.Failures))
	for i := range b.Failures {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// wireError is the Error object of the wire. detail is NCP's name; details
// is the one of the gateway body of 2.0 (decisions.md D3), which a gateway
// in front of both APIs may send.
type wireError struct {
	ErrorCode   string       `json:"errorCode"`
	Message     string       `json:"message"`
	Detail      string       `json:"detail"`
	Details     string       `json:"details"`
	FieldErrors []FieldError `json:"fieldErrors"`
}

func (w *wireError) toError(status int, reqID, token string) *Error {
	e := &Error{Status: status, ErrorCode: httpx.Clean(w.ErrorCode, token), Message: httpx.Clean(w.Message, token),
		Detail: httpx.Clean(w.Detail, token), RequestID: httpx.Clean(reqID, token)}
	if e.Detail == "" {
		e.Detail = httpx.Clean(w.Details, token)
	}
	for i, f := range w.FieldErrors {
		if i == 100 {
			break
		}
		e.FieldErrors = append(e.FieldErrors, FieldError{Field: httpx.Clean(f.Field, token), Message: httpx.Clean(f.Message, token)})
	}
	return e
}

// parseError reads an error answer: {"error": …}, or on a batch route
// {"failures": {"<index>": …}} (a *BatchError). Anything else becomes an
// *Error with the status text only.
func (c *Client) parseError(status int, body []byte, reqID string, batch bool) error {
	var v struct {
		Error    *wireError                 `json:"error"`
		Failures map[string]json.RawMessage `json:"failures"`
	}
	if json.Unmarshal(body, &v) == nil {
		if g := v.Error; g != nil && (g.ErrorCode != "" || g.Message != "") {
			return g.toError(status, reqID, c.token)
		}
		if batch && len(v.Failures) > 0 {
			if be := c.batchError(status, v.Failures, reqID); be != nil {
				return be
			}
		}
	}
	return &Error{Status: status, Message: httpx.StatusMessage(status), RequestID: httpx.Clean(reqID, c.token)}
}

// batchError reads the failures map; nil when a key is not a decimal index
// of the index pattern ^(0|[1-9][0-9]*)$ or a value is not an Error object.
func (c *Client) batchError(status int, failures map[string]json.RawMessage, reqID string) *BatchError {
	be := &BatchError{Status: status, Failures: make(map[int]*Error, len(failures)), RequestID: httpx.Clean(reqID, c.token)}
	for k, raw := range failures {
		i, ok := index(k)
		if !ok {
			return nil
		}
		var w wireError
		if json.Unmarshal(raw, &w) != nil {
			return nil
		}
		be.Failures[i] = w.toError(status, "", c.token)
	}
	return be
}

// index reads a batch index key: "0" or a decimal without leading zeros,
// below 1,000,000.
func index(k string) (int, bool) {
	if k == "" || len(k) > 6 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(k)
	return n, err == nil
}
