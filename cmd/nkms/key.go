package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// keyCommand is `nkms key`: the life of a key, from create to delete
// (ncp-kms-api.md §6.1 and §6.2). Output formats are in key_format.go.
func keyCommand(c *cli) *cobra.Command {
	cmd := c.clientCommand(&cobra.Command{Use: "key", Short: "Create, list, rotate, disable and delete keys"})
	cmd.AddCommand(
		keyCreateCommand(c), keyListCommand(c), keyInfoCommand(c),
		keyStateCommand(c, "enable", "Enable a disabled key", "enabled", (*client.Client).EnableKey),
		keyStateCommand(c, "disable", "Disable a key: it refuses every crypto call until enabled", "disabled", (*client.Client).DisableKey),
		keyRenameCommand(c), keyMemoCommand(c),
		keyRotateCommand(c), keyVersionsCommand(c),
		keyVersionCommand(c, "version-enable", "Enable one version of a key", "enabled", (*client.Client).EnableVersion),
		keyVersionCommand(c, "version-disable", "Disable one version of a key (never the current one)", "disabled", (*client.Client).DisableVersion),
		keyAutoRotationCommand(c),
		keyRequestDeletionCommand(c), keyCancelDeletionCommand(c), keyDeleteCommand(c),
	)
	return cmd
}

// keyRunner is the body of a key command, given its client.
type keyRunner func(ctx context.Context, kms *client.Client, args []string) error

// keyRun makes the RunE of a key command: it connects, then runs run.
func keyRun(c *cli, run keyRunner) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		kms, err := c.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), kms, args)
	}
}

// keyArgs checks that a key command has exactly n arguments, and says the
// usage line when it does not.
func keyArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		noun := "arguments"
		if n == 1 {
			noun = "argument"
		}
		return &hintError{fmt.Errorf("%s wants %d %s, got %d", strings.TrimPrefix(cmd.CommandPath(), "nkms "), n, noun, len(args)),
			"usage: " + cmd.UseLine()}
	}
}

// keyCreateCommand is `nkms key create`.
func keyCreateCommand(c *cli) *cobra.Command {
	var req client.CreateKeyRequest
	cmd := &cobra.Command{
		Use:   "create --name NAME [--type AES256|RSA2048|ECDSA]",
		Short: "Create a key and print its key tag",
		Example: `  TAG=$(nkms key create --name app)
  nkms key create --name signer --type ECDSA --memo "release signing"
  nkms key create --name db --auto-rotation --rotation-period 30`,
		Args: keyArgs(0),
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, _ []string) error {
			if err := checkCreate(&req); err != nil {
				return err
			}
			k, err := kms.CreateKey(ctx, req)
			if err != nil {
				return c.explain("create key", err)
			}
			if c.jsonOutput() {
				return c.printJSON(k)
			}
			if _, err := fmt.Fprintln(c.stdout, k.KeyTag); err != nil {
				return err
			}
			c.note("created key %q (%s), tag %s", k.KeyName, k.KeyType, k.KeyTag)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.KeyName, "name", "", "key name: 3-15 letters, digits, - or _, starting with a letter")
	f.StringVar(&req.KeyType, "type", "AES256", "key type: AES256, RSA2048 or ECDSA")
	f.StringVar(&req.Memo, "memo", "", "free text about the key, up to 100 characters")
	f.BoolVar(&req.IsAutoRotation, "auto-rotation", false, "rotate the key automatically")
	f.IntVar(&req.RotationPeriod, "rotation-period", 0, "days between automatic rotations, 1-730 (needs --auto-rotation; default 90)")
	f.BoolVar(&req.IsConvergent, "convergent", false, "same plaintext and context give the same ciphertext (AES256 only)")
	f.StringVar(&req.ProtectionType, "protection", "BASIC", "protection type: BASIC or COMMON_HSM")
	cmd.MarkFlagRequired("name") //nolint:errcheck // the flag exists
	return cmd
}

// checkCreate checks the flags of `key create` that the CLI can judge
// alone, so that a typo gets an answer naming the flag, and upper-cases
// the type and protection.
func checkCreate(req *client.CreateKeyRequest) error {
	req.KeyType = strings.ToUpper(req.KeyType)
	req.ProtectionType = strings.ToUpper(req.ProtectionType)
	switch req.KeyType {
	case "AES256", "RSA2048", "ECDSA":
	default:
		return fmt.Errorf("--type %q: use AES256, RSA2048 or ECDSA", clip(req.KeyType, 20))
	}
	switch req.ProtectionType {
	case "BASIC", "COMMON_HSM":
	default:
		return fmt.Errorf("--protection %q: use BASIC or COMMON_HSM", clip(req.ProtectionType, 20))
	}
	if req.RotationPeriod != 0 && !req.IsAutoRotation {
		return &hintError{fmt.Errorf("--rotation-period needs --auto-rotation"),
			"add --auto-rotation, or leave out --rotation-period"}
	}
	return checkPeriod("--rotation-period", req.RotationPeriod, true)
}

// checkPeriod checks a rotation period flag: 1-730 days (0 too when zeroOK,
// meaning the server's default).
func checkPeriod(flag string, days int, zeroOK bool) error {
	if (days == 0 && zeroOK) || (days >= 1 && days <= 730) {
		return nil
	}
	return fmt.Errorf("%s %d: use 1 to 730 days", flag, days)
}

// keyListCommand is `nkms key list`. Without --page it reads every page.
// An empty keystore prints nothing on stdout (so that scripts reading
// stdout see no rows, and no header to skip) and "nkms: no keys" on
// stderr; -o json prints [].
func keyListCommand(c *cli) *cobra.Command {
	var page, size int
	cmd := &cobra.Command{
		Use:   "list [--page N] [--page-size N]",
		Short: "List the keys of the keystore, newest first",
		Args:  keyArgs(0),
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, _ []string) error {
			if page < 0 || size < 0 {
				return fmt.Errorf("--page and --page-size must be positive")
			}
			keys, err := listKeys(ctx, kms, page, size)
			if err != nil {
				return c.explain("list keys", err)
			}
			if c.jsonOutput() {
				return c.printJSON(keys)
			}
			if len(keys) == 0 {
				c.note("no keys")
				return nil
			}
			return c.printKeyList(keys, time.Now())
		}),
	}
	cmd.Flags().IntVar(&page, "page", 0, "read only this page (from 1); default: every page")
	cmd.Flags().IntVar(&size, "page-size", 0, "keys per page, 1-200 (default 100)")
	return cmd
}

// listKeys reads page number page, or every page when page is 0.
func listKeys(ctx context.Context, kms *client.Client, page, size int) ([]client.KeySummary, error) {
	if page > 0 {
		l, err := kms.ListKeys(ctx, page, size)
		if err != nil {
			return nil, err
		}
		return append([]client.KeySummary{}, l.KeyList...), nil
	}
	keys := []client.KeySummary{}
	for p := 1; ; p++ {
		l, err := kms.ListKeys(ctx, p, size)
		if err != nil {
			return nil, err
		}
		keys = append(keys, l.KeyList...)
		if p >= l.TotalPageNo || len(l.KeyList) == 0 {
			return keys, nil
		}
	}
}

// keyInfoCommand is `nkms key info`.
func keyInfoCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "info TAG",
		Short:             "Show a key's settings and state",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			k, err := kms.GetKey(ctx, args[0])
			if err != nil {
				return c.explain("key "+clip(args[0], 70), err)
			}
			if c.jsonOutput() {
				return c.printJSON(k)
			}
			return c.printKeyInfo(k, time.Now())
		}),
	}
}

// keyStateCommand is `nkms key enable` or `nkms key disable`: call is the
// client method, done the word for the message.
func keyStateCommand(c *cli, name, short, done string,
	call func(*client.Client, context.Context, string) (*client.StatusChange, error)) *cobra.Command {
	return &cobra.Command{
		Use:               name + " TAG",
		Short:             short,
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			s, err := call(kms, ctx, args[0])
			if err != nil {
				return keyError(c, name+" key", args[0], err)
			}
			if c.jsonOutput() {
				return c.printJSON(s)
			}
			c.note("key %s %s", s.KeyTag, done)
			return nil
		}),
	}
}

// keyRenameCommand is `nkms key rename`.
func keyRenameCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "rename TAG NEW_NAME",
		Short:             "Change a key's name (its tag stays)",
		Args:              keyArgs(2),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			n, err := kms.UpdateName(ctx, args[0], args[1])
			if err != nil {
				return keyError(c, "rename key", args[0], err)
			}
			if c.jsonOutput() {
				return c.printJSON(n)
			}
			c.note("key %s renamed to %q", n.KeyTag, n.KeyName)
			return nil
		}),
	}
}

// keyMemoCommand is `nkms key memo`; an empty TEXT clears the memo.
func keyMemoCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "memo TAG TEXT",
		Short:             `Replace a key's memo ("" clears it)`,
		Args:              keyArgs(2),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			m, err := kms.UpdateMemo(ctx, args[0], args[1])
			if err != nil {
				return keyError(c, "update memo of key", args[0], err)
			}
			if c.jsonOutput() {
				return c.printJSON(m)
			}
			c.note("key %s memo updated", m.KeyTag)
			return nil
		}),
	}
}

// keyRotateCommand is `nkms key rotate`: it prints the new version number
// on stdout, so that `V=$(nkms key rotate TAG)` works.
func keyRotateCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "rotate TAG",
		Short:             "Add a new current version to a key and print its number",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			r, err := kms.Rotate(ctx, args[0])
			if err != nil {
				return keyError(c, "rotate key", args[0], err)
			}
			if c.jsonOutput() {
				return c.printJSON(r)
			}
			if _, err := fmt.Fprintln(c.stdout, r.Version); err != nil {
				return err
			}
			c.note("key %s rotated: version %d is now current", r.KeyTag, r.Version)
			return nil
		}),
	}
}

// keyVersionsCommand is `nkms key versions`.
func keyVersionsCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "versions TAG",
		Short:             "List the versions of a key",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			l, err := kms.ListVersions(ctx, args[0])
			if err != nil {
				return c.explain("versions of key "+clip(args[0], 70), err)
			}
			if c.jsonOutput() {
				return c.printJSON(l)
			}
			return c.printVersions(l)
		}),
	}
}

// keyVersionCommand is `nkms key version-enable` or `version-disable`.
// A refusal of the server (HTTP 422) gets a hint on the rules.
func keyVersionCommand(c *cli, name, short, done string,
	call func(*client.Client, context.Context, string, int) (*client.VersionStatus, error)) *cobra.Command {
	return &cobra.Command{
		Use:               name + " TAG VERSION",
		Short:             short,
		Args:              keyArgs(2),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			v, err := parseVersion(args[1])
			if err != nil {
				return err
			}
			s, err := call(kms, ctx, args[0], v)
			if err != nil {
				return stateHint(c.explain(fmt.Sprintf("%s %d of key %s", name, v, clip(args[0], 70)), err),
					"versions change only while the key is enabled, and the current version cannot be disabled")
			}
			if c.jsonOutput() {
				return c.printJSON(s)
			}
			c.note("key %s version %d %s", args[0], s.Version, done)
			return nil
		}),
	}
}

// keyError is c.explain for the call what on the key tag, with a hint
// when the server refused the call because of the key's state.
func keyError(c *cli, what, tag string, err error) error {
	return stateHint(c.explain(what+" "+clip(tag, 70), err),
		"the key's state does not allow this; nkms key info "+clip(tag, 70)+" shows it")
}

// stateHint adds hint to err when the server refused the call because of
// the key's state (HTTP 422), which its message says only tersely.
func stateHint(err error, hint string) error {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
		return &hintError{err, hint}
	}
	return err
}

// parseVersion reads the VERSION argument: a whole number from 1.
func parseVersion(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, &hintError{fmt.Errorf("VERSION %q is not a version number", clip(s, 20)),
			"versions are whole numbers from 1; nkms key versions TAG lists them"}
	}
	return v, nil
}

// keyAutoRotationCommand is `nkms key auto-rotation TAG on|off`.
func keyAutoRotationCommand(c *cli) *cobra.Command {
	var period int
	cmd := &cobra.Command{
		Use:   "auto-rotation TAG on|off [--period DAYS]",
		Short: "Turn automatic rotation on (optionally with a new period) or off",
		Example: `  nkms key auto-rotation $TAG on --period 30
  nkms key auto-rotation $TAG off`,
		Args: keyArgs(2),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return []cobra.Completion{"on", "off"}, cobra.ShellCompDirectiveNoFileComp
			}
			return c.completeKeyArg(cmd, args, toComplete)
		},
	}
	cmd.RunE = keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
		tag, periodSet := args[0], cmd.Flags().Changed("period")
		switch args[1] {
		case "on":
			if err := checkPeriod("--period", period, !periodSet); err != nil {
				return err
			}
		case "off":
			if periodSet {
				return fmt.Errorf("--period goes with on, not off")
			}
		default:
			return fmt.Errorf("%q: the second argument is on or off", clip(args[1], 20))
		}
		a, err := setAutoRotation(ctx, kms, tag, args[1] == "on", period, periodSet)
		if err != nil {
			return keyError(c, "auto rotation of key", tag, err)
		}
		if c.jsonOutput() {
			return c.printJSON(a)
		}
		if !a.IsAutoRotation {
			c.note("key %s: auto rotation off", a.KeyTag)
			return nil
		}
		c.note("key %s: auto rotation on, every %d days, next %s", a.KeyTag, a.RotationPeriod, formatMillisPtr(a.NextRotationDate))
		return nil
	})
	cmd.Flags().IntVar(&period, "period", 0, "days between rotations, 1-730 (with on)")
	return cmd
}

// setAutoRotation turns auto rotation on or off, and with on and periodSet
// sets the period too; it answers the state after both calls.
func setAutoRotation(ctx context.Context, kms *client.Client, tag string, on bool, period int, periodSet bool) (*client.AutoRotation, error) {
	if !on {
		return kms.DisableAutoRotation(ctx, tag)
	}
	a, err := kms.EnableAutoRotation(ctx, tag)
	if err != nil || !periodSet {
		return a, err
	}
	p, err := kms.UpdateRotationPeriod(ctx, tag, period)
	if err != nil {
		return nil, err
	}
	a.RotationPeriod, a.NextRotationDate = p.RotationPeriod, p.NextRotationDate
	return a, nil
}

// keyRequestDeletionCommand is `nkms key request-deletion`: after a typed
// confirmation, the key goes to REVOKE until the server destroys it.
func keyRequestDeletionCommand(c *cli) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:               "request-deletion TAG [--yes]",
		Short:             "Schedule a key's destruction (72 hours by default; cancellable until then)",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			tag := args[0]
			k, err := kms.GetKey(ctx, tag)
			if err != nil {
				return c.explain("key "+clip(tag, 70), err)
			}
			if k.Status == "REVOKE" {
				return &hintError{fmt.Errorf("key %s is already pending deletion", k.KeyTag),
					"nkms key info " + k.KeyTag + " shows when it is destroyed"}
			}
			explain := fmt.Sprintf("Key %q (%s) will be pending deletion (REVOKE) for the server's deletion window, 72 hours by default:\n"+
				"it cannot be used meanwhile, and `nkms key cancel-deletion %s` takes it back.\n"+
				"After the window it is destroyed for good, and what it encrypted can no longer be decrypted.",
				k.KeyName, k.KeyTag, k.KeyTag)
			if err := c.confirm("request deletion", explain, k.KeyName, yes); err != nil {
				return err
			}
			s, err := kms.RequestDeletion(ctx, tag)
			if err != nil {
				return keyError(c, "request deletion of key", tag, err)
			}
			if c.jsonOutput() {
				return c.printJSON(s)
			}
			c.note("key %s is pending deletion", s.KeyTag)
			if after, err := kms.GetKey(ctx, tag); err == nil && after.DestroyDate != nil {
				// From the server's time of the change, not this machine's: they
				// differ under a moved dev clock (nkms dev advance) or a skewed clock.
				c.note("it will be destroyed at %s", destroyWhen(*after.DestroyDate, time.UnixMilli(s.StatusDate)))
			}
			c.note("to keep it: nkms key cancel-deletion %s", s.KeyTag)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask to type the key name")
	return cmd
}

// keyCancelDeletionCommand is `nkms key cancel-deletion`.
func keyCancelDeletionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:               "cancel-deletion TAG",
		Short:             "Keep a key pending deletion; it comes back disabled",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			s, err := kms.CancelDeletion(ctx, args[0])
			if err != nil {
				return keyError(c, "cancel deletion of key", args[0], err)
			}
			if c.jsonOutput() {
				return c.printJSON(s)
			}
			c.note("key %s deletion cancelled; it is %s: nkms key enable %s to use it again", s.KeyTag, s.Status, s.KeyTag)
			return nil
		}),
	}
}

// keyDeleteCommand is `nkms key delete`: after a typed confirmation, it
// destroys a key pending deletion at once.
func keyDeleteCommand(c *cli) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:               "delete TAG [--yes]",
		Short:             "Destroy a key pending deletion now, for good",
		Args:              keyArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: keyRun(c, func(ctx context.Context, kms *client.Client, args []string) error {
			tag := args[0]
			k, err := kms.GetKey(ctx, tag)
			if err != nil {
				return c.explain("key "+clip(tag, 70), err)
			}
			explain := fmt.Sprintf("Key %q (%s) will be destroyed now. This cannot be undone:\n"+
				"everything it encrypted becomes unreadable, and its signatures can no longer be verified.",
				k.KeyName, k.KeyTag)
			if err := c.confirm("delete", explain, k.KeyName, yes); err != nil {
				return err
			}
			if err := kms.DeleteKey(ctx, tag); err != nil {
				return stateHint(c.explain("delete key "+clip(tag, 70), err),
					"only a key pending deletion can be deleted: nkms key request-deletion "+k.KeyTag+" first")
			}
			if c.jsonOutput() {
				return c.printJSON(nil)
			}
			c.note("key %s (%q) destroyed", k.KeyTag, k.KeyName)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask to type the key name")
	return cmd
}
