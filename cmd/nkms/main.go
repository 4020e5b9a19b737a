// Command nkms is a key management server that speaks NAVER Cloud Platform's
// KMS API, and its command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nkms: %v\n", err)
		var h interface{ Hint() string }
		if errors.As(err, &h) && h.Hint() != "" {
			fmt.Fprintf(os.Stderr, "nkms: hint: %s\n", h.Hint())
		}
		os.Exit(1)
	}
}

// run executes the command line args; it is main without the process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	root := rootCommand(&cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv})
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// rootCommand is the whole command tree, writing to c's streams (the docs
// check, docs_test.go, walks it too).
func rootCommand(c *cli) *cobra.Command {
	stdout, stderr := c.stdout, c.stderr
	root := &cobra.Command{
		Use:   "nkms",
		Short: "A key management service that speaks NAVER Cloud Platform's KMS API",
		Long: `nkms is a key management server that speaks NAVER Cloud Platform's KMS API,
and its command-line client.

Getting started:
  nkms server                          # start a server; it prints an access key once
  export NKMS_ACCESS_KEY=... NKMS_SECRET_KEY=...
  TAG=$(nkms key create --name app)    # a new AES256 key; prints its tag
  nkms encrypt --key $TAG 'hello' > hello.enc
  nkms decrypt --key $TAG --in hello.enc
  nkms key list

Client commands find the server and credentials in flags, the environment
or a profile file: see nkms config --help.`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	group := func(id, title string, cmds ...*cobra.Command) {
		root.AddGroup(&cobra.Group{ID: id, Title: title})
		for _, cmd := range cmds {
			cmd.GroupID = id
			root.AddCommand(cmd)
		}
	}
	group("keys", "Keys:", keyCommand(c), aclCommand(c), tokenCommand(c), logsCommand(c))
	group("crypto", "Encryption and signatures:", append(cryptoCommands(c), sealCommands(c)...)...)
	group("setup", "Running and configuring nkms:", append([]*cobra.Command{serverCommand(stderr), configCommand(c), accessKeyCommand(c),
		auditCommand(stderr), seedCommand(c), devCommand(c), healthcheckCommand(c), rootKeyCommand(c)}, backupCommands(c)...)...)
	group("kube", "Kubernetes:", kubeKMSPluginCommand(c))
	group("bench", "Measuring:", benchCommand(c), benchCeilingCommand(stderr), benchSeedCommand(stdout, stderr))
	root.SetHelpCommandGroupID("setup")
	root.SetCompletionCommandGroupID("setup")
	return root
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v + " " + bi.GoVersion
}

// hintError is an error with a suggestion for the user.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
