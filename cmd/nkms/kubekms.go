//go:build !noetcd

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/internal/kubekms"
)

// kubeKMSPluginCommand is `nkms kube-kms-plugin`: a Kubernetes KMS v2
// plugin (internal/kubekms) serving kube-apiserver on a Unix socket, with a
// client of the resolved endpoint and credentials, as every client command
// has them (cli.go, config.go). It links gRPC, so the bbolt-only build
// (-tags noetcd) leaves it out (kubekms_noetcd.go).
func kubeKMSPluginCommand(c *cli) *cobra.Command {
	var listen, keyTag string
	var timeout, probeTTL time.Duration
	cmd := &cobra.Command{
		Use:   "kube-kms-plugin --listen unix:///PATH --key-tag TAG",
		Short: "Serve kube-apiserver as a Kubernetes KMS v2 plugin, wrapping its keys with an nkms key",
		Long: `Serve kube-apiserver as a Kubernetes KMS v2 plugin on a Unix socket: the
data encryption keys that kube-apiserver encrypts secrets with are wrapped
by the key --key-tag of an nkms server, or of NAVER Cloud KMS (the plugin
speaks only NAVER's KMS API 2.0).

The server and credentials are found as for every client command: --endpoint
or NKMS_ENDPOINT, NKMS_ACCESS_KEY and NKMS_SECRET_KEY (or NAVER's
NCP_ACCESS_KEY and NCP_SECRET_KEY, or a profile: see nkms config --help), or
a key's access token in NKMS_ACCESS_TOKEN; https with --ca-cert.

The key_id it reports is "<key tag>:v<version>": it changes when the key
rotates, and kube-apiserver then makes a new data key; values written
before keep decrypting. Status is "ok" only after an encrypt and decrypt
probe that succeeded within --probe-ttl. The socket is made with mode 0600;
a stale socket file is replaced, and the socket is removed on SIGTERM.
See docs/kubernetes.md for kube-apiserver's EncryptionConfiguration.`,
		Example: `  nkms kube-kms-plugin --listen unix:///var/run/kmsplugin/kms.sock --key-tag $TAG`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" || keyTag == "" {
				return &hintError{errors.New("--listen and --key-tag are required"),
					"nkms kube-kms-plugin --listen unix:///var/run/kmsplugin/kms.sock --key-tag TAG (nkms key list shows the tags)"}
			}
			if timeout <= 0 || probeTTL <= 0 {
				return fmt.Errorf("--timeout and --probe-ttl must be positive")
			}
			path, err := kubekms.SocketPath(listen)
			if err != nil {
				return err
			}
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(c.stderr, nil))
			p, err := kubekms.New(kubekms.Config{KMS: kms, KeyTag: keyTag, Timeout: timeout, ProbeTTL: probeTTL, Logger: log})
			if err != nil {
				return err
			}
			ln, err := kubekms.Listen(path)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			c.note("kube-kms-plugin serving on unix://%s (key %s, %s)", path, keyTag, kms)
			return kubekms.Serve(cmd.Context(), ln, p, log)
		},
	}
	c.connectionFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "Unix socket to serve on, unix:///path/to/kms.sock (the endpoint of the EncryptionConfiguration)")
	f.StringVar(&keyTag, "key-tag", "", "tag of the key that wraps kube-apiserver's data keys")
	f.DurationVar(&timeout, "timeout", kubekms.DefaultTimeout, "longest time one Encrypt or Decrypt (or Status probe) waits for the KMS, retries included; keep it below the EncryptionConfiguration's timeout")
	f.DurationVar(&probeTTL, "probe-ttl", kubekms.DefaultProbeTTL, "how long a successful encrypt and decrypt probe keeps Status ok")
	cmd.RegisterFlagCompletionFunc("key-tag", c.completeKeyFlag) //nolint:errcheck // the flag exists
	return cmd
}
