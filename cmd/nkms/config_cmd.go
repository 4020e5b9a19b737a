package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// configCommand is `nkms config`: see and change the profile file.
func configCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show where the client's settings come from, and save profiles",
		Long: `Client commands find their server and credentials in this order:

  1. flags: --endpoint, --ca-cert, and --profile (which picks a profile
     whose settings then also win over the environment)
  2. environment: NKMS_ENDPOINT, NKMS_CA_CERT, NKMS_ACCESS_KEY and
     NKMS_SECRET_KEY (or NAVER's NCP_ACCESS_KEY and NCP_SECRET_KEY),
     NKMS_PROFILE (names the profile)
  3. the profile file: $NKMS_CONFIG, else $XDG_CONFIG_HOME/nkms/config,
     else ~/.config/nkms/config; profile "default" unless named
  4. the default endpoint, ` + defaultEndpoint + `

The profile file holds secret keys and must have mode 0600 (nkms config
set creates it so); nkms refuses to read it otherwise.

  [default]
  endpoint   = https://kms.example:8383
  access_key = ...
  secret_key = ...
  ca_cert    = /etc/nkms/ca.pem`,
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the settings a client command would use, and where each comes from",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := c.settings()
			if err != nil {
				return err
			}
			path, err := configPath(c.getenv)
			if err != nil {
				return err
			}
			prof := s.profile
			if prof == "" {
				prof = "- (none read)"
			}
			fmt.Fprintf(c.stdout, "profile file: %s\nprofile:      %s\n\n", path, prof)
			w := c.table()
			for _, row := range []struct {
				name string
				s    setting
			}{{"endpoint", s.endpoint}, {"access key", s.accessKey}, {"secret key", redact(s.secretKey)}, {"ca cert", s.caCert}} {
				v, src := row.s.value, row.s.source
				if v == "" {
					v, src = "-", "not set"
				}
				fmt.Fprintf(w, "%s\t%s\t(%s)\n", row.name, v, src)
			}
			return w.Flush()
		},
	}

	var profileName string
	set := &cobra.Command{
		Use:   "set SETTING VALUE",
		Short: "Save a setting (" + strings.Join(profileSettings, ", ") + ") in a profile",
		Long: `Save a setting in a profile of the profile file, creating the file (mode
0600) and the profile as needed. A VALUE of - is read from stdin, which keeps
a secret key out of the shell's history and the process list.`,
		Example: `  nkms config set endpoint https://kms.example:8383
  nkms config set access_key NKMS1234567890
  nkms config set secret_key - < secret.txt
  nkms config set --profile staging endpoint https://staging.example:8383`,
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return profileSettings, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(_ *cobra.Command, args []string) error {
			key, value := args[0], args[1]
			if !slices.Contains(profileSettings, key) {
				return fmt.Errorf("unknown setting %q: use one of %s", clip(key, 40), strings.Join(profileSettings, ", "))
			}
			if value == "-" {
				v, err := c.readText(nil, "")
				if err != nil {
					return err
				}
				value = v
			}
			if value == "" || strings.ContainsAny(value, "\r\n") {
				return fmt.Errorf("%s: the value must be one non-empty line", key)
			}
			name := profileName
			if name == "" {
				name = "default"
			}
			if !validProfileName(name) {
				return errors.New("--profile: a profile name has letters, digits, '-', '_' or '.'")
			}
			path, err := configPath(c.getenv)
			if err != nil {
				return err
			}
			profiles, err := loadProfiles(path)
			if err != nil {
				return err
			}
			if profiles[name] == nil {
				profiles[name] = profile{}
			}
			profiles[name][key] = value
			if err := saveProfiles(path, profiles); err != nil {
				return fmt.Errorf("save %s: %w", path, err)
			}
			c.note("saved %s of profile %s in %s", key, name, path)
			return nil
		},
	}
	c.connectionFlags(show)
	set.Flags().StringVar(&profileName, "profile", "", `profile to change (default "default")`)
	cmd.AddCommand(show, set)
	return cmd
}

// redact keeps the last four characters of a secret, enough to tell two apart.
func redact(s setting) setting {
	if s.value == "" {
		return s
	}
	if len(s.value) <= 8 {
		return setting{"****", s.source}
	}
	return setting{"****" + s.value[len(s.value)-4:], s.source}
}
