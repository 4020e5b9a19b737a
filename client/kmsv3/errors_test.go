package kmsv3

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestErrorBodies checks that every error answer of the D9 wire becomes the
// right typed error.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	rid := map[string]string{HeaderRequestID: "rid-7"}
	for _, tc := range []struct {
		name  string
		batch bool // call BatchDecrypt, else Decrypt
		a     answer
		want  error
	}{
		{"invalid parameter with fields", false, answer{400, `{"error":{"errorCode":"InvalidParameter","message":"The specified parameter is invalid.","detail":"bad","fieldErrors":[{"field":"ciphertext","message":"not Base64"}]}}`, rid},
			&Error{Status: 400, ErrorCode: CodeInvalidParameter, Message: "The specified parameter is invalid.", Detail: "bad",
				FieldErrors: []FieldError{{Field: "ciphertext", Message: "not Base64"}}, RequestID: "rid-7"}},
		{"not found", false, answer{404, `{"error":{"errorCode":"ResourceNotFound","message":"no such key"}}`, nil},
			&Error{Status: 404, ErrorCode: CodeResourceNotFound, Message: "no such key"}},
		{"gateway body of 2.0 with details", false, answer{401, `{"error":{"errorCode":"200","message":"Authentication Failed","details":"Invalid authentication information."}}`, nil},
			&Error{Status: 401, ErrorCode: "200", Message: "Authentication Failed", Detail: "Invalid authentication information."}},
		{"414 without body", false, answer{414, "", rid}, &Error{Status: 414, Message: "Request URI Too Long", RequestID: "rid-7"}},
		{"not JSON", false, answer{502, "<html>bad gateway</html>", nil}, &Error{Status: 502, Message: "Bad Gateway"}},
		{"failures on a single call are not a batch error", false, answer{400, `{"failures":{"0":{"errorCode":"InvalidParameter","message":"x"}}}`, nil},
			&Error{Status: 400, Message: "Bad Request"}},
		{"batch failures", true, answer{400, `{"failures":{"3":{"errorCode":"InvalidParameter","message":"not Base64","fieldErrors":[{"field":"requests[3].ciphertext","message":"bad"}]},"0":{"errorCode":"InvalidState","message":"version disabled"}}}`, rid},
			&BatchError{Status: 400, RequestID: "rid-7", Failures: map[int]*Error{
				0: {Status: 400, ErrorCode: CodeInvalidState, Message: "version disabled"},
				3: {Status: 400, ErrorCode: CodeInvalidParameter, Message: "not Base64",
					FieldErrors: []FieldError{{Field: "requests[3].ciphertext", Message: "bad"}}}}}},
		{"batch rejected whole", true, answer{400, `{"error":{"errorCode":"InvalidParameter","message":"m","fieldErrors":[{"field":"requests[0].ciphertext","message":"must be a string"}]}}`, nil},
			&Error{Status: 400, ErrorCode: CodeInvalidParameter, Message: "m",
				FieldErrors: []FieldError{{Field: "requests[0].ciphertext", Message: "must be a string"}}}},
		{"batch failures with a bad index", true, answer{400, `{"failures":{"01":{"errorCode":"InvalidParameter","message":"x"}}}`, nil},
			&Error{Status: 400, Message: "Bad Request"}},
		{"batch failures not an object", true, answer{400, `{"failures":{"1":"x"}}`, nil},
			&Error{Status: 400, Message: "Bad Request"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.a)
			c := f.account(t)
			var err error
			if tc.batch {
				_, err = c.BatchDecrypt(t.Context(), testTag, []DecryptRequest{{Ciphertext: ct1}})
			} else {
				_, err = c.Decrypt(t.Context(), testTag, ct1, nil)
			}
			if !reflect.DeepEqual(err, tc.want) {
				t.Fatalf("error %#v (%v)\nwant  %#v (%v)", err, err, tc.want, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	e := &Error{Status: 400, ErrorCode: CodeInvalidParameter, Message: "bad", Detail: "why",
		FieldErrors: []FieldError{{"a", "x"}, {"b", "y"}}}
	if got, want := e.Error(), "HTTP 400: InvalidParameter: bad (why) [a: x; b: y]"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	b := &BatchError{Status: 400, Failures: map[int]*Error{7: {ErrorCode: "InvalidState", Message: "s"}, 2: {ErrorCode: "InvalidParameter"}}}
	if got, want := b.Error(), "HTTP 400: batch failed: item 2: InvalidParameter; item 7: InvalidState: s"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var as *BatchError
	if !errors.As(error(b), &as) || !reflect.DeepEqual(as.Indexes(), []int{2, 7}) {
		t.Errorf("Indexes() = %v", as.Indexes())
	}
}

// TestTokenHiddenInErrors checks that a token echoed by a server does not
// reach the error text.
func TestTokenHiddenInErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t, answer{status: 403, body: `{"error":{"errorCode":"AccessDenied","message":"token ` + testToken + ` refused"}}`})
	_, err := f.token(t).Encrypt(t.Context(), testTag, []byte("x"), nil)
	var e *Error
	if !errors.As(err, &e) || e.ErrorCode != CodeAccessDenied || strings.Contains(err.Error(), testToken) {
		t.Fatalf("Encrypt = %v, want AccessDenied without the token", err)
	}
}

// TestMalformedAnswers checks that a 2xx answer without what the call
// returns is an error, not a zero value.
func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		call       func(c *Client) error
	}{
		{"encrypt without ciphertext", `{}`, func(c *Client) error { _, err := c.Encrypt(t.Context(), testTag, nil, nil); return err }},
		{"decrypt not Base64", `{"plaintext":"***"}`, func(c *Client) error { _, err := c.Decrypt(t.Context(), testTag, ct1, nil); return err }},
		{"batch missing index", `{"results":{"0":{"ciphertext":"a"},"2":{"ciphertext":"b"}}}`, func(c *Client) error {
			_, err := c.BatchEncrypt(t.Context(), testTag, []EncryptRequest{{}, {}})
			return err
		}},
		{"batch too few", `{"results":{"0":{"ciphertext":"a"}}}`, func(c *Client) error {
			_, err := c.BatchEncrypt(t.Context(), testTag, []EncryptRequest{{}, {}})
			return err
		}},
		{"verify without valid", `{"valid":null}`, func(c *Client) error { _, err := c.Verify(t.Context(), testTag, nil, sig1); return err }},
		{"plain key asked, not given", `{"ciphertext":"c","version":1}`, func(c *Client) error {
			_, err := c.IssueCustomKey(t.Context(), testTag, CustomKeyRequest{RequestPlainKey: true})
			return err
		}},
		{"key not JSON", `{"keyTag":`, func(c *Client) error { _, err := c.GetKey(t.Context(), testTag); return err }},
		{"empty 200", ``, func(c *Client) error { _, err := c.GetKey(t.Context(), testTag); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, answer{status: 200, body: tc.body})
			err := tc.call(f.account(t))
			var e *Error
			if err == nil || errors.As(err, &e) || !strings.Contains(err.Error(), "malformed response") &&
				!strings.Contains(err.Error(), "without the expected body") {
				t.Fatalf("err = %v, want a malformed-response error", err)
			}
		})
	}
}
