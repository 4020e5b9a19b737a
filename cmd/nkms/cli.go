package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/atomicfile"
)

// cli is what every client command shares: its streams, the connection
// flags, and the helpers that make the commands alike (input, output,
// confirmation, errors in words).
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	flags          clientFlags
}

// clientFlags are the connection and output flags of every client command.
type clientFlags struct {
	endpoint, profile, caCert string
	output                    string
}

// clientCommand gives cmd (a command or a group of them) the connection
// flags and --output.
func (c *cli) clientCommand(cmd *cobra.Command) *cobra.Command {
	c.connectionFlags(cmd)
	cmd.PersistentFlags().StringVarP(&c.flags.output, "output", "o", "table", "output format: table or json")
	return cmd
}

// connectionFlags gives cmd the flags that choose the server and credentials.
func (c *cli) connectionFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	f := &c.flags
	fs.StringVar(&f.endpoint, "endpoint", "", "base URL of the nkms server (env NKMS_ENDPOINT; default "+defaultEndpoint+")")
	fs.StringVar(&f.endpoint, "url", "", "same as --endpoint")
	fs.MarkHidden("url") //nolint:errcheck // the flag exists
	fs.StringVar(&f.profile, "profile", "", `profile of the profile file to use (env NKMS_PROFILE; default "default")`)
	fs.StringVar(&f.caCert, "ca-cert", "",
		"PEM file of the certificates to trust for https, e.g. the server's --dev certificate (env NKMS_CA_CERT)")
}

// settings resolves the connection settings (config.go).
func (c *cli) settings() (*clientSettings, error) {
	if c.flags.output != "" && c.flags.output != "table" && c.flags.output != "json" {
		return nil, fmt.Errorf("--output %q: use table or json", clip(c.flags.output, 20))
	}
	return c.flags.resolve(c.getenv)
}

// client returns a client with the resolved endpoint and credentials.
func (c *cli) client() (*client.Client, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	if s.accessKey.value == "" {
		return nil, &hintError{errors.New("no credentials"),
			"set NKMS_ACCESS_KEY and NKMS_SECRET_KEY (nkms server prints them on its first start), or save them with `nkms config set`"}
	}
	opts, err := s.clientOptions()
	if err != nil {
		return nil, err
	}
	return client.New(s.endpoint.value, s.accessKey.value, s.secretKey.value, opts...)
}

// clientOptions are the client options of the settings: the CA certificates to trust.
func (s *clientSettings) clientOptions() ([]client.Option, error) {
	if s.caCert.value == "" {
		return nil, nil
	}
	pool, err := readCertPool(s.caCert.value)
	if err != nil {
		return nil, err
	}
	return []client.Option{client.WithRootCAs(pool)}, nil
}

// cryptoClient is the client of the crypto commands (encrypt, sign, seal,
// ...): with NKMS_ACCESS_TOKEN set (nkms token create prints it), it sends that key access token instead of
// signing with an access key, as NAVER's token authentication does.
func (c *cli) cryptoClient() (*client.Client, error) {
	token := c.getenv("NKMS_ACCESS_TOKEN")
	if token == "" {
		return c.client()
	}
	return c.tokenClient(token)
}

// tokenClient returns a client of the resolved endpoint that sends token
// (an access or refresh token of a key) instead of signing.
func (c *cli) tokenClient(token string) (*client.Client, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	opts, err := s.clientOptions()
	if err != nil {
		return nil, err
	}
	return client.NewWithToken(s.endpoint.value, token, opts...)
}

// readCertPool reads a PEM file of certificates to trust.
func readCertPool(path string) (*x509.CertPool, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(text) {
		return nil, fmt.Errorf("ca certificate %s: no PEM certificate in the file", path)
	}
	return pool, nil
}

// tlsConfig is the client TLS configuration of the resolved --ca-cert (nil: Go's default).
func (c *cli) tlsConfig() (*tls.Config, error) {
	s, err := c.settings()
	if err != nil || s.caCert.value == "" {
		return nil, err
	}
	pool, err := readCertPool(s.caCert.value)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// jsonOutput reports whether --output json was asked for.
func (c *cli) jsonOutput() bool { return c.flags.output == "json" }

// printJSON writes v as indented JSON: the --output json form of every command.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table returns a writer of aligned columns on stdout; Flush it.
func (c *cli) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
}

// note writes a message for the person at the terminal on stderr.
func (c *cli) note(format string, args ...any) {
	fmt.Fprintf(c.stderr, "nkms: "+format+"\n", args...)
}

// maxInput bounds data read for one request: above every limit of the API,
// so that the server, not the CLI, says what the limit is.
const maxInput = 8 << 20

// readData returns the data of a command: its argument, the file --in, or
// stdin, in that order. Bytes are used as they are (binary-safe).
func (c *cli) readData(args []string, in string) ([]byte, error) {
	switch {
	case len(args) > 0 && in != "":
		return nil, errors.New("give the data as an argument or with --in, not both")
	case len(args) > 0:
		return []byte(args[0]), nil
	case in != "" && in != "-":
		f, err := os.Open(in)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readAllLimit(f, maxInput)
	}
	if c.stdinIsTerminal() {
		c.note("reading the data from the terminal; end it with Ctrl-D")
	}
	return readAllLimit(c.stdin, maxInput)
}

// readText is readData for text inputs (ciphertexts, signatures, tokens):
// surrounding white space, such as a final newline, is dropped.
func (c *cli) readText(args []string, in string) (string, error) {
	p, err := c.readData(args, in)
	return strings.TrimSpace(string(p)), err
}

// readAllLimit reads r to its end, failing past limit bytes.
func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	p, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(p)) > limit {
		return nil, fmt.Errorf("input is larger than %d MiB", limit>>20)
	}
	return p, nil
}

// writeData writes p to the file out (replacing it only once complete,
// mode 0600 as it may be plaintext) or to stdout for "" or "-".
func (c *cli) writeData(out string, p []byte) error {
	if out == "-" {
		out = ""
	}
	return writeOutput(out, c.stdout, func(w io.Writer) error {
		_, err := w.Write(p)
		return err
	})
}

// stdinIsTerminal reports whether stdin is a terminal.
func (c *cli) stdinIsTerminal() bool {
	f, ok := c.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// confirm asks the person at the terminal to type name before an action
// that cannot be undone (or only within a window). With yes it does not
// ask; without a terminal it refuses rather than act unasked.
func (c *cli) confirm(action, explain, name string, yes bool) error {
	if yes {
		return nil
	}
	if !c.stdinIsTerminal() {
		return &hintError{fmt.Errorf("%s needs confirmation and stdin is not a terminal", action),
			"pass --yes to " + action + " without a prompt"}
	}
	fmt.Fprintf(c.stderr, "%s\nType the key name %q to confirm: ", explain, name)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != name {
		return fmt.Errorf("%s cancelled: the name typed does not match", action)
	}
	return nil
}

// explain adds a hint in words to the errors people meet most, and names
// what failed.
func (c *cli) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", what, err)
	var ae *client.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && c.getenv("NKMS_ACCESS_TOKEN") != "":
		return &hintError{err, "NKMS_ACCESS_TOKEN is set: it must be an unexpired access token of this key, from an address the key's IP ACL allows"}
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return &hintError{err, "check the access key and secret key (nkms config show tells where they come from)"}
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return &hintError{err, "the access key's role or the key's ACL does not allow this"}
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return &hintError{err, "nkms key list shows the key tags this access key can see"}
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		return &hintError{err, "the key's state does not allow this: only an enabled key encrypts, decrypts and signs, and a disabled version decrypts nothing (nkms key info and nkms key versions show them)"}
	case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
		return &hintError{err, "the server's rate limit refused the call; try again in a second"}
	case errors.As(err, &oe) && oe.Op == "dial":
		s, _ := c.settings()
		endpoint := defaultEndpoint
		if s != nil {
			endpoint = s.endpoint.value
		}
		return &hintError{err, "is nkms server running at " + endpoint + "? (set --endpoint or NKMS_ENDPOINT)"}
	case errors.As(err, &ne) && ne.Timeout():
		return &hintError{err, "the server did not answer in time"}
	}
	return err
}

// completeKeyArg completes a command's first argument with the key tags the
// credentials can see (shown with their names where the shell can).
func (c *cli) completeKeyArg(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return c.completeKeyFlag(cmd, args, toComplete)
}

// completeKeyFlag completes a --key flag with key tags; without
// credentials or a server it offers nothing, quietly.
func (c *cli) completeKeyFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	kms, err := c.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
	defer cancel()
	var out []cobra.Completion
	for page := 1; page <= maxCompletionPages; page++ {
		list, err := kms.ListKeys(ctx, page, 100)
		if err != nil {
			break
		}
		for _, k := range list.KeyList {
			if strings.HasPrefix(k.KeyTag, toComplete) {
				out = append(out, cobra.CompletionWithDesc(k.KeyTag, fmt.Sprintf("%s (%s, %s)", k.KeyName, k.KeyType, k.Status)))
			}
		}
		if page >= list.TotalPageNo {
			break
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// maxCompletionPages bounds the key list read for one completion (100 keys a page).
const maxCompletionPages = 20

// timeLeft says in words how long until the millisecond time ms, from now:
// "71h 58m", "3m", "less than a minute" or "overdue" (the scheduler has
// not run yet).
func timeLeft(ms int64, now time.Time) string {
	d := time.UnixMilli(ms).Sub(now)
	switch {
	case d <= 0:
		return "overdue"
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// openInput opens path, or stdin for "" or "-", and tells its size when it
// is a regular file (0 otherwise).
func openInput(path string, stdin io.Reader) (r io.Reader, size int64, closeIt func(), err error) {
	if path == "" || path == "-" {
		return stdin, 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// writeOutput runs write on stdout for "", or on the file path through
// atomicfile.Write (mode 0600): a failed run never leaves a partial file
// under the name asked for.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	return atomicfile.Write(path, write, nil)
}
