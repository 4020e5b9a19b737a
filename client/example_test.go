package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/store/mem"
)

// startServer starts an in-memory nkms server for an example and returns
// its URL, an admin access key and its secret, and a function that stops it.
// A real program points the client at its server instead.
func startServer() (url, accessKey, secretKey string, stop func()) {
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		log.Fatal(err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		log.Fatal(err)
	}
	svc := &nkms.Service{Store: mem.New(), Root: root, Now: time.Now, DeletionWindow: nkms.DefaultDeletionWindow}
	srv := httptest.NewServer(api.New(svc, api.Config{PublicURL: "https://kms.example"}))
	creds, err := svc.Bootstrap(context.Background())
	if err != nil {
		srv.Close()
		log.Fatal(err)
	}
	return srv.URL, creds.AccessKey, creds.SecretKey, srv.Close
}

// Create an AES key, then encrypt and decrypt with it.
func Example() {
	url, accessKey, secretKey, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, accessKey, secretKey)
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "orders", KeyType: "AES256", ProtectionType: "BASIC"})
	if err != nil {
		log.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, key.KeyTag, []byte("hello"), []byte("order 42"))
	if err != nil {
		log.Fatal(err)
	}
	pt, err := c.Decrypt(ctx, key.KeyTag, ct, []byte("order 42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.KeyName, key.KeyType, key.Status)
	fmt.Printf("%s\n", pt)
	// Output:
	// orders AES256 ENABLE
	// hello
}

// Sign a message with an ECDSA key and verify the signature.
func ExampleClient_Sign() {
	url, accessKey, secretKey, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, accessKey, secretKey)
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "releases", KeyType: "ECDSA"})
	if err != nil {
		log.Fatal(err)
	}
	msg := []byte("release v1.2.3")
	sig, err := c.Sign(ctx, key.KeyTag, msg)
	if err != nil {
		log.Fatal(err)
	}
	valid, err := c.Verify(ctx, key.KeyTag, msg, sig)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", valid)
	valid, err = c.Verify(ctx, key.KeyTag, []byte("release v6.6.6"), sig)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("other message valid:", valid)
	// Output:
	// valid: true
	// other message valid: false
}

// Issue a token set for a key, and encrypt with the access token alone: an
// application holding the token needs no access key.
func ExampleNewWithToken() {
	url, accessKey, secretKey, stop := startServer()
	defer stop()
	ctx := context.Background()

	admin, err := client.New(url, accessKey, secretKey)
	if err != nil {
		log.Fatal(err)
	}
	key, err := admin.CreateKey(ctx, client.CreateKeyRequest{KeyName: "sessions", KeyType: "AES256"})
	if err != nil {
		log.Fatal(err)
	}
	if err := admin.CreateTokenGenerator(ctx, key.KeyTag); err != nil {
		log.Fatal(err)
	}
	set, err := admin.CreateTokenSet(ctx, key.KeyTag, 1, 24) // hours
	if err != nil {
		log.Fatal(err)
	}

	app, err := client.NewWithToken(url, set.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	ct, err := app.Encrypt(ctx, key.KeyTag, []byte("session secret"), nil)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := app.Decrypt(ctx, key.KeyTag, ct, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", pt)
	// An access token opens only the crypto routes of its key.
	_, err = app.GetKey(ctx, key.KeyTag)
	var e *client.Error
	fmt.Println("GetKey with a token refused:", errors.As(err, &e))
	// Output:
	// session secret
	// GetKey with a token refused: true
}

// Tell a failure answered by the server apart with errors.As: the HTTP
// status and the error code of its body. A call that may be retried (see
// the package documentation) returns its last answer's *Error.
func ExampleError() {
	url, accessKey, secretKey, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, accessKey, secretKey, client.WithRetries(2))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.GetKey(ctx, "0000000000000000000000000000000000000000000000000000000000000000")
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println("status:", e.Status)
		fmt.Println("code:", e.Code)
	}

	bad, err := client.New(url, accessKey, "not-the-secret")
	if err != nil {
		log.Fatal(err)
	}
	_, err = bad.ListKeys(ctx, 1, 10)
	if errors.As(err, &e) {
		fmt.Println("status:", e.Status)
		fmt.Println("errorCode:", e.ErrorCode)
	}
	// Output:
	// status: 404
	// code: NOT_FOUND
	// status: 401
	// errorCode: 200
}
