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
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := &cobra.Command{
		Use:           "nkms",
		Short:         "A key management service that speaks NAVER Cloud Platform's KMS API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serverCommand(stderr), accessKeyCommand(c), auditCommand(stderr))
	root.AddCommand(sealCommands(c)...)
	root.AddCommand(benchCommand(c), benchCeilingCommand(stderr), benchSeedCommand(stdout, stderr))
	return root.ExecuteContext(ctx)
}

// hintError is an error with a suggestion for the user.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }
