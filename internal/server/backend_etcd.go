//go:build !noetcd

package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/etcd"
)

// withEtcd reports whether this binary can run --store etcd (see
// backend_noetcd.go for the build without it).
const withEtcd = true

// etcdReadyTimeout bounds /healthz's check that the etcd cluster answers.
const etcdReadyTimeout = time.Second

// openEtcd connects to the etcd cluster of cfg. Key records and access keys
// are read through a cache that follows the changes every node makes
// (store/etcd's Follower): before a request reads from it, the node catches
// up with the cluster (one quorum read, shared by the requests that arrive
// meanwhile), so a change made on one node is seen by the very next request
// on any other.
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
	st, err := etcd.Open(openCtx, etcd.Options{Client: cli, Prefix: cfg.EtcdPrefix, Log: log, Timeout: cfg.EtcdTimeout})
	if err != nil {
		cli.Close()
		return nil, etcdOpenError(ctx, err, cfg.EtcdEndpoints, tlsConf)
	}
	id, err := nodeID()
	if err != nil {
		cli.Close()
		return nil, err
	}
	followCtx, stopFollowing := context.WithCancel(ctx)
	var follower *etcd.Follower
	cached := cache.Following(st, 0, func(ctx context.Context) error { return follower.CatchUp(ctx) })
	follower, err = st.Follow(followCtx, etcd.Changes{Key: cached.ForgetKey, AccessKey: cached.ForgetAccessKey, All: cached.ForgetAll})
	if err != nil {
		stopFollowing()
		cli.Close()
		return nil, &hintError{err, "check --etcd-endpoints: every member named must be reachable from this node"}
	}
	return &backend{
		store: cached,
		close: func() error { stopFollowing(); st.Close(); return cli.Close() },
		ready: func(ctx context.Context) error { return st.Ready(ctx, etcdReadyTimeout) },
		lead: func(ctx context.Context, fn func(context.Context)) {
			st.RunAsLeader(ctx, "scheduler", id, fn)
		},
		watchDeleted: st.WatchDeletedKeys,
		catchUps:     follower.Rounds,
		rootCheck:    st.RootCheck,
		where:        "etcd prefix " + cfg.EtcdPrefix,
	}, nil
}
