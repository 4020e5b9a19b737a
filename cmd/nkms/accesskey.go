package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// accessKeyCommand is `nkms access-key`: nkms's own access-key management.
func accessKeyCommand(c *cli) *cobra.Command {
	cmd := c.clientCommand(&cobra.Command{Use: "access-key", Short: "Manage access keys (needs an admin access key)"})
	var keystore int64
	var role string
	create := &cobra.Command{
		Use:   "create --keystore N [--role ROLE]",
		Short: "Create an access key for a keystore and print its id and secret once",
		Example: `  nkms access-key create --keystore 2 --role crypto
  nkms access-key create --keystore 2 -o json | jq -r .secretKey`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			cred, err := kms.CreateAccessKey(cmd.Context(), keystore, role)
			if err != nil {
				return c.explain("create access key", err)
			}
			if c.jsonOutput() {
				err = c.printJSON(cred)
			} else {
				_, err = fmt.Fprintf(c.stdout, "NKMS_ACCESS_KEY=%s\nNKMS_SECRET_KEY=%s\nNKMS_KEYSTORE=%d\nNKMS_ROLE=%s\n",
					cred.AccessKey, cred.SecretKey, cred.KeystoreID, cred.Role)
			}
			c.note("the secret key is shown only this once; keep it safe")
			return err
		},
	}
	create.Flags().Int64Var(&keystore, "keystore", 0, "keystore (tenant) number the access key sees")
	create.Flags().StringVar(&role, "role", "admin", "admin, manager, crypto or viewer")
	create.MarkFlagRequired("keystore") //nolint:errcheck // the flag exists

	list := &cobra.Command{
		Use:   "list",
		Short: "List the access keys you manage (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			all, err := kms.ListAccessKeys(cmd.Context())
			if err != nil {
				return c.explain("list access keys", err)
			}
			if c.jsonOutput() {
				return c.printJSON(all)
			}
			w := c.table()
			fmt.Fprintln(w, "ACCESS KEY\tKEYSTORE\tROLE\tCREATED")
			for _, a := range all {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", a.AccessKey, a.KeystoreID, a.Role, formatMillis(a.CreatedDate))
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ACCESS_KEY",
		Short: "Revoke an access key; it stops working on its next request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			if err := kms.RevokeAccessKey(cmd.Context(), args[0]); err != nil {
				return c.explain("revoke access key", err)
			}
			c.note("access key %s revoked", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// formatMillis prints a time of the API (milliseconds since the epoch) for
// a table: UTC, to the second; "-" for none.
func formatMillis(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}
