package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/etcd"
)

// backend is the store of `nkms server` and what the server needs to run on
// it: one node with bbolt, or one of several with etcd.
type backend struct {
	store nkms.Store   // what the Service uses
	close func() error // releases the store (and the etcd client)
	// ready decides /healthz; nil when the store is local.
	ready func(ctx context.Context) error
	// lead runs the scheduler: at once on bbolt, while elected on etcd.
	lead func(ctx context.Context, fn func(ctx context.Context))
	// watchDeleted reports keys destroyed by other nodes; nil on bbolt.
	watchDeleted func(ctx context.Context, fn func(tag string))
	// rootCheck stores a root-key check value if there is none and returns the stored one.
	rootCheck func(ctx context.Context, candidate []byte) ([]byte, error)
	where     string // for messages: the data file or the etcd prefix
}

// openBackend opens the store that cfg.Store names.
func openBackend(ctx context.Context, cfg Config, log *slog.Logger) (*backend, error) {
	if cfg.Store == "etcd" {
		return openEtcd(ctx, cfg, log)
	}
	path := filepath.Join(cfg.DataDir, bolt.FileName)
	st, err := bolt.Open(path, bolt.Options{Log: log})
	if err != nil {
		return nil, &hintError{err, "is another nkms server running on this --data-dir?"}
	}
	return &backend{
		// Every write goes through the read cache, so reads stay fresh on this single node.
		store:     cache.New(st, 0),
		close:     st.Close,
		lead:      func(ctx context.Context, fn func(context.Context)) { fn(ctx) },
		rootCheck: st.RootCheck,
		where:     path,
	}, nil
}

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
		return nil, &hintError{err, "check --etcd-endpoints and the etcd TLS options; every member named must be reachable from this node"}
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

// nodeID names this node in leader elections: host name and process id.
func nodeID() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "node"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid()), nil
}
