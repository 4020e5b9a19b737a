package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms/internal/sigv2"
)

func TestFreshTimestampPerRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"keyTag":"t","status":"ENABLE","statusDate":1}`))
	times := []time.Time{t0, t0.Add(1500 * time.Millisecond), t0.Add(-2 * time.Minute)}
	i := 0
	c, err := New(f.srv.URL, testAccessKey, testSecret, WithClock(func() time.Time { i++; return times[i-1] }))
	if err != nil {
		t.Fatal(err)
	}
	for range times {
		if _, err := c.EnableKey(t.Context(), testTag); err != nil {
			t.Fatal(err)
		}
	}
	var got, want []string
	for i, r := range f.requests() {
		if r.AuthErr != nil {
			t.Errorf("request %d did not verify: %v", i, r.AuthErr)
		}
		got = append(got, r.Timestamp)
		want = append(want, strconv.FormatInt(times[i].UnixMilli(), 10))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timestamps (-want +got):\n%s", diff)
	}
}

func TestStaleClockIsRejected(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{}`))
	c, err := New(f.srv.URL, testAccessKey, testSecret, WithClock(func() time.Time { return t0.Add(-5 * time.Minute) }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetKey(t.Context(), testTag)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusUnauthorized || e.ErrorCode != "200" {
		t.Fatalf("GetKey with a clock 5 minutes behind = %v, want a 401 gateway *Error", err)
	}
}

// TestSignatureCoversQuery checks that the query of ListKeys is signed: the
// same headers do not verify over the bare path.
func TestSignatureCoversQuery(t *testing.T) {
	t.Parallel()
	var creds sigv2.Credentials
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		creds, _ = sigv2.FromRequest(r)
		writeJSON(w, 200, `{"code":"SUCCESS","data":{"keyList":[]}}`)
	})
	if _, err := f.client(t).ListKeys(t.Context(), 1, 200); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0]
	if r.URI != "/kms/v1/keys?pageNo=1&pageSize=200" || r.AuthErr != nil {
		t.Fatalf("server saw %s (auth error %v), want a verified /kms/v1/keys?pageNo=1&pageSize=200", r.URI, r.AuthErr)
	}
	if sigv2.Verify([]byte(testSecret), "GET", "/kms/v1/keys", creds) {
		t.Error("signature also verifies without the query")
	}
}

// TestArraysMirrorOrder checks that the Many methods send arrays in order
// and map the answers back in order.
func TestArraysMirrorOrder(t *testing.T) {
	t.Parallel()
	// The fake maps item i to "<op>:<item>" and answers in the same order.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		var in map[string]any
		json.Unmarshal(body, &in)
		op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		field, outField := "plaintext", "ciphertext"
		switch op {
		case "decrypt":
			field, outField = "ciphertext", "plaintext"
		case "re-encrypt":
			field, outField = "ciphertext", "newCiphertext"
		}
		var out []string
		for _, v := range in[field].([]any) {
			s := v.(string)
			switch op {
			case "encrypt":
				out = append(out, "ncpkms:v1:"+s)
			case "decrypt":
				out = append(out, strings.TrimPrefix(s, "ncpkms:v1:"))
			default:
				out = append(out, strings.Replace(s, "v1", "v2", 1))
			}
		}
		b, _ := json.Marshal(map[string]any{"code": "SUCCESS", "data": map[string]any{outField: out}})
		writeJSON(w, 200, string(b))
	})
	c := f.client(t)
	ctx := t.Context()
	plain := [][]byte{[]byte("first"), {}, []byte("third"), {0xff}}
	cts, err := c.EncryptMany(ctx, testTag, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCts := []string{"ncpkms:v1:Zmlyc3Q=", "ncpkms:v1:", "ncpkms:v1:dGhpcmQ=", "ncpkms:v1:/w=="}
	if diff := cmp.Diff(wantCts, cts); diff != "" {
		t.Errorf("EncryptMany (-want +got):\n%s", diff)
	}
	pts, err := c.DecryptMany(ctx, testTag, cts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]byte{[]byte("first"), {}, []byte("third"), {0xff}}, pts); diff != "" {
		t.Errorf("DecryptMany (-want +got):\n%s", diff)
	}
	re, err := c.ReEncryptMany(ctx, testTag, cts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ncpkms:v2:Zmlyc3Q=", "ncpkms:v2:", "ncpkms:v2:dGhpcmQ=", "ncpkms:v2:/w=="}, re); diff != "" {
		t.Errorf("ReEncryptMany (-want +got):\n%s", diff)
	}
	reqs := f.requests()
	if !jsonEqual(t, reqs[0].Body, `{"plaintext":["Zmlyc3Q=","","dGhpcmQ=","/w=="]}`) {
		t.Errorf("EncryptMany body = %s", reqs[0].Body)
	}
	if _, err := c.EncryptMany(ctx, testTag, nil, nil); err != nil {
		t.Errorf("EncryptMany(nil) = %v", err)
	}
	if got := f.requests()[3].Body; !jsonEqual(t, got, `{"plaintext":[]}`) {
		t.Errorf("EncryptMany(nil) body = %s, want an empty array", got)
	}
}

func TestArrayLengthMismatch(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"ciphertext":["ncpkms:v1:AA=="]}`))
	got, err := f.client(t).EncryptMany(t.Context(), testTag, [][]byte{{1}, {2}}, nil)
	if err == nil || got != nil {
		t.Errorf("EncryptMany with a short answer = %v, %v; want nil and an error", got, err)
	}
}

// TestSecretNeverLeaks drives every kind of call, success and failure, and
// checks that the secret key appears in no request (in clear, Base64 or
// hex) and in no error text or printed value.
func TestSecretNeverLeaks(t *testing.T) {
	t.Parallel()
	forms := []string{testSecret, base64.StdEncoding.EncodeToString([]byte(testSecret)),
		base64.URLEncoding.EncodeToString([]byte(testSecret)), hex.EncodeToString([]byte(testSecret))}
	leaks := func(s string) bool {
		for _, f := range forms {
			if strings.Contains(strings.ToLower(s), strings.ToLower(f)) {
				return true
			}
		}
		return false
	}
	answers := []string{
		`{"code":"SUCCESS","data":{}}`,
		`{"error":{"errorCode":"200","message":"Authentication Failed"}}`,
		`{"code":"INTERNAL_SERVER_ERROR","msg":"Server internal error","data":null}`,
		"<html>oops</html>",
	}
	n := 0
	f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		status := []int{200, 401, 500, 502}[n%4]
		writeJSON(w, status, answers[n%4])
		n++
	})
	c := f.client(t)
	ctx := t.Context()
	var errs []error
	record := func(_ any, err error) { errs = append(errs, err) }
	for range 4 {
		record(c.CreateKey(ctx, CreateKeyRequest{KeyName: "abc", KeyType: "AES256"}))
		record(c.ListKeys(ctx, 1, 10))
		record(c.Encrypt(ctx, testTag, []byte("p"), []byte("c")))
		record(c.Verify(ctx, testTag, []byte("m"), "ncpkms:v1:AA=="))
		record(nil, c.Do(ctx, "PATCH", "/x?y=z", map[string]int{"a": 1}, nil))
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	record(c.GetKey(canceled, testTag))
	record(c.GetKey(ctx, ""))
	record(nil, c.Do(ctx, "GET", "no-slash", nil, nil))
	dead, _ := New("http://127.0.0.1:1", testAccessKey, testSecret)
	record(dead.GetKey(ctx, testTag))
	_, err := New("http://user:"+testSecret+"@host", testAccessKey, testSecret)
	record(nil, err)

	for i, r := range f.requests() {
		if r.AuthErr != nil {
			t.Errorf("request %d did not verify: %v", i, r.AuthErr)
		}
		if leaks(string(r.Dump)) {
			t.Errorf("request %d carries the secret:\n%s", i, r.Dump)
		}
	}
	for _, err := range errs {
		if err != nil && leaks(err.Error()+fmt.Sprintf("%v %+v %#v", err, err, err)) {
			t.Errorf("error text carries the secret: %v", err)
		}
	}
	if printed := fmt.Sprintf("%v %+v %#v %s", c, c, c, c); leaks(printed) {
		t.Errorf("printing the client shows the secret: %s", printed)
	}
	creds := AccessKeyCredentials{AccessKey: "AK", SecretKey: testSecret, KeystoreID: 1, Role: "admin"}
	if printed := fmt.Sprintf("%v %+v %#v %s", creds, creds, creds, &creds); leaks(printed) {
		t.Errorf("printing credentials shows the secret: %s", printed)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   *Error
	}{
		{name: "ok", status: 200, body: "ok\n"},
		{name: "not ready", status: 503, body: "starting", want: &Error{Status: 503, Message: "Service Unavailable"}},
		{name: "wrong answer", status: 200, body: "<html>", want: &Error{Status: 200, Message: "unexpected health answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			err := f.client(t).Health(t.Context())
			var got *Error
			if tc.want == nil && err != nil || tc.want != nil && !errors.As(err, &got) {
				t.Fatalf("Health = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("*Error (-want +got):\n%s", diff)
			}
			r := f.requests()[0]
			if r.Method != "GET" || r.URI != "/healthz" || strings.Contains(strings.ToLower(string(r.Dump)), "x-ncp") {
				t.Errorf("health request:\n%s\nwant an unauthenticated GET /healthz", r.Dump)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"", "127.0.0.1:8383", "ftp://host", "http://", "http://host?x=1",
		"http://host#frag", "http://u:p@host", "http://host/%zz", "http://host?"} {
		if _, err := New(base, "AK", "SK"); err == nil {
			t.Errorf("New(%q) succeeded, want an error", base)
		}
	}
	if _, err := New("http://host", "", "SK"); err == nil {
		t.Error("New with an empty access key succeeded")
	}
	if _, err := New("http://host", "AK", ""); err == nil {
		t.Error("New with an empty secret key succeeded")
	}
	if _, err := New("http://host", "AK", "SK", WithHTTPClient(nil)); err == nil {
		t.Error("New with a nil HTTP client succeeded")
	}
}

func TestBaseURLPathPrefix(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"publicKey":"PEM"}`))
	c, err := New(f.srv.URL+"/prefix/", testAccessKey, testSecret, WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublicKey(t.Context(), testTag, 0); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[0]; r.URI != "/prefix/kms/v1/keys/"+testTag+"/get-pub-key" || r.AuthErr != nil {
		t.Errorf("server saw %s (auth error %v)", r.URI, r.AuthErr)
	}
}

// TestTagIsEscaped checks that a key tag cannot change the route and that
// the escaped request target is what gets signed.
func TestTagIsEscaped(t *testing.T) {
	t.Parallel()
	f := newFake(t, success(`{"ciphertext":"ncpkms:v1:AA=="}`))
	c := f.client(t)
	if _, err := c.Encrypt(t.Context(), "../a/b?c=d", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[0]; r.URI != "/kms/v1/keys/..%2Fa%2Fb%3Fc=d/encrypt" || r.AuthErr != nil {
		t.Errorf("server saw %s (auth error %v)", r.URI, r.AuthErr)
	}
	if _, err := c.GetKey(t.Context(), ""); err == nil {
		t.Error("GetKey with an empty tag succeeded")
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1 (an empty tag must not be sent)", n)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	_, err := f.client(t).GetKey(t.Context(), testTag)
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusTemporaryRedirect {
		t.Errorf("GetKey = %v, want an *Error with status 307", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}
