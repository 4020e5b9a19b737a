package nkms_test

import (
	"context"
	"fmt"
	"log"

	"github.com/testcontainers/testcontainers-go"

	"github.com/nkms/nkms/client"
	nkms "github.com/nkms/nkms/testcontainers"
)

// Start nkms in a container, then create a key and encrypt with it as an
// application's test would (with the NAVER Cloud SDK of its language, it
// would use BaseURL, AccessKey and SecretKey instead of Client).
func ExampleRun() {
	ctx := context.Background()
	ctr, err := nkms.Run(ctx, "localhost/nkms:dev")
	defer func() {
		if err := testcontainers.TerminateContainer(ctr); err != nil {
			log.Print(err)
		}
	}()
	if err != nil {
		log.Fatal(err)
	}
	c, err := ctr.Client(ctx)
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "orders", KeyType: "AES256"})
	if err != nil {
		log.Fatal(err)
	}
	ciphertext, err := c.Encrypt(ctx, key.KeyTag, []byte("card 4111"), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ciphertext[:10])
}
