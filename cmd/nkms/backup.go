package main

import "github.com/spf13/cobra"

// backupCommands is a placeholder: its helper replaces this file.
func backupCommands(c *cli) []*cobra.Command { return nil }
