package nkms

import (
	"errors"
	"fmt"
)

// Code classifies an error for callers; the api package maps each code to one
// HTTP status and body (decisions.md D3).
type Code string

// The error codes of the domain.
const (
	Invalid          Code = "invalid"           // malformed or out-of-range input, decryption failure
	NotFound         Code = "not_found"         // no such key or version (or another keystore's key)
	Conflict         Code = "conflict"          // key name already used in the keystore
	InvalidState     Code = "invalid_state"     // the key's or version's state forbids the operation
	Forbidden        Code = "forbidden"         // IP ACL refused a token call
	Unauthenticated  Code = "unauthenticated"   // bad credentials
	PermissionDenied Code = "permission_denied" // authenticated, but the role may not do this
	Unavailable      Code = "unavailable"       // the server is saturated: retry later (ErrBusy)
	Internal         Code = "internal"          // anything unexpected
)

// Error is the error type of the domain. Message is safe to show to a caller:
// it never contains secrets or key material. Err is the cause, for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
	// Field names the input field at fault ("plaintext",
	// "requests[3].ciphertext"), when one is; API 3.0 shows it in fieldErrors.
	Field string
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches by kind, never by message text: a sentinel (ErrKeyNotFound,
// ErrInvalidStatus, ...) matches only itself (errors.Is compares it by
// identity, also through Err chains), and a target that is only a Code
// (&Error{Code: NotFound}) matches every error of that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an Invalid error about one input field.
func FieldErrorf(field, format string, args ...any) error {
	return &Error{Code: Invalid, Message: fmt.Sprintf(format, args...), Field: field}
}

// ErrorField returns the input field err is about, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// ErrorCode returns the Code of err, or Internal when err is not an *Error.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the caller-safe message of err; for anything that is
// not an *Error it returns a generic text.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != Internal {
		return e.Message
	}
	return "Server internal error"
}

// Sentinel errors. Compare with errors.Is.
var (
	ErrKeyNotFound       = &Error{Code: NotFound, Message: "key not found"}
	ErrVersionNotFound   = &Error{Code: NotFound, Message: "key version not found"}
	ErrAccessKeyNotFound = &Error{Code: NotFound, Message: "access key not found"}
	ErrNameConflict      = &Error{Code: Conflict, Message: "key name already exists in the keystore"}
	ErrKeyExists         = &Error{Code: Conflict, Message: "key tag already exists"}
	ErrAccessKeyExists   = &Error{Code: Conflict, Message: "access key already exists"}
	ErrInvalidStatus     = &Error{Code: InvalidState, Message: "Invalid status"}
	// ErrDecrypt is the one answer to every decryption failure: no oracle.
	ErrDecrypt = &Error{Code: Invalid, Message: "decryption failed"}
)

// invalid returns an Invalid error with a formatted message.
func invalid(format string, args ...any) error { return Errorf(Invalid, format, args...) }
