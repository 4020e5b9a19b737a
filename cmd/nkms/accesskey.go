package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// clientFlags are the connection settings of every client command.
type clientFlags struct {
	url    string
	caCert string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	def := os.Getenv("NKMS_URL")
	if def == "" {
		def = "http://127.0.0.1:8383"
	}
	cmd.Flags().StringVar(&f.url, "url", def, "base URL of the nkms server (env NKMS_URL)")
	cmd.Flags().StringVar(&f.caCert, "ca-cert", os.Getenv("NKMS_CA_CERT"),
		"PEM file of the certificates to trust for https, e.g. the server's --dev certificate (env NKMS_CA_CERT; default: the system's)")
}

// rootCAs returns the pool of --ca-cert, or nil for the system's roots.
func (f *clientFlags) rootCAs() (*x509.CertPool, error) {
	if f.caCert == "" {
		return nil, nil
	}
	text, err := os.ReadFile(f.caCert)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(text) {
		return nil, fmt.Errorf("--ca-cert %s: no PEM certificate in the file", f.caCert)
	}
	return pool, nil
}

// tlsConfig is the client TLS configuration of --ca-cert (nil: Go's default).
func (f *clientFlags) tlsConfig() (*tls.Config, error) {
	pool, err := f.rootCAs()
	if err != nil || pool == nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// client returns a client signing with NKMS_ACCESS_KEY / NKMS_SECRET_KEY.
func (f *clientFlags) client() (*client.Client, error) {
	ak, sk := os.Getenv("NKMS_ACCESS_KEY"), os.Getenv("NKMS_SECRET_KEY")
	if ak == "" || sk == "" {
		return nil, &hintError{errors.New("no credentials"), "set NKMS_ACCESS_KEY and NKMS_SECRET_KEY to an admin access key"}
	}
	pool, err := f.rootCAs()
	if err != nil {
		return nil, err
	}
	var opts []client.Option
	if pool != nil {
		opts = append(opts, client.WithRootCAs(pool))
	}
	return client.New(f.url, ak, sk, opts...)
}

func accessKeyCommand(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "access-key", Short: "Manage access keys (needs an admin access key)"}
	var cf clientFlags
	var keystore int64
	var role string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an access key for a keystore and print its id and secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			cred, err := c.CreateAccessKey(cmd.Context(), keystore, role)
			if err != nil {
				return fmt.Errorf("create access key: %w", err)
			}
			fmt.Fprintf(stdout, "NKMS_ACCESS_KEY=%s\nNKMS_SECRET_KEY=%s\nNKMS_KEYSTORE=%d\nNKMS_ROLE=%s\n",
				cred.AccessKey, cred.SecretKey, cred.KeystoreID, cred.Role)
			fmt.Fprintln(stderr, "nkms: the secret key is shown only this once; keep it safe")
			return nil
		},
	}
	create.Flags().Int64Var(&keystore, "keystore", 0, "keystore (tenant) number the access key sees")
	create.Flags().StringVar(&role, "role", "admin", "admin, manager, crypto or viewer")
	create.MarkFlagRequired("keystore")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the access keys you manage (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			all, err := c.ListAccessKeys(cmd.Context())
			if err != nil {
				return fmt.Errorf("list access keys: %w", err)
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ACCESS KEY\tKEYSTORE\tROLE\tCREATED")
			for _, a := range all {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", a.AccessKey, a.KeystoreID, a.Role,
					time.UnixMilli(a.CreatedDate).UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ACCESS_KEY",
		Short: "Revoke an access key; it stops working on its next request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if err := c.RevokeAccessKey(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("revoke access key: %w", err)
			}
			fmt.Fprintf(stderr, "nkms: access key %s revoked\n", args[0])
			return nil
		},
	}
	for _, sub := range []*cobra.Command{create, list, revoke} {
		cf.register(sub)
		cmd.AddCommand(sub)
	}
	return cmd
}
