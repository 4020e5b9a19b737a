//go:build noetcd

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// kubeKMSPluginCommand is `nkms kube-kms-plugin` of the bbolt-only build
// (-tags noetcd): the plugin links gRPC, which this build leaves out to
// stay small, so the command only says so.
func kubeKMSPluginCommand(*cli) *cobra.Command {
	return &cobra.Command{
		Use:                "kube-kms-plugin",
		Short:              "Serve kube-apiserver as a Kubernetes KMS v2 plugin (not in this build)",
		DisableFlagParsing: true,
		RunE: func(*cobra.Command, []string) error {
			return &hintError{errors.New("this nkms was built without the Kubernetes KMS plugin (-tags noetcd leaves gRPC out)"),
				"use an nkms binary built without -tags noetcd"}
		},
	}
}
