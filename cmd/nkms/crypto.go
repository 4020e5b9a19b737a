package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nkms/nkms/client"
)

// cryptoFlags are the flags the cryptographic commands share; each command
// registers the ones it uses.
type cryptoFlags struct {
	key         string // --key: tag of the KMS key
	in, out     string // --in, --out: input and output files
	context     string // --context: encryption context as text
	contextFile string // --context-file: encryption context from a file
}

// cryptoCommands are the commands that use a key: encrypt, decrypt,
// reencrypt, data-key, sign, verify and public-key.
func cryptoCommands(c *cli) []*cobra.Command {
	return []*cobra.Command{
		encryptCommand(c), decryptCommand(c), reencryptCommand(c), dataKeyCommand(c),
		signCommand(c), verifyCommand(c), publicKeyCommand(c),
	}
}

// cryptoKeyFlags gives cmd the connection flags, -o, and a required --key
// with completion of key tags.
func (c *cli) cryptoKeyFlags(cmd *cobra.Command, f *cryptoFlags, usage string) {
	c.clientCommand(cmd)
	cmd.Flags().StringVar(&f.key, "key", "", usage)
	cmd.MarkFlagRequired("key")                              //nolint:errcheck // the flag exists
	cmd.RegisterFlagCompletionFunc("key", c.completeKeyFlag) //nolint:errcheck // the flag exists
}

// cryptoInOutFlags gives cmd --in and --out.
func cryptoInOutFlags(cmd *cobra.Command, f *cryptoFlags, in, out string) {
	if in != "" {
		cmd.Flags().StringVar(&f.in, "in", "", in)
	}
	if out != "" {
		cmd.Flags().StringVar(&f.out, "out", "", out)
	}
}

// cryptoContextFlags gives cmd --context and --context-file.
func cryptoContextFlags(cmd *cobra.Command, f *cryptoFlags) {
	cmd.Flags().StringVar(&f.context, "context", "",
		"encryption context as text, at most 50 bytes (required by convergent keys)")
	cmd.Flags().StringVar(&f.contextFile, "context-file", "", "file whose bytes are the encryption context")
	cmd.MarkFlagsMutuallyExclusive("context", "context-file")
}

// encContext returns the encryption context of --context or --context-file
// (nil when neither is given).
func (f *cryptoFlags) encContext() ([]byte, error) {
	if f.contextFile != "" {
		p, err := os.ReadFile(f.contextFile)
		if err != nil {
			return nil, fmt.Errorf("context file: %w", err)
		}
		return p, nil
	}
	if f.context == "" {
		return nil, nil
	}
	return []byte(f.context), nil
}

// cryptoEmit writes the result of a command to --out or stdout: v as indented
// JSON with -o json, text otherwise.
func (c *cli) cryptoEmit(out string, v any, text []byte) error {
	if !c.jsonOutput() {
		return c.writeData(out, text)
	}
	p, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return c.writeData(out, append(p, '\n'))
}

// cryptoLine returns s followed by a newline, as bytes.
func cryptoLine(s string) []byte { return []byte(s + "\n") }

// encryptCommand is `nkms encrypt`.
func encryptCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "encrypt --key TAG [DATA | --in FILE] [--context TEXT] [--out FILE]",
		Short: "Encrypt data (at most 32 KiB; 190 bytes with RSA2048) with a key's current version",
		Long: `Encrypt data with the current version of a key (AES256 or RSA2048).

The data is the argument, else the file --in, else stdin, used byte for byte
(a final newline is part of the data). The ciphertext, ncpkms:v<N>:<Base64>,
is printed on one line; keep it whole, its prefix names the key version that
decrypts it. Convergent keys need --context (the same one for decrypt).

With -o json: {"keyTag": ..., "ciphertext": ...}.`,
		Example: `  nkms encrypt --key $TAG 'my secret'
  nkms encrypt --key $TAG --in password.txt --out password.enc
  printf %s "$DB_PASSWORD" | nkms encrypt --key $TAG
  nkms encrypt --key $CONVERGENT_TAG --context user-42 alice@example.com`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			encCtx, err := f.encContext()
			if err != nil {
				return err
			}
			data, err := c.readData(args, f.in)
			if err != nil {
				return err
			}
			defer clear(data)
			ct, err := kms.Encrypt(cmd.Context(), f.key, data, encCtx)
			if err != nil {
				return c.explain("encrypt", err)
			}
			return c.cryptoEmit(f.out, struct {
				KeyTag     string `json:"keyTag"`
				Ciphertext string `json:"ciphertext"`
			}{f.key, ct}, cryptoLine(ct))
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key that encrypts (AES256 or RSA2048)")
	cryptoInOutFlags(cmd, &f, "file to encrypt (default: the argument, else stdin)", "where to write the ciphertext (default: stdout)")
	cryptoContextFlags(cmd, &f)
	return cmd
}

// decryptCommand is `nkms decrypt`.
func decryptCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "decrypt --key TAG [CIPHERTEXT | --in FILE] [--context TEXT] [--out FILE]",
		Short: "Decrypt a ciphertext of nkms encrypt and write the plaintext bytes",
		Long: `Decrypt a ciphertext (ncpkms:v<N>:...) with the key version its prefix names.

The ciphertext is the argument, else the file --in, else stdin; white space
around it is ignored. The plaintext is written exactly as it was encrypted,
byte for byte, with no newline added, to stdout or to --out (a file of mode
0600, written only when decryption succeeded). Convergent keys need the
--context used to encrypt.

With -o json: {"keyTag": ..., "plaintext": <Base64>}.`,
		Example: `  nkms decrypt --key $TAG ncpkms:v1:XjsPWPjqPrBi1N2DupSiSbX/ATkGmKA
  nkms decrypt --key $TAG --in password.enc --out password.txt
  DB_PASSWORD=$(nkms decrypt --key $TAG --in password.enc)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			encCtx, err := f.encContext()
			if err != nil {
				return err
			}
			ct, err := c.readText(args, f.in)
			if err != nil {
				return err
			}
			pt, err := kms.Decrypt(cmd.Context(), f.key, ct, encCtx)
			if err != nil {
				return c.explain("decrypt", err)
			}
			defer clear(pt)
			return c.cryptoEmit(f.out, struct {
				KeyTag    string `json:"keyTag"`
				Plaintext []byte `json:"plaintext"`
			}{f.key, pt}, pt)
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key that encrypted the data")
	cryptoInOutFlags(cmd, &f, "file holding the ciphertext (default: the argument, else stdin)",
		"where to write the plaintext (default: stdout)")
	cryptoContextFlags(cmd, &f)
	return cmd
}

// reencryptCommand is `nkms reencrypt`.
func reencryptCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "reencrypt --key TAG [CIPHERTEXT | --in FILE] [--context TEXT] [--out FILE]",
		Short: "Re-encrypt a ciphertext with the key's current version (after a rotation)",
		Long: `Re-encrypt a ciphertext with the key's current version, on the server: the
plaintext never reaches this machine. Use it after a rotation to move old
ciphertexts to the new version. The ciphertext is read as by nkms decrypt;
the new one is printed on one line, as by nkms encrypt.

With -o json: {"keyTag": ..., "ciphertext": ...}.`,
		Example: `  nkms reencrypt --key $TAG --in password.enc --out password.enc
  nkms reencrypt --key $TAG ncpkms:v1:XjsPWPjqPrBi1N2DupSiSbX/ATkGmKA`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			encCtx, err := f.encContext()
			if err != nil {
				return err
			}
			ct, err := c.readText(args, f.in)
			if err != nil {
				return err
			}
			nct, err := kms.ReEncrypt(cmd.Context(), f.key, ct, encCtx)
			if err != nil {
				return c.explain("re-encrypt", err)
			}
			return c.cryptoEmit(f.out, struct {
				KeyTag     string `json:"keyTag"`
				Ciphertext string `json:"ciphertext"`
			}{f.key, nct}, cryptoLine(nct))
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key that encrypted the data")
	cryptoInOutFlags(cmd, &f, "file holding the ciphertext (default: the argument, else stdin)",
		"where to write the new ciphertext (default: stdout)")
	cryptoContextFlags(cmd, &f)
	return cmd
}

// dataKeyCommand is `nkms data-key`.
func dataKeyCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	var bits int
	var plain bool
	cmd := &cobra.Command{
		Use:   "data-key --key TAG [--bits 128|256|512] [--context TEXT] [--plaintext] [--out FILE]",
		Short: "Make a fresh data key, wrapped by a KMS key (envelope encryption)",
		Long: `Make a fresh random data key on the server (Create Custom Key) and print it
wrapped (encrypted) by the KMS key. Store the wrapped key next to the data it
protects; nkms decrypt --key TAG unwraps it when it is needed.

Output, without --plaintext: the wrapped key, ncpkms:v<N>:..., on one line.
With --plaintext, two labelled lines, wrapped key first:

  ciphertext: ncpkms:v<N>:...
  plaintext: <Base64 of the raw key>

With -o json: {"keyTag": ..., "keyVersion": N, "ciphertext": ...} and, with
--plaintext, "plaintext": <Base64>.

The plaintext key is a secret: prefer --out FILE (mode 0600) to a terminal,
and keep it only as long as it is used.`,
		Example: `  nkms data-key --key $TAG > data.key.enc
  nkms data-key --key $TAG --bits 512 --plaintext --out data.key
  nkms data-key --key $TAG --plaintext | sed -n 's/^plaintext: //p' | base64 -d > key.bin
  nkms data-key --key $TAG --plaintext -o json | jq -r .plaintext`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			encCtx, err := f.encContext()
			if err != nil {
				return err
			}
			req := client.CustomKeyRequest{RequestPlainKey: plain, Bits: bits, Context: encCtx}
			dk, err := kms.CreateCustomKey(cmd.Context(), f.key, req)
			if err != nil {
				return c.explain("create data key", err)
			}
			defer clear(dk.Plaintext)
			text := cryptoLine(dk.Ciphertext)
			if plain {
				text = cryptoLine("ciphertext: " + dk.Ciphertext + "\nplaintext: " + base64.StdEncoding.EncodeToString(dk.Plaintext))
				if (f.out == "" || f.out == "-") && c.cryptoStdoutIsTerminal() {
					c.note("the plaintext data key is a secret: do not leave it in a terminal's scrollback (see --out)")
				}
			}
			return c.cryptoEmit(f.out, struct {
				KeyTag     string `json:"keyTag"`
				KeyVersion int    `json:"keyVersion,omitempty"`
				Ciphertext string `json:"ciphertext"`
				Plaintext  []byte `json:"plaintext,omitempty"`
			}{f.key, dk.KeyVersion, dk.Ciphertext, dk.Plaintext}, text)
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key that wraps the data key (AES256 or RSA2048)")
	cryptoInOutFlags(cmd, &f, "", "where to write the output (default: stdout; a file is made with mode 0600)")
	cryptoContextFlags(cmd, &f)
	cmd.Flags().IntVar(&bits, "bits", 256, "size of the data key: 128, 256 or 512")
	cmd.Flags().BoolVar(&plain, "plaintext", false, "also print the raw data key, in Base64 (a secret)")
	return cmd
}

// signCommand is `nkms sign`.
func signCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "sign --key TAG [DATA | --in FILE] [--out FILE]",
		Short: "Sign data (at most 8 KiB) with an RSA2048 or ECDSA key",
		Long: `Sign data with the current version of an asymmetric key (RSA2048 or ECDSA);
the server hashes the data. The data is the argument, else the file --in,
else stdin, used byte for byte (at most 8 KiB: to sign a larger file, sign
its digest). The signature, ncpkms:v<N>:<Base64>, is printed on one line;
nkms verify checks it.

With -o json: {"keyTag": ..., "signature": ...}.`,
		Example: `  nkms sign --key $TAG 'release 1.2.3'
  nkms sign --key $TAG --in manifest.json --out manifest.sig
  sha256sum release.tar.gz | nkms sign --key $TAG > release.sig`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			data, err := c.readData(args, f.in)
			if err != nil {
				return err
			}
			sig, err := kms.Sign(cmd.Context(), f.key, data)
			if err != nil {
				return c.explain("sign", err)
			}
			return c.cryptoEmit(f.out, struct {
				KeyTag    string `json:"keyTag"`
				Signature string `json:"signature"`
			}{f.key, sig}, cryptoLine(sig))
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the signing key (RSA2048 or ECDSA)")
	cryptoInOutFlags(cmd, &f, "file to sign (default: the argument, else stdin)", "where to write the signature (default: stdout)")
	return cmd
}

// errInvalidSignature is the error of nkms verify when the signature does
// not match: the exit status then says so to scripts.
var errInvalidSignature = errors.New("signature does not verify")

// verifyCommand is `nkms verify`.
func verifyCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	var sig, sigFile string
	cmd := &cobra.Command{
		Use:   "verify --key TAG --signature SIG|--signature-file FILE [DATA | --in FILE]",
		Short: "Check a signature of nkms sign; the exit status says whether it is valid",
		Long: `Check that a signature made by nkms sign matches the data, with the key
version its prefix names. The data is read as by nkms sign. Prints valid and
exits 0, or prints invalid and exits 1, so that scripts can test it.

With -o json: {"keyTag": ..., "valid": true|false} (and the same exit status).`,
		Example: `  nkms verify --key $TAG --signature "$SIG" 'release 1.2.3'
  nkms verify --key $TAG --signature-file manifest.sig --in manifest.json
  if nkms verify --key $TAG --signature-file release.sig --in digest.txt; then deploy; fi`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			if sigFile != "" {
				p, err := os.ReadFile(sigFile)
				if err != nil {
					return fmt.Errorf("signature file: %w", err)
				}
				sig = strings.TrimSpace(string(p))
			}
			data, err := c.readData(args, f.in)
			if err != nil {
				return err
			}
			valid, err := kms.Verify(cmd.Context(), f.key, data, sig)
			if err != nil {
				return c.explain("verify", err)
			}
			word := "invalid"
			if valid {
				word = "valid"
			}
			if err := c.cryptoEmit("", struct {
				KeyTag string `json:"keyTag"`
				Valid  bool   `json:"valid"`
			}{f.key, valid}, cryptoLine(word)); err != nil {
				return err
			}
			if !valid {
				return errInvalidSignature
			}
			return nil
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key that signed (RSA2048 or ECDSA)")
	cryptoInOutFlags(cmd, &f, "file that was signed (default: the argument, else stdin)", "")
	cmd.Flags().StringVar(&sig, "signature", "", "the signature, ncpkms:v<N>:...")
	cmd.Flags().StringVar(&sigFile, "signature-file", "", "file holding the signature")
	cmd.MarkFlagsOneRequired("signature", "signature-file")
	cmd.MarkFlagsMutuallyExclusive("signature", "signature-file")
	return cmd
}

// publicKeyCommand is `nkms public-key`.
func publicKeyCommand(c *cli) *cobra.Command {
	var f cryptoFlags
	var version int
	cmd := &cobra.Command{
		Use:   "public-key --key TAG [--version N] [--out FILE]",
		Short: "Print the PEM public key of an RSA2048 or ECDSA key",
		Long: `Print the public key of an asymmetric key (RSA2048 or ECDSA) in PEM, of its
current version or of --version N. With it, anyone can check signatures
(or, for RSA2048, encrypt) without access to nkms, e.g. with openssl.

With -o json: {"keyTag": ..., "publicKey": <PEM>}, and "version": N when
--version was given.`,
		Example: `  nkms public-key --key $TAG > key.pem
  nkms public-key --key $TAG --version 2 --out key-v2.pem
  openssl pkey -pubin -in key.pem -noout -text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.cryptoClient()
			if err != nil {
				return err
			}
			if version < 0 {
				return fmt.Errorf("--version %d: versions start at 1", version)
			}
			pem, err := kms.PublicKey(cmd.Context(), f.key, version)
			if err != nil {
				return c.explain("get public key", err)
			}
			text := pem
			if !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			return c.cryptoEmit(f.out, struct {
				KeyTag    string `json:"keyTag"`
				Version   int    `json:"version,omitempty"`
				PublicKey string `json:"publicKey"`
			}{f.key, version, pem}, []byte(text))
		},
	}
	c.cryptoKeyFlags(cmd, &f, "tag of the key (RSA2048 or ECDSA)")
	cryptoInOutFlags(cmd, &f, "", "where to write the PEM (default: stdout)")
	cmd.Flags().IntVar(&version, "version", 0, "key version (default: the current one)")
	return cmd
}

// cryptoStdoutIsTerminal reports whether stdout is a terminal.
func (c *cli) cryptoStdoutIsTerminal() bool {
	f, ok := c.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
