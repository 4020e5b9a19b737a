package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
	seedfile "github.com/nkms/nkms/internal/seed"
)

// seedCommand is `nkms seed`: seed files (nkms server --seed FILE).
func seedCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "seed", Short: "Export and check seed files, which declare access keys and keys (nkms server --seed)"}
	var material bool
	var out string
	export := &cobra.Command{
		Use:   "export [--material] [--out FILE]",
		Short: "Write the access keys and keys of a running server as a seed file (needs an admin access key of keystore 1)",
		Long: `Write the declarations of a running server as a seed file: every access key, and
every key of each keystore that has an access key, by tag, with its settings.
Keys pending deletion are left out (listed in a comment).

Without --material the file has no key material (a server seeded with it makes
new material under the same tags) and each secret is a ${NKMS_SECRET_<ID>}
placeholder read from the environment when the file is used. --material adds
every key version's material and every access key's secret in plaintext; the
server gives them only when started with --allow-material-export.`,
		Example: `  nkms seed export --out seed.yaml
  nkms seed export --material --out seed.yaml   # server started with --allow-material-export`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			x, err := kms.ExportSeed(cmd.Context(), material)
			var ae *client.Error
			switch {
			case errors.As(err, &ae) && ae.ErrorCode == "210":
				return &hintError{fmt.Errorf("seed export: %w", err), "only an admin access key of keystore 1 may export the seed"}
			case errors.As(err, &ae) && ae.Status == 403 && material:
				return &hintError{fmt.Errorf("seed export: %w", err),
					"drop --material for a file without material and secrets, or restart the server with --allow-material-export"}
			case err != nil:
				return c.explain("seed export", err)
			}
			f := fileOf(x)
			header := []string{"nkms seed export: start a server with it with nkms server --seed FILE"}
			for _, a := range f.AccessKeys {
				if a.SecretKey == "" {
					header = append(header, "secrets are read from the environment: set each NKMS_SECRET_<ID> below")
					break
				}
			}
			text, err := seedfile.Marshal(f, header...)
			if err != nil {
				return err
			}
			if out == "-" {
				out = ""
			}
			if err := writeOutput(out, c.stdout, func(w io.Writer) error { _, err := w.Write(text); return err }); err != nil {
				return err
			}
			if material {
				c.note("the seed holds key material and secrets in plaintext: keep it as you keep the keys")
			}
			if out != "" {
				c.note("seed written to %s: %d access key(s), %d key(s)", out, len(f.AccessKeys), len(f.Keys))
			}
			return nil
		},
	}
	c.connectionFlags(export)
	export.Flags().BoolVar(&material, "material", false, "include key material and secrets in plaintext (the server must allow it)")
	export.Flags().StringVar(&out, "out", "", "file to write (mode 0600, replaced only once complete; default: stdout)")

	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a seed file as nkms server --seed reads it, ${VAR} from the environment, without a server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readFileLimit(args[0], seedfile.MaxSize)
			if err != nil {
				return err
			}
			sd, err := seedfile.Parse(data, os.LookupEnv)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c.note("%s: %d access key(s), %d key(s), no problem found", args[0], len(sd.AccessKeys), len(sd.Keys))
			return nil
		},
	}
	cmd.AddCommand(export, check)
	return cmd
}

// readFileLimit reads a file of at most limit bytes.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimit(f, limit)
}

// fileOf is the seed file of an export, field for field.
func fileOf(x *client.Seed) seedfile.File {
	f := seedfile.File{Skipped: x.Skipped}
	for _, a := range x.AccessKeys {
		f.AccessKeys = append(f.AccessKeys, seedfile.AccessKey{AccessKey: a.AccessKey, SecretKey: a.SecretKey, Keystore: a.Keystore, Role: a.Role})
	}
	for _, k := range x.Keys {
		d := seedfile.Key{Keystore: k.Keystore, Name: k.Name, Type: k.Type, ProtectionType: k.ProtectionType, Convergent: k.Convergent,
			Tag: k.Tag, Material: k.Material, Memo: k.Memo, Enabled: k.Enabled}
		for _, v := range k.Versions {
			d.Versions = append(d.Versions, seedfile.Version{Material: v.Material})
		}
		if r := k.AutoRotation; r != nil {
			d.AutoRotation = &seedfile.Rotation{Enabled: r.Enabled, PeriodDays: r.PeriodDays}
		}
		f.Keys = append(f.Keys, d)
	}
	return f
}
