package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nkms/nkms/client"
)

// tokenCommand is `nkms token`: a key's token generator and the tokens it
// issues.
func tokenCommand(c *cli) *cobra.Command {
	cmd := c.clientCommand(&cobra.Command{
		Use:   "token",
		Short: "Issue and renew a key's access and refresh tokens, manage its token generator",
		Long: `A key's tokens let a program use that one key without an access key: an access
token authenticates crypto calls, a refresh token issues new tokens. Tokens
are issued by the key's token generator (nkms token generator create). Single
tokens cannot be revoked: replacing or deleting the generator invalidates
every token it issued. The key's IP ACL (nkms acl) limits where token
requests may come from.

Tokens are secrets: they are printed on stdout only, once.`,
	})
	cmd.AddCommand(tokenGeneratorCommand(c), tokenCreateCommand(c), tokenRenewCommand(c), tokenAccessCommand(c))
	return cmd
}

// tokenGeneratorCommand is `nkms token generator`.
func tokenGeneratorCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generator",
		Short: "Create, replace, delete or show a key's token generator",
		Long: `Create, replace, delete or show a key's token generator. Each command prints
the generator's state afterwards, as nkms token generator show does: lines
"id:", "status:" (ACTIVE or INACTIVE), "enabled:", "disabled:" and "issued
tokens:"; -o json prints the API's data {"tokenGeneratorId", "status",
"enabledDate", "disabledDate", "issuedTokenCount"} (times in Unix ms).`,
	}
	type step struct {
		use, short, long, example, done string
		do                              func(*client.Client, *cobra.Command, string) error
	}
	steps := []step{
		{"create TAG", "Create a key's token generator, so that tokens can be issued", "",
			"  nkms token generator create 1a2b3c\n  nkms token create 1a2b3c",
			"token generator of key %s created; issue tokens with nkms token create",
			func(k *client.Client, cmd *cobra.Command, tag string) error {
				return k.CreateTokenGenerator(cmd.Context(), tag)
			}},
		{"replace TAG", "Replace a key's token generator: every token it issued stops working",
			"Replace a key's token generator with a new one. Every token the old generator\nissued stops working at once; this cannot be undone. No confirmation is asked.",
			"  nkms token generator replace 1a2b3c",
			"token generator of key %s replaced: every token issued before stopped working",
			func(k *client.Client, cmd *cobra.Command, tag string) error {
				return k.ReplaceTokenGenerator(cmd.Context(), tag)
			}},
		{"delete TAG", "Delete a key's token generator: every token it issued stops working",
			"Delete a key's token generator. Token authentication of the key stops and every\ntoken the generator issued stops working at once; this cannot be undone. No\nconfirmation is asked. nkms token generator create makes a new generator.",
			"  nkms token generator delete 1a2b3c",
			"token generator of key %s deleted: every token it issued stopped working",
			func(k *client.Client, cmd *cobra.Command, tag string) error {
				return k.DeleteTokenGenerator(cmd.Context(), tag)
			}},
		{"show TAG", "Show the state of a key's token generator", "",
			"  nkms token generator show 1a2b3c\n  nkms token generator show 1a2b3c -o json", "", nil},
	}
	for _, s := range steps {
		name := strings.Fields(s.use)[0]
		long := s.long
		if long == "" {
			long = s.short + "."
		}
		cmd.AddCommand(&cobra.Command{
			Use:               s.use,
			Short:             s.short,
			Long:              long + "\n\nThe generator's state is printed afterwards (see nkms token generator --help).",
			Example:           s.example,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: c.completeKeyArg,
			RunE: func(cmd *cobra.Command, args []string) error {
				kms, err := c.client()
				if err != nil {
					return err
				}
				if s.do != nil {
					if err := s.do(kms, cmd, args[0]); err != nil {
						return c.explain("token generator "+name, err)
					}
					c.note(s.done, args[0])
				}
				g, err := kms.GetTokenGenerator(cmd.Context(), args[0])
				if err != nil {
					return c.explain("token generator show", err)
				}
				return c.printGenerator(g)
			},
		})
	}
	return cmd
}

// printGenerator prints the state of a token generator.
func (c *cli) printGenerator(g *client.TokenGenerator) error {
	if c.jsonOutput() {
		return c.printJSON(g)
	}
	id, enabled, disabled := "-", "-", "-"
	if g.TokenGeneratorID != nil {
		id = *g.TokenGeneratorID
	}
	if g.EnabledDate != nil {
		enabled = formatMillis(*g.EnabledDate)
	}
	if g.DisabledDate != nil {
		disabled = formatMillis(*g.DisabledDate)
	}
	w := c.table()
	fmt.Fprintf(w, "id:\t%s\nstatus:\t%s\nenabled:\t%s\ndisabled:\t%s\nissued tokens:\t%d\n",
		id, g.Status, enabled, disabled, g.IssuedTokenCount)
	return w.Flush()
}

// tokenHoursHelp describes the --access-hours and --refresh-hours values.
const tokenHoursHelp = "hours 1-17520, or UL for a token that never expires"

// tokenCreateCommand is `nkms token create TAG`.
func tokenCreateCommand(c *cli) *cobra.Command {
	var access, refresh string
	cmd := &cobra.Command{
		Use:   "create TAG [--access-hours H|UL] [--refresh-hours H|UL]",
		Short: "Issue an access token and a refresh token of a key (needs its token generator)",
		Long: `Issue an access token and a refresh token of a key, signed in with the access
key. The key needs an active token generator (nkms token generator create).
Lifetimes default to 72 hours (access) and 2160 hours (refresh).

Stdout gets shell-style lines, ready for eval or an env file:

  NKMS_ACCESS_TOKEN=...
  NKMS_ACCESS_TOKEN_EXPIRES=2026-11-30T11:22:19Z   (or never)
  NKMS_REFRESH_TOKEN=...
  NKMS_REFRESH_TOKEN_EXPIRES=2027-02-25T11:22:19Z  (or never)

-o json prints {"keyTag", "accessToken", "accessTokenExpires",
"refreshToken", "refreshTokenExpires"} (expiries in Unix ms, null for never).
The tokens are shown only this once.`,
		Example: `  nkms token create 1a2b3c
  nkms token create 1a2b3c --access-hours 1 --refresh-hours UL
  nkms token create 1a2b3c -o json | jq -r .refreshToken > refresh.token`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ah, rh, err := parseTokenHoursPair(access, refresh)
			if err != nil {
				return err
			}
			kms, err := c.client()
			if err != nil {
				return err
			}
			set, err := kms.CreateTokenSet(cmd.Context(), args[0], ah, rh)
			var ae *client.Error
			if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity {
				return &hintError{fmt.Errorf("token create: %w", err),
					"the key needs an active token generator (nkms token generator create) and must be enabled"}
			}
			if err != nil {
				return c.explain("token create", err)
			}
			return c.printTokenSet(args[0], set)
		},
	}
	cmd.Flags().StringVar(&access, "access-hours", "", "lifetime of the access token: "+tokenHoursHelp+" (default 72)")
	cmd.Flags().StringVar(&refresh, "refresh-hours", "", "lifetime of the refresh token: "+tokenHoursHelp+" (default 2160)")
	return cmd
}

// refreshTokenSource is the flags that give a refresh token.
type refreshTokenSource struct {
	token, file string
}

// refreshTokenHelp is the part of the help of renew and access that says
// where the refresh token comes from.
const refreshTokenHelp = `The refresh token is read from --refresh-token-file (- for stdin), else from
the environment variable NKMS_REFRESH_TOKEN, else from stdin. --refresh-token
also works, but a flag shows in the process list: prefer the others. These
calls authenticate with the refresh token only (no access key is needed) and
obey the key's IP ACL.`

// addFlags adds --refresh-token and --refresh-token-file to cmd.
func (r *refreshTokenSource) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.file, "refresh-token-file", "", "file holding the refresh token (- for stdin)")
	cmd.Flags().StringVar(&r.token, "refresh-token", "", "the refresh token (visible in the process list: prefer the file, NKMS_REFRESH_TOKEN or stdin)")
}

// refreshClient returns a client of the resolved endpoint that authenticates
// with the refresh token of r.
func (c *cli) refreshClient(r *refreshTokenSource) (*client.Client, error) {
	var token string
	var err error
	switch {
	case r.token != "" && r.file != "":
		return nil, errors.New("give the refresh token with --refresh-token or --refresh-token-file, not both")
	case r.token != "":
		token = r.token
	case r.file != "":
		token, err = c.readText(nil, r.file)
	case c.getenv("NKMS_REFRESH_TOKEN") != "":
		token = strings.TrimSpace(c.getenv("NKMS_REFRESH_TOKEN"))
	default:
		token, err = c.readText(nil, "")
	}
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	if token == "" {
		return nil, &hintError{errors.New("no refresh token"),
			"give it with --refresh-token-file FILE, NKMS_REFRESH_TOKEN or on stdin"}
	}
	kms, err := c.tokenClient(token)
	if err != nil {
		// The client's messages never hold the token.
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	return kms, nil
}

// explainToken is explain for calls made with a token: a 401 or 403 is
// about the token or the key's IP ACL, not the access key.
func (c *cli) explainToken(what string, err error) error {
	var ae *client.Error
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return &hintError{fmt.Errorf("%s: %w", what, err),
			"the refresh token is malformed, expired, of another key, or its token generator was replaced or deleted"}
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return &hintError{fmt.Errorf("%s: %w", what, err),
			"the key's IP ACL does not list this address (nkms acl show)"}
	}
	return c.explain(what, err)
}

// tokenRenewCommand is `nkms token renew TAG`.
func tokenRenewCommand(c *cli) *cobra.Command {
	var access, refresh string
	var src refreshTokenSource
	cmd := &cobra.Command{
		Use:   "renew TAG [--refresh-token-file FILE] [--access-hours H|UL] [--refresh-hours H|UL]",
		Short: "Issue a new token set of a key with a refresh token",
		Long: `Issue a new access token and refresh token of a key, authenticated with a
refresh token of the key. Earlier tokens stay valid until they expire.
The output is that of nkms token create.

` + refreshTokenHelp,
		Example: `  nkms token renew 1a2b3c --refresh-token-file refresh.token
  NKMS_REFRESH_TOKEN=$(cat refresh.token) nkms token renew 1a2b3c -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ah, rh, err := parseTokenHoursPair(access, refresh)
			if err != nil {
				return err
			}
			kms, err := c.refreshClient(&src)
			if err != nil {
				return err
			}
			set, err := kms.RenewTokenSet(cmd.Context(), args[0], ah, rh)
			if err != nil {
				return c.explainToken("token renew", err)
			}
			return c.printTokenSet(args[0], set)
		},
	}
	src.addFlags(cmd)
	cmd.Flags().StringVar(&access, "access-hours", "", "lifetime of the access token: "+tokenHoursHelp+" (default 72)")
	cmd.Flags().StringVar(&refresh, "refresh-hours", "", "lifetime of the refresh token: "+tokenHoursHelp+" (default 2160)")
	return cmd
}

// tokenAccessCommand is `nkms token access TAG`.
func tokenAccessCommand(c *cli) *cobra.Command {
	var access string
	var src refreshTokenSource
	cmd := &cobra.Command{
		Use:   "access TAG [--refresh-token-file FILE] [--access-hours H|UL]",
		Short: "Issue a new access token of a key with a refresh token",
		Long: `Issue a new access token of a key, authenticated with a refresh token of the
key. Stdout gets NKMS_ACCESS_TOKEN=... and NKMS_ACCESS_TOKEN_EXPIRES=... lines
(as nkms token create); -o json prints {"keyTag", "accessToken",
"accessTokenExpires"}.

` + refreshTokenHelp,
		Example: `  nkms token access 1a2b3c --refresh-token-file refresh.token --access-hours 1
  nkms token access 1a2b3c < refresh.token`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			ah, err := parseTokenHours("--access-hours", access)
			if err != nil {
				return err
			}
			kms, err := c.refreshClient(&src)
			if err != nil {
				return err
			}
			tok, err := kms.CreateAccessToken(cmd.Context(), args[0], ah)
			if err != nil {
				return c.explainToken("token access", err)
			}
			if c.jsonOutput() {
				return c.printJSON(struct {
					KeyTag      string `json:"keyTag"`
					AccessToken string `json:"accessToken"`
					Expires     *int64 `json:"accessTokenExpires"`
				}{args[0], tok, tokenExpiry(tok)})
			}
			_, err = fmt.Fprintf(c.stdout, "NKMS_ACCESS_TOKEN=%s\nNKMS_ACCESS_TOKEN_EXPIRES=%s\n", tok, expiryText(tokenExpiry(tok)))
			c.note("the access token is shown only this once; keep it secret")
			return err
		},
	}
	src.addFlags(cmd)
	cmd.Flags().StringVar(&access, "access-hours", "", "lifetime of the access token: "+tokenHoursHelp+" (default 72)")
	return cmd
}

// printTokenSet prints a new token set of the key tag.
func (c *cli) printTokenSet(tag string, set *client.TokenSet) error {
	ae, re := tokenExpiry(set.AccessToken), tokenExpiry(set.RefreshToken)
	if c.jsonOutput() {
		return c.printJSON(struct {
			KeyTag         string `json:"keyTag"`
			AccessToken    string `json:"accessToken"`
			AccessExpires  *int64 `json:"accessTokenExpires"`
			RefreshToken   string `json:"refreshToken"`
			RefreshExpires *int64 `json:"refreshTokenExpires"`
		}{tag, set.AccessToken, ae, set.RefreshToken, re})
	}
	_, err := fmt.Fprintf(c.stdout, "NKMS_ACCESS_TOKEN=%s\nNKMS_ACCESS_TOKEN_EXPIRES=%s\nNKMS_REFRESH_TOKEN=%s\nNKMS_REFRESH_TOKEN_EXPIRES=%s\n",
		set.AccessToken, expiryText(ae), set.RefreshToken, expiryText(re))
	c.note("the tokens are shown only this once; keep them secret")
	return err
}

// tokenExpiry reads the expiry (exp claim) of a JWT, without checking the
// token, as Unix milliseconds; nil for a token that never expires or that
// cannot be read.
func tokenExpiry(tok string) *int64 {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var claims struct {
		Exp *int64 `json:"exp"`
	}
	if json.Unmarshal(p, &claims) != nil || claims.Exp == nil {
		return nil
	}
	ms := *claims.Exp * 1000
	return &ms
}

// expiryText is an expiry for the shell-style lines: RFC 3339 in UTC, or
// "never".
func expiryText(ms *int64) string {
	if ms == nil {
		return "never"
	}
	return time.UnixMilli(*ms).UTC().Format(time.RFC3339)
}

// parseTokenHoursPair parses --access-hours and --refresh-hours.
func parseTokenHoursPair(access, refresh string) (client.TokenHours, client.TokenHours, error) {
	ah, err := parseTokenHours("--access-hours", access)
	if err != nil {
		return 0, 0, err
	}
	rh, err := parseTokenHours("--refresh-hours", refresh)
	return ah, rh, err
}

// parseTokenHours parses a token lifetime flag: "" for the server's
// default, a number of hours 1-17520, or UL for unlimited.
func parseTokenHours(flag, v string) (client.TokenHours, error) {
	if v == "" {
		return 0, nil
	}
	if strings.EqualFold(v, "UL") {
		return client.Unlimited, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 17520 {
		return 0, fmt.Errorf("%s %q: use %s", flag, clip(v, 20), tokenHoursHelp)
	}
	return client.TokenHours(n), nil
}
