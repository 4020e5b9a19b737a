package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/internal/server"
)

// rootKeyCommand is `nkms root-key`: offline operations on a stopped
// server's root key file.
func rootKeyCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "root-key",
		Short: "Operate on the root key file of a stopped server",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(migrateToHSMCommand(c))
	return cmd
}

func migrateToHSMCommand(c *cli) *cobra.Command {
	cfg := server.Config{}
	cmd := &cobra.Command{
		Use:   "migrate-to-hsm --data-dir DIR --hsm-module LIB --hsm-token LABEL --root-key-hsm LABEL",
		Short: "Wrap a plain root key file with a key in an HSM token (for --root-key-hsm)",
		Long: `Convert the root key file of a stopped server (--root-key-file, default
DIR/root.key) into one that holds the root key wrapped (AES-GCM) by a
non-extractable AES-256 key labelled --root-key-hsm in the token; the key is
generated in the token if it has none. The token's user PIN comes from
NKMS_HSM_PIN or --hsm-pin-file. Then start the server with the same
--hsm-module, --hsm-token and --root-key-hsm.

The server must be stopped: the command takes the data file's lock and refuses
while a server holds it. It checks the root key against the data file, writes
the wrapped file beside the old one, checks that it unwraps through the token
to the same root key, and only then renames it into place. A file already
wrapped by that key is left as it is.

Every copy of the old plain root key file (backups included) still unseals
every key: destroy them once the server runs with the wrapped file. Keep the
token's contents backed up instead: without the wrapping key, nothing opens.`,
		Example: `  NKMS_HSM_PIN=... nkms root-key migrate-to-hsm --data-dir /var/lib/nkms \
    --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token nkms --root-key-hsm nkms-root`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.DataDir == "" {
				return errors.New("--data-dir DIR is required: the data directory of the stopped server")
			}
			cfg.HSMPIN = c.getenv("NKMS_HSM_PIN")
			res, err := server.MigrateRootKeyToHSM(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if res.AlreadyWrapped {
				c.note("root key file %s is already wrapped by the token key %q: nothing to do", res.RootKeyFile, cfg.RootKeyHSM)
				return nil
			}
			if res.CreatedWrapKey {
				c.note("generated the wrapping key %q in token %q", cfg.RootKeyHSM, cfg.HSMToken)
			}
			if !res.DataFile {
				c.note("no data file in %s: the root key was not checked against one (an etcd node?)", cfg.DataDir)
			}
			c.note("root key file %s now holds the root key wrapped by the token key %q", res.RootKeyFile, cfg.RootKeyHSM)
			c.note("start the server with --hsm-module %s --hsm-token %s --root-key-hsm %s", cfg.HSMModule, cfg.HSMToken, cfg.RootKeyHSM)
			c.note("destroy every copy of the old plain root key file (backups too): each still unseals every key")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory of the stopped server")
	f.StringVar(&cfg.RootKeyFile, "root-key-file", "", "root key file to convert (default <data-dir>/root.key)")
	f.StringVar(&cfg.HSMModule, "hsm-module", "", "PKCS#11 module (.so) of the HSM")
	f.StringVar(&cfg.HSMToken, "hsm-token", "", "label of the token")
	f.StringVar(&cfg.HSMPINFile, "hsm-pin-file", "", "file holding the token's user PIN (instead of NKMS_HSM_PIN)")
	f.StringVar(&cfg.RootKeyHSM, "root-key-hsm", "", "label of the token's AES key that wraps the root key (generated if missing)")
	return cmd
}
