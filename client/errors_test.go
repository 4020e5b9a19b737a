package client

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   *Error
	}{
		{
			name: "gateway", status: 401, ctype: "application/json",
			body: `{"error":{"errorCode":"200","message":"Authentication Failed","details":"stale timestamp"}}`,
			want: &Error{Status: 401, ErrorCode: "200", Message: "Authentication Failed", Details: "stale timestamp"},
		},
		{
			name: "gateway without details", status: 404, ctype: "application/json",
			body: `{"error":{"errorCode":"300","message":"Not Found Exception"}}`,
			want: &Error{Status: 404, ErrorCode: "300", Message: "Not Found Exception"},
		},
		{
			name: "kms", status: 400, ctype: "application/json",
			body: `{"code":"INVALID_REQUEST","msg":"Invalid request","data":null}`,
			want: &Error{Status: 400, Code: "INVALID_REQUEST", Message: "Invalid request"},
		},
		{
			name: "kms state", status: 422, ctype: "application/json",
			body: `{"code":"UNPROCESSABLE_ENTITY","msg":"Invalid status","data":null}`,
			want: &Error{Status: 422, Code: "UNPROCESSABLE_ENTITY", Message: "Invalid status"},
		},
		{
			name: "non-JSON 502", status: 502, ctype: "text/html",
			body: "<html><body><h1>502 Bad Gateway</h1>upstream x.internal:9000 refused</body></html>",
			want: &Error{Status: 502, Message: "Bad Gateway"},
		},
		{
			name: "empty 500", status: 500, body: "",
			want: &Error{Status: 500, Message: "Internal Server Error"},
		},
		{
			name: "unrelated JSON", status: 400, ctype: "application/json", body: `{"hello":"world"}`,
			want: &Error{Status: 400, Message: "Bad Request"},
		},
		{
			name: "unknown status", status: 599, body: "?",
			want: &Error{Status: 599, Message: "unexpected response"},
		},
		{
			name: "2xx with failure code", status: 200, ctype: "application/json",
			body: `{"code":"INVALID_REQUEST","msg":"Invalid request"}`,
			want: &Error{Status: 200, Code: "INVALID_REQUEST", Message: "Invalid request"},
		},
		{
			name: "control characters cleaned", status: 400, ctype: "application/json",
			body: `{"code":"INVALID_REQUEST","msg":"bad\r\nX-Injected: 1"}`,
			want: &Error{Status: 400, Code: "INVALID_REQUEST", Message: "bad  X-Injected: 1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := f.client(t).GetKey(t.Context(), testTag)
			var got *Error
			if !errors.As(err, &got) {
				t.Fatalf("GetKey error = %#v, want an *Error", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("*Error (-want +got):\n%s", diff)
			}
			if text := got.Error(); strings.Contains(text, "<") || !strings.Contains(text, strconv.Itoa(tc.status)) {
				t.Errorf("Error() = %q: want the status and no raw body", text)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    *Error
		want string
	}{
		{&Error{Status: 404, Code: "NOT_FOUND", Message: "Key not found"}, "HTTP 404: NOT_FOUND: Key not found"},
		{&Error{Status: 401, ErrorCode: "200", Message: "Authentication Failed", Details: "stale timestamp"},
			"HTTP 401: errorCode 200: Authentication Failed (stale timestamp)"},
		{&Error{Status: 502, Message: "Bad Gateway"}, "HTTP 502: Bad Gateway"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestMalformedSuccess(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not JSON":  "ok",
		"no data":   `{"code":"SUCCESS"}`,
		"null data": `{"code":"SUCCESS","data":null}`,
		"bad data":  `{"code":"SUCCESS","data":{"keyId":"seven"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) { writeJSON(w, 200, body) })
			k, err := f.client(t).GetKey(t.Context(), testTag)
			if err == nil || k != nil {
				t.Errorf("GetKey = %+v, %v; want nil and an error", k, err)
			}
		})
	}
}
