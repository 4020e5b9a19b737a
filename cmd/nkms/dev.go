package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// devCommand is `nkms dev`: the clock of a test server started with
// `nkms server --dev-clock`.
func devCommand(c *cli) *cobra.Command {
	cmd := c.clientCommand(&cobra.Command{Use: "dev", Short: "Move the clock of a test server (nkms server --dev-clock)"})
	advance := &cobra.Command{
		Use:   "advance DURATION",
		Short: "Move the server's clock forward; what comes due is destroyed or rotated before it answers",
		Long: `Move the clock of a server started with --dev-clock forward by DURATION (a Go
duration: 72h, 90m, 1h30m; days in hours, 720h is 30 days). The server then runs
its scheduler at the new time at once: every key whose pending-deletion window
has passed is destroyed and every key whose rotation date has come is rotated
before the command returns. Every date the API answers moves with the clock;
signatures keep the wall clock. Needs an operator's access key (an admin of
keystore 1). The clock never goes back, also across restarts on the same data dir.`,
		Example: `  nkms dev advance 72h     # past the pending-deletion window
  nkms dev advance 2160h   # 90 days: past the default rotation period`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return &hintError{fmt.Errorf("%q is not a duration", clip(args[0], 40)),
					"write a Go duration such as 72h, 90m or 1h30m; days in hours (720h is 30 days)"}
			}
			kms, err := c.client()
			if err != nil {
				return err
			}
			clock, err := kms.AdvanceClock(cmd.Context(), d)
			if err != nil {
				return c.explainDev("advance the clock", err)
			}
			if c.jsonOutput() {
				return c.printJSON(clockJSON(clock, true))
			}
			w := c.table()
			fmt.Fprintln(w, "NOW\tOFFSET\tDESTROYED\tROTATED\tFAILED")
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", formatClock(clock.Now), clock.Offset, clock.Destroyed, clock.Rotated, clock.Failed)
			if err := w.Flush(); err != nil {
				return err
			}
			if clock.Failed > 0 {
				c.note("%d due keys could not be destroyed or rotated; the server's log says why, and its scheduler tries again", clock.Failed)
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "clock",
		Short: "Show the server's clock and how far ahead of the wall clock it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			clock, err := kms.DevClock(cmd.Context())
			if err != nil {
				return c.explainDev("read the clock", err)
			}
			if c.jsonOutput() {
				return c.printJSON(clockJSON(clock, false))
			}
			w := c.table()
			fmt.Fprintln(w, "NOW\tOFFSET")
			fmt.Fprintf(w, "%s\t%s\n", formatClock(clock.Now), clock.Offset)
			return w.Flush()
		},
	}
	cmd.AddCommand(advance, show)
	return cmd
}

// formatClock prints the dev clock: UTC, to the millisecond (an advance of
// less than a second shows).
func formatClock(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// clockJSON is the --output json form of the dev clock, as the API answers
// it; the counts only after an advance.
func clockJSON(c *client.Clock, pass bool) any {
	type clock struct {
		Now    string `json:"now"`
		Offset string `json:"offset"`
	}
	now := clock{formatClock(c.Now), c.Offset.String()}
	if !pass {
		return now
	}
	return struct {
		clock
		Destroyed int `json:"destroyed"`
		Rotated   int `json:"rotated"`
		Failed    int `json:"failed"`
		Pruned    int `json:"pruned"`
	}{now, c.Destroyed, c.Rotated, c.Failed, c.Pruned}
}

// explainDev is explain with the hints of the dev clock's own refusals: a
// server without --dev-clock has no such route, and only an operator may
// move the clock.
func (c *cli) explainDev(what string, err error) error {
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return &hintError{fmt.Errorf("%s: %w", what, err), "the server runs without a dev clock: start it with nkms server --dev-clock (for tests only)"}
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.ErrorCode == "210":
		return &hintError{fmt.Errorf("%s: %w", what, err), "only an operator (an admin access key of keystore 1) may move the clock"}
	}
	return c.explain(what, err)
}
