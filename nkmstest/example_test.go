package nkmstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/nkmstest"
)

// A test of an application that encrypts with NAVER Cloud KMS: the server
// runs in the test's process, the application gets its URL and credentials,
// and the 72-hour deletion window passes in no time. (An example of this
// package takes a *testing.T, so it is compiled but not run here; the same
// test runs in testdata/usermod, a module of its own.)
func Example() {
	testOrders := func(t *testing.T) {
		srv := nkmstest.NewServer(t) // stopped when the test ends
		key := srv.CreateKey(client.CreateKeyRequest{KeyName: "orders"})

		// The code under test takes srv.URL, srv.AccessKey and srv.SecretKey
		// as it would take NAVER's endpoint and an API key.
		ctx := context.Background()
		sealed, err := srv.Client().Encrypt(ctx, key.KeyTag, []byte("card 4111"), nil)
		if err != nil {
			t.Fatal(err)
		}

		if _, err := srv.Client().RequestDeletion(ctx, key.KeyTag); err != nil {
			t.Fatal(err)
		}
		srv.Advance(72 * time.Hour) // the key is destroyed before Advance returns
		if _, err := srv.Client().Decrypt(ctx, key.KeyTag, sealed, nil); err == nil {
			t.Fatal("decrypted with a destroyed key")
		}
	}
	_ = testOrders
}
