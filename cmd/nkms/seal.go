package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/crypto"
)

// sealCommands are `nkms seal` and `nkms unseal`: envelope encryption of a
// file with a data key from the server (internal/crypto/envelope.go).
func sealCommands(c *cli) []*cobra.Command {
	var key, in, out string
	seal := &cobra.Command{
		Use:   "seal --key TAG [--in FILE] [--out FILE]",
		Short: "Encrypt a file (or stdin) locally with a fresh data key wrapped by a KMS key",
		Long: `Encrypt a file (or stdin) locally with a fresh data key wrapped by a KMS key.

The server makes a 256-bit data key (Create Custom Key) and returns it with
its wrapped form; the file is encrypted here, in 64 KiB chunks of AES-256-GCM,
in constant memory, and only the wrapped key is kept in the output's header.
nkms unseal asks the server to unwrap it, and detects truncation, reordering
and tampering. On a terminal, a progress line is drawn on stderr.`,
		Example: `  nkms seal --key $TAG --in backup.tar --out backup.tar.nkms
  pg_dump db | nkms seal --key $TAG > db.sql.nkms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			return c.seal(cmd.Context(), kms, key, in, out)
		},
	}
	c.connectionFlags(seal)
	seal.Flags().StringVar(&key, "key", "", "key tag of the KMS key that wraps the data key (AES256 or RSA2048)")
	seal.Flags().StringVar(&in, "in", "", "file to encrypt (default: stdin)")
	seal.Flags().StringVar(&out, "out", "", "where to write the sealed file (default: stdout)")
	seal.MarkFlagRequired("key") //nolint:errcheck // the flag exists

	var uin, uout string
	unseal := &cobra.Command{
		Use:   "unseal [--in FILE] [--out FILE]",
		Short: "Decrypt a file made by nkms seal",
		Long: `Decrypt a file made by nkms seal: the server unwraps the data key named in
its header, and every chunk is authenticated before it is written. With --out
the result appears only when the whole file checked out; on stdout, the
chunks that checked out before a bad one have been written when unseal fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			return c.unseal(cmd.Context(), kms, uin, uout)
		},
	}
	c.connectionFlags(unseal)
	unseal.Flags().StringVar(&uin, "in", "", "sealed file (default: stdin)")
	unseal.Flags().StringVar(&uout, "out", "", "where to write the plaintext (default: stdout)")
	return []*cobra.Command{seal, unseal}
}

// seal encrypts the file in (or stdin) into out (or stdout).
func (c *cli) seal(ctx context.Context, kms *client.Client, key, in, out string) error {
	r, size, closeIn, err := openInput(in, c.stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	dk, err := kms.CreateCustomKey(ctx, key, client.CustomKeyRequest{RequestPlainKey: true, Bits: 256})
	if err != nil {
		return fmt.Errorf("get a data key from key %s: %w", key, err)
	}
	defer clear(dk.Plaintext)
	r, finish := c.withProgress("sealing", r, size)
	defer finish()
	return writeOutput(out, c.stdout, func(w io.Writer) error {
		return crypto.SealStream(w, r, dk.Plaintext, crypto.EnvelopeHeader{KeyTag: key, WrappedKey: dk.Ciphertext})
	})
}

// unseal decrypts the sealed file in (or stdin) into out (or stdout).
func (c *cli) unseal(ctx context.Context, kms *client.Client, in, out string) error {
	r, size, closeIn, err := openInput(in, c.stdin)
	if err != nil {
		return err
	}
	defer closeIn()
	r, finish := c.withProgress("unsealing", r, size)
	defer finish()
	return writeOutput(out, c.stdout, func(w io.Writer) error {
		_, err := crypto.OpenStream(w, r, func(h crypto.EnvelopeHeader) ([]byte, error) {
			k, err := kms.Decrypt(ctx, h.KeyTag, h.WrappedKey, nil)
			if err != nil {
				return nil, fmt.Errorf("unwrap the data key with key %s: %w", h.KeyTag, err)
			}
			return k, nil
		})
		switch {
		case errors.Is(err, crypto.ErrNotEnvelope):
			return &hintError{errors.New("the input is not a file made by nkms seal"), "check --in"}
		case errors.Is(err, crypto.ErrDecrypt):
			return errors.New("the sealed file is corrupt, truncated or was changed")
		}
		return err
	})
}
