//go:build !noetcd

package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms/store/etcd"
)

// withEtcd reports whether this binary can run --store etcd (see
// backend_noetcd.go for the build without it).
const withEtcd = true

// etcdReadyTimeout bounds /healthz's check that the etcd cluster answers.
const etcdReadyTimeout = time.Second

// openEtcd connects to the etcd cluster of cfg. Key records and access keys
// are read from etcd on every request (no read cache): a change made on one
// node is seen by the very next request on any other. Only immutable things
// are cached: unsealed key versions and keyed HMACs of secrets.
func openEtcd(ctx context.Context, cfg Config, log *slog.Logger) (*backend, error) {
	tlsConf, err := cfg.etcdTLS()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.EtcdEndpoints,
		DialTimeout: 5 * time.Second,
		TLS:         tlsConf,
		Logger:      zap.NewNop(), // failures reach our log through the store
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := etcd.Open(openCtx, etcd.Options{Client: cli, Prefix: cfg.EtcdPrefix, Log: log})
	if err != nil {
		cli.Close()
		return nil, etcdOpenError(ctx, err, cfg.EtcdEndpoints, tlsConf)
	}
	id, err := nodeID()
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &backend{
		store: st,
		close: func() error { st.Close(); return cli.Close() },
		ready: func(ctx context.Context) error { return st.Ready(ctx, etcdReadyTimeout) },
		lead: func(ctx context.Context, fn func(context.Context)) {
			st.RunAsLeader(ctx, "scheduler", id, fn)
		},
		watchDeleted: st.WatchDeletedKeys,
		rootCheck:    st.RootCheck,
		where:        "etcd prefix " + cfg.EtcdPrefix,
	}, nil
}
