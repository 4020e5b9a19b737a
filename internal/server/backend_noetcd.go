//go:build noetcd

package server

import (
	"context"
	"log/slog"
)

// withEtcd reports whether this binary can run --store etcd. Built with
// -tags noetcd it cannot: the etcd client (gRPC, protobuf registries, zap)
// is left out, which makes a bbolt-only binary about a third smaller and its
// idle resident memory correspondingly lower.
const withEtcd = false

// openEtcd refuses: there is no etcd client in this binary (Config.Validate
// already refuses --store etcd; this is the second line).
func openEtcd(context.Context, Config, *slog.Logger) (*backend, error) {
	return nil, errNoEtcd
}
