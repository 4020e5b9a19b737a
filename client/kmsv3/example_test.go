package kmsv3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/nkms/nkms/client/kmsv3"
)

// server is a stand-in for a KMS API 3.0 server (nkms, or
// https://ocapi.ncloud.com) answering a few operations with fixed bodies.
func server() *httptest.Server {
	const tag = "f3a1c2d4e5b6978812345678abcdef0123456789abcdef0123456789abcdef01"
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /kms/v3/keys":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"keyTag":%q,"keyName":"orders","keyType":"AES256","protectionType":"BASIC","status":"ENABLED","memo":null,"currentVersion":1,"createdDateTime":"2026-11-24T13:51:53.123Z","statusChangedDateTime":"2026-11-24T13:51:53.123Z","scheduledDestroyDateTime":null}`, tag)
		case "POST /kms/v3/keys/" + tag + "/encrypt":
			io.WriteString(w, `{"ciphertext":"ncpkms:v1:c2VhbGVk"}`)
		case "POST /kms/v3/keys/" + tag + "/decrypt", "POST /kms/v3/token/keys/" + tag + "/decrypt":
			io.WriteString(w, `{"plaintext":"aGVsbG8="}`)
		case "PATCH /kms/v3/keys/" + tag:
			fmt.Fprintf(w, `{"keyTag":%q,"keyName":"orders","status":"ENABLED","memo":null}`, tag)
		case "POST /kms/v3/keys/" + tag + "/issue-tokens":
			io.WriteString(w, `{"accessToken":"eyJ.a.b","refreshToken":"eyJ.c.d","accessTokenExpireDateTime":"2026-11-25T13:51:53.123Z","refreshTokenExpireDateTime":null}`)
		case "POST /kms/v3/keys/" + tag + "/batch-encrypt":
			if strings.Contains(string(body), `"plaintext":"bm90IHRoaXM="`) {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"failures":{"1":{"errorCode":"InvalidParameter","message":"plaintext too long"}}}`)
				return
			}
			io.WriteString(w, `{"results":{"0":{"ciphertext":"ncpkms:v1:YQ=="},"1":{"ciphertext":"ncpkms:v1:Yg=="}}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"errorCode":"ResourceNotFound","message":"The key does not exist."}}`)
		}
	}))
}

func Example() {
	srv := server()
	defer srv.Close()
	ctx := context.Background()

	c, err := kmsv3.New(srv.URL, "ACCESS-KEY", "SECRET-KEY") // or "https://ocapi.ncloud.com"
	if err != nil {
		panic(err)
	}
	key, err := c.CreateKey(ctx, kmsv3.CreateKeyRequest{KeyName: "orders", KeyType: kmsv3.AES256,
		ProtectionType: kmsv3.Basic, Rotation: kmsv3.RotationSettings{Enabled: true, PeriodDays: 90}})
	if err != nil {
		panic(err)
	}
	ct, err := c.Encrypt(ctx, key.KeyTag, []byte("hello"), nil)
	if err != nil {
		panic(err)
	}
	pt, err := c.Decrypt(ctx, key.KeyTag, ct, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(key.Status, ct, string(pt))
	// Output: ENABLED ncpkms:v1:c2VhbGVk hello
}

func ExampleClient_UpdateKey() {
	srv := server()
	defer srv.Close()
	c, _ := kmsv3.New(srv.URL, "ACCESS-KEY", "SECRET-KEY")
	tag := "f3a1c2d4e5b6978812345678abcdef0123456789abcdef0123456789abcdef01"
	// PATCH with application/merge-patch+json: {"memo":null} removes the memo.
	key, err := c.UpdateKey(context.Background(), tag, kmsv3.UpdateKeyRequest{ClearMemo: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(key.KeyName, key.Memo == nil)
	// Output: orders true
}

func ExampleClient_BatchEncrypt() {
	srv := server()
	defer srv.Close()
	c, _ := kmsv3.New(srv.URL, "ACCESS-KEY", "SECRET-KEY")
	tag := "f3a1c2d4e5b6978812345678abcdef0123456789abcdef0123456789abcdef01"
	cts, err := c.BatchEncrypt(context.Background(), tag, []kmsv3.EncryptRequest{
		{Plaintext: []byte("a")}, {Plaintext: []byte("b")}})
	fmt.Println(cts, err)

	// All or nothing: a failing item fails the batch, keyed by its index.
	_, err = c.BatchEncrypt(context.Background(), tag, []kmsv3.EncryptRequest{
		{Plaintext: []byte("a")}, {Plaintext: []byte("not this")}})
	var be *kmsv3.BatchError
	if errors.As(err, &be) {
		for _, i := range be.Indexes() {
			fmt.Println(i, be.Failures[i].ErrorCode, be.Failures[i].Message)
		}
	}
	// Output:
	// [ncpkms:v1:YQ== ncpkms:v1:Yg==] <nil>
	// 1 InvalidParameter plaintext too long
}

func ExampleNewWithToken() {
	srv := server()
	defer srv.Close()
	ctx := context.Background()
	tag := "f3a1c2d4e5b6978812345678abcdef0123456789abcdef0123456789abcdef01"
	acct, _ := kmsv3.New(srv.URL, "ACCESS-KEY", "SECRET-KEY")
	// Lifetimes: access token in minutes, refresh token in hours.
	tokens, err := acct.IssueKeyTokens(ctx, tag, kmsv3.IssueTokensRequest{AccessTokenMinutes: 1440, RefreshTokenUnlimited: true})
	if err != nil {
		panic(err)
	}
	// The token client calls /kms/v3/token/keys/{keyTag}/... with x-ncp-ocapi-token.
	tc, _ := kmsv3.NewWithToken(srv.URL, tokens.AccessToken)
	pt, err := tc.Decrypt(ctx, tag, "ncpkms:v1:c2VhbGVk", nil)
	fmt.Println(string(pt), err, tokens.RefreshTokenExpireDateTime == nil)
	// Output: hello <nil> true
}

func ExampleError() {
	srv := server()
	defer srv.Close()
	c, _ := kmsv3.New(srv.URL, "ACCESS-KEY", "SECRET-KEY")
	_, err := c.GetKey(context.Background(), "no-such-key")
	var e *kmsv3.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.ErrorCode)
	}
	fmt.Println(err)
	// Output:
	// 404 ResourceNotFound
	// HTTP 404: ResourceNotFound: The key does not exist.
}
