package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/audit"
)

func auditCommand(stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with the audit log of nkms server --audit-log"}
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check the hash chain of an audit log; name the first bad line",
		Long: "Check that every line of FILE is an audit record, that seq counts from 1 and that each prev is the\n" +
			"SHA-256 of the line before. Exits 0 when the chain is intact, 1 naming the first bad line otherwise.\n" +
			"A chain cannot show lines cut off the end of the file: compare the last line with the head that\n" +
			"nkms server logs (\"audit log closed ... lines=N head=H\").",
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			name := args[0]
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := audit.Verify(f)
			var ve *audit.VerifyError
			if errors.As(err, &ve) {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err != nil {
				return fmt.Errorf("%s: read: %w", name, err)
			}
			fmt.Fprintf(stderr, "nkms: %s: %d lines, chain intact\n", name, n)
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
