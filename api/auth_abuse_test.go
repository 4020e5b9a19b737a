package api_test

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/nkms/nkms/internal/sigv2"
)

// answer is what a client sees of a response, but for what differs on every
// request (the request id and the date).
type answer struct {
	status int
	header http.Header
	body   []byte
}

// answerTo sends a GET of path prepared by prepare and returns the answer.
func (e *env) answerTo(path string, prepare func(*http.Request)) answer {
	e.t.Helper()
	r, err := http.NewRequest("GET", e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	prepare(r)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		e.t.Fatal(err)
	}
	h := resp.Header.Clone()
	h.Del("Date")
	h.Del("x-ncp-request-id")
	return answer{resp.StatusCode, h, body.Bytes()}
}

// TestCredentialFailuresAnswerAlike: an unknown access key, a revoked one and
// a known one with a wrong signature get byte-identical answers (issue 13
// item 10; before, the details said "unknown access key" or "signature does
// not match", telling an attacker which access keys exist).
func TestCredentialFailuresAnswerAlike(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	known := e.creds[1]
	revoked := e.creds[2]
	if err := e.client(1).RevokeAccessKey(ctx, revoked.AccessKey); err != nil {
		t.Fatal(err)
	}
	const path = "/kms/v1/keys?pageNo=1&pageSize=5"
	signedAs := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { sigv2.SignRequest(r, id, []byte(secret), e.clk.Now()) }
	}
	cases := []struct {
		name    string
		prepare func(*http.Request)
	}{
		{"wrong signature", signedAs(known.AccessKey, "not-the-secret-key-of-it")},
		{"wrong signature, secret of another access key", signedAs(known.AccessKey, revoked.SecretKey)},
		{"unknown access key", signedAs("NKNOSUCHACCESSKEY00", known.SecretKey)},
		{"revoked access key, its own secret", signedAs(revoked.AccessKey, revoked.SecretKey)},
	}
	var want answer
	for i, tc := range cases {
		got := e.answerTo(path, tc.prepare)
		if got.status != http.StatusUnauthorized || gatewayCode(t, got.body) != "200" {
			t.Fatalf("%s: got %d %s, want 401 errorCode 200", tc.name, got.status, got.body)
		}
		if i == 0 {
			want = got
			continue
		}
		if !bytes.Equal(got.body, want.body) {
			t.Errorf("%s: body\n%s\ndiffers from %s's\n%s", tc.name, got.body, cases[0].name, want.body)
		}
		for k, v := range got.header {
			if !slices.Equal(v, want.header[k]) {
				t.Errorf("%s: header %s: %q, %s has %q", tc.name, k, v, cases[0].name, want.header[k])
			}
		}
		if len(got.header) != len(want.header) {
			t.Errorf("%s: headers %v, %s has %v", tc.name, got.header, cases[0].name, want.header)
		}
	}
	golden(t, "error_401_bad_credential", want.status, want.body)
}
