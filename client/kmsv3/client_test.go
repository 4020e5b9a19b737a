package kmsv3

import (
	"errors"
	"strings"
	"testing"
)

// TestUpdateKeyPatches checks the merge patches of UpdateKey: {} for the
// zero request, memo null only for ClearMemo, and a refusal (nothing sent)
// for Memo with ClearMemo.
func TestUpdateKeyPatches(t *testing.T) {
	t.Parallel()
	empty := ""
	for _, tc := range []struct {
		name string
		r    UpdateKeyRequest
		want string // "" = refused, nothing sent
	}{
		{"zero", UpdateKeyRequest{}, `{}`},
		{"clear memo", UpdateKeyRequest{ClearMemo: true}, `{"memo":null}`},
		{"set memo", UpdateKeyRequest{Memo: ptr("<b>hi</b>")}, `{"memo":"\u003cb\u003ehi\u003c/b\u003e"}`},
		{"empty memo is sent as such", UpdateKeyRequest{Memo: &empty}, `{"memo":""}`},
		{"status only", UpdateKeyRequest{Status: Enabled}, `{"status":"ENABLED"}`},
		{"both memo and clear", UpdateKeyRequest{Memo: ptr("m"), ClearMemo: true}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, answer{status: 200, body: keyJSON("ENABLED", "null", "null")})
			_, err := f.account(t).UpdateKey(t.Context(), testTag, tc.r)
			reqs := f.requests()
			if tc.want == "" {
				if err == nil || len(reqs) != 0 {
					t.Fatalf("err %v after %d requests, want a refusal before sending", err, len(reqs))
				}
				return
			}
			if err != nil || len(reqs) != 1 || string(reqs[0].body) != tc.want ||
				reqs[0].contentType != "application/merge-patch+json" {
				t.Fatalf("err %v, requests %d, body %s; want %s", err, len(reqs), reqs[0].body, tc.want)
			}
		})
	}
}

// TestWrongClientKind checks that an operation the client's kind cannot
// call, or a bad argument, is refused before anything is sent.
func TestWrongClientKind(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	acct, tok := f.account(t), f.token(t)
	ctx := t.Context()
	for name, err := range map[string]error{
		"GetKey by token":          func() error { _, err := tok.GetKey(ctx, testTag); return err }(),
		"ListKeys by token":        func() error { _, err := tok.ListKeys(ctx, Page{}); return err }(),
		"IssueKeyTokens by token":  func() error { _, err := tok.IssueKeyTokens(ctx, testTag, IssueTokensRequest{}); return err }(),
		"DeleteKey by token":       tok.DeleteKey(ctx, testTag),
		"ReissueKeyTokens by acct": func() error { _, err := acct.ReissueKeyTokens(ctx, testTag, IssueTokensRequest{}); return err }(),
		"IssueKeyAccessToken by acct": func() error {
			_, err := acct.IssueKeyAccessToken(ctx, testTag, IssueAccessTokenRequest{})
			return err
		}(),
		"empty tag":       func() error { _, err := acct.Encrypt(ctx, "", []byte("x"), nil); return err }(),
		"version 0":       func() error { _, err := acct.GetKeyVersion(ctx, testTag, 0); return err }(),
		"public key v0":   func() error { _, err := tok.GetPublicKey(ctx, testTag, 0); return err }(),
		"update version0": func() error { _, err := acct.UpdateKeyVersion(ctx, testTag, -1, UpdateKeyVersionRequest{}); return err }(),
	} {
		var e *Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("%s: err %v, want a client-side refusal", name, err)
		}
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("server saw %d requests, want none", n)
	}
}

// TestTagEscaped checks that a key tag is one path segment, whatever it holds.
func TestTagEscaped(t *testing.T) {
	t.Parallel()
	f := newFake(t, answer{status: 404, body: `{"error":{"errorCode":"ResourceNotFound","message":"m"}}`})
	_, err := f.account(t).GetKey(t.Context(), "a/../b?c")
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].path != "/kms/v3/keys/a%2F..%2Fb%3Fc" || reqs[0].query != "" {
		t.Fatalf("requests %+v", reqs)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 {
		t.Errorf("err %v, want the 404", err)
	}
}

func TestNewValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"no secret", func() error { _, err := New("https://ocapi.ncloud.com", "ak", ""); return err }()},
		{"query in base", func() error { _, err := New("https://ocapi.ncloud.com/?x=1", "ak", "sk"); return err }()},
		{"ftp", func() error { _, err := New("ftp://ocapi.ncloud.com", "ak", "sk"); return err }()},
		{"zero attempts", func() error { _, err := New("https://ocapi.ncloud.com", "ak", "sk", WithRetries(0)); return err }()},
		{"token with space", func() error { _, err := NewWithToken("https://ocapi.ncloud.com", "a b"); return err }()},
		{"no token", func() error { _, err := NewWithToken("https://ocapi.ncloud.com", ""); return err }()},
		{"bad language", func() error {
			_, err := New("https://ocapi.ncloud.com", "ak", "sk", WithLanguage("en\r\nX: y"))
			return err
		}()},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	c, err := NewWithToken("https://ocapi.ncloud.com/", testToken)
	if err != nil || strings.Contains(c.String(), testToken) || strings.Contains(c.GoString(), testToken) {
		t.Errorf("token client %v, %v: the token must not be printed", c, err)
	}
	a, err := New("https://ocapi.ncloud.com", "ak", "the-secret")
	if err != nil || strings.Contains(a.String(), "the-secret") {
		t.Errorf("account client %v, %v: the secret must not be printed", a, err)
	}
}

// TestPrefixAndLanguage checks that a base URL's path prefix is kept and
// signed, and that x-ncp-lang is sent.
func TestPrefixAndLanguage(t *testing.T) {
	t.Parallel()
	f := newFake(t, answer{status: 200, body: `{"enabled":true,"allowedIps":[]}`})
	c, err := New(f.srv.URL+"/gw/", testAccessKey, testSecret, WithLanguage("en"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetKeyAcl(t.Context(), testTag); err != nil {
		t.Fatalf("GetKeyAcl: %v", err) // the fake verifies the signature over the prefixed path
	}
	r := f.requests()[0]
	if r.path != "/gw"+keyURL+"/acl" || r.header.Get("x-ncp-lang") != "en" {
		t.Errorf("request %s with lang %q", r.path, r.header.Get("x-ncp-lang"))
	}
}

// TestFakeChecksSignature makes sure the fake of these tests refuses a
// request signed with another secret, so that the other tests' passing
// means the client signs correctly.
func TestFakeChecksSignature(t *testing.T) {
	t.Parallel()
	f := newFake(t, answer{status: 200, body: keyJSON("ENABLED", "null", "null")})
	c, err := New(f.srv.URL, testAccessKey, "another-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetKey(t.Context(), testTag)
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.ErrorCode != "200" {
		t.Fatalf("GetKey = %v, want the gateway's 401", err)
	}
	tc, _ := NewWithToken(f.srv.URL, "other.token.x")
	if _, err := tc.Encrypt(t.Context(), testTag, []byte("x"), nil); !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("Encrypt with another token = %v, want 401", err)
	}
}
