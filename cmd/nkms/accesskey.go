package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// clientFlags are the connection settings of every client command.
type clientFlags struct {
	url string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv("NKMS_URL")
	if def == "" {
		def = "http://127.0.0.1:8383"
	}
	cmd.Flags().StringVar(&f.url, "url", def, "base URL of the nkms server (env NKMS_URL)")
}

// client returns a client signing with NKMS_ACCESS_KEY / NKMS_SECRET_KEY.
func (f *clientFlags) client() (*client.Client, error) {
	ak, sk := os.Getenv("NKMS_ACCESS_KEY"), os.Getenv("NKMS_SECRET_KEY")
	if ak == "" || sk == "" {
		return nil, &hintError{errors.New("no credentials"), "set NKMS_ACCESS_KEY and NKMS_SECRET_KEY to an admin access key"}
	}
	return client.New(f.url, ak, sk)
}

func accessKeyCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "access-key", Short: "Manage access keys (needs an admin access key)"}
	var cf clientFlags
	var keystore int64
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an access key for a keystore and print its id and secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			cred, err := c.CreateAccessKey(cmd.Context(), keystore)
			if err != nil {
				return fmt.Errorf("create access key: %w", err)
			}
			fmt.Fprintf(stdout, "NKMS_ACCESS_KEY=%s\nNKMS_SECRET_KEY=%s\nNKMS_KEYSTORE=%d\n", cred.AccessKey, cred.SecretKey, cred.KeystoreID)
			fmt.Fprintln(stderr, "nkms: the secret key is shown only this once; keep it safe")
			return nil
		},
	}
	cf.register(create)
	create.Flags().Int64Var(&keystore, "keystore", 0, "keystore (tenant) number the access key sees")
	create.MarkFlagRequired("keystore")
	cmd.AddCommand(create)
	return cmd
}
