package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// aclCommand is `nkms acl`: a key's IP ACL, the IPv4 addresses and CIDR
// prefixes that token-authenticated requests of the key may come from.
func aclCommand(c *cli) *cobra.Command {
	cmd := c.clientCommand(&cobra.Command{
		Use:   "acl",
		Short: "Manage a key's IP ACL (where token requests may come from)",
		Long: `A key's IP ACL limits the requests made with the key's tokens (crypto calls,
token renewal) to a list of IPv4 addresses and CIDR prefixes. Requests signed
with an access key are not affected. While the ACL is enabled with an empty
list, every token request is refused. The list can be edited while the ACL is
disabled; it is kept when the ACL is disabled.`,
	})
	cmd.AddCommand(aclShowCommand(c), aclEnableCommand(c), aclDisableCommand(c), aclAddCommand(c), aclRemoveCommand(c))
	return cmd
}

// aclShowCommand is `nkms acl show TAG`.
func aclShowCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "show TAG",
		Short: "Show whether a key's IP ACL is enabled and the addresses it allows",
		Long: `Show whether a key's IP ACL is enabled and the addresses it allows, as lines
"key:", "acl:" (enabled or disabled) and "allowed:" (one address or prefix a
line, "none" for an empty list). -o json prints the API's data:
{"keyTag", "isAclEnabled", "allowedIpList"}.`,
		Example: `  nkms acl show 1a2b3c
  nkms acl show 1a2b3c -o json | jq -r '.allowedIpList[]'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			acl, err := kms.GetACL(cmd.Context(), args[0])
			if err != nil {
				return c.explain("acl show", err)
			}
			if acl.AllowedIPList == nil {
				acl.AllowedIPList = []string{}
			}
			if c.jsonOutput() {
				return c.printJSON(acl)
			}
			w := c.table()
			fmt.Fprintf(w, "key:\t%s\n", acl.KeyTag)
			fmt.Fprintf(w, "acl:\t%s\n", enabledWord(acl.IsACLEnabled))
			writeAllowed(w, acl.AllowedIPList)
			if err := w.Flush(); err != nil {
				return err
			}
			if acl.IsACLEnabled && len(acl.AllowedIPList) == 0 {
				c.note("the acl is enabled with an empty list: every token request of the key is refused")
			}
			return nil
		},
	}
}

// aclEnableCommand is `nkms acl enable TAG`.
func aclEnableCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "enable TAG",
		Short: "Enable a key's IP ACL: token requests only from the listed addresses",
		Long: `Enable a key's IP ACL: from now on the key's tokens are accepted only from the
listed addresses (none while the list is empty). Requests signed with an
access key are not affected. -o json prints {"keyTag", "isAclEnabled"}.`,
		Example: `  nkms acl add 1a2b3c 203.0.113.7 10.0.0.0/8
  nkms acl enable 1a2b3c`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			st, err := kms.EnableACL(cmd.Context(), args[0])
			if err != nil {
				return c.explain("acl enable", err)
			}
			c.note("ip acl of key %s enabled: token requests are accepted only from the listed addresses", st.KeyTag)
			if acl, err := kms.GetACL(cmd.Context(), args[0]); err == nil && len(acl.AllowedIPList) == 0 {
				c.note("the list is empty, so every token request of the key is refused; add addresses with nkms acl add")
			}
			if c.jsonOutput() {
				return c.printJSON(st)
			}
			return nil
		},
	}
}

// aclDisableCommand is `nkms acl disable TAG`.
func aclDisableCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "disable TAG",
		Short: "Disable a key's IP ACL: token requests from anywhere (the list is kept)",
		Long: `Disable a key's IP ACL: the key's tokens are accepted from any address again.
The list is kept for a later enable. -o json prints {"keyTag", "isAclEnabled"}.`,
		Example:           `  nkms acl disable 1a2b3c`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			st, err := kms.DisableACL(cmd.Context(), args[0])
			if err != nil {
				return c.explain("acl disable", err)
			}
			c.note("ip acl of key %s disabled: token requests are accepted from any address", st.KeyTag)
			if c.jsonOutput() {
				return c.printJSON(st)
			}
			return nil
		},
	}
}

// aclAddCommand is `nkms acl add TAG IP_OR_CIDR...`.
func aclAddCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "add TAG IP_OR_CIDR...",
		Short: "Add IPv4 addresses or CIDR prefixes to a key's IP ACL",
		Long: `Add IPv4 addresses or CIDR prefixes to a key's IP ACL and print the whole list
after the change, as "allowed:" lines like nkms acl show. Addresses already
listed are kept once. -o json prints {"keyTag", "allowedIpList"}.`,
		Example:           `  nkms acl add 1a2b3c 203.0.113.7 10.0.0.0/8`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			ch, err := kms.AddACL(cmd.Context(), args[0], args[1:])
			if err != nil {
				return c.explain("acl add", err)
			}
			return c.printACLChange(ch.KeyTag, ch.AllowedIPList)
		},
	}
}

// aclRemoveCommand is `nkms acl remove TAG IP_OR_CIDR...`.
func aclRemoveCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "remove TAG IP_OR_CIDR...",
		Aliases: []string{"delete", "rm"},
		Short:   "Remove IPv4 addresses or CIDR prefixes from a key's IP ACL",
		Long: `Remove IPv4 addresses or CIDR prefixes from a key's IP ACL and print the list
that remains, as "allowed:" lines like nkms acl show. -o json prints
{"keyTag", "allowedIpList"}.`,
		Example:           `  nkms acl remove 1a2b3c 10.0.0.0/8`,
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: c.completeKeyArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			kms, err := c.client()
			if err != nil {
				return err
			}
			ch, err := kms.DeleteACL(cmd.Context(), args[0], args[1:])
			if err != nil {
				return c.explain("acl remove", err)
			}
			return c.printACLChange(ch.KeyTag, ch.AllowedIPList)
		},
	}
}

// printACLChange prints the list of a key's IP ACL after add or remove.
func (c *cli) printACLChange(tag string, list []string) error {
	if list == nil {
		list = []string{}
	}
	if c.jsonOutput() {
		return c.printJSON(struct {
			KeyTag        string   `json:"keyTag"`
			AllowedIPList []string `json:"allowedIpList"`
		}{tag, list})
	}
	w := c.table()
	writeAllowed(w, list)
	if err := w.Flush(); err != nil {
		return err
	}
	c.note("ip acl of key %s lists %d address(es)", tag, len(list))
	return nil
}

// writeAllowed writes the "allowed:" lines of an IP ACL list: one address a
// line, "none" for an empty list.
func writeAllowed(w io.Writer, list []string) {
	if len(list) == 0 {
		fmt.Fprintf(w, "allowed:\tnone\n")
	}
	for _, ip := range list {
		fmt.Fprintf(w, "allowed:\t%s\n", ip)
	}
}

// enabledWord is "enabled" or "disabled".
func enabledWord(on bool) string {
	if on {
		return "enabled"
	}
	return "disabled"
}
