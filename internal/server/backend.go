package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/mem"
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
	// catchUps counts the quorum reads of the read cache's catch-ups; nil on bbolt.
	catchUps func() uint64
	// watchDeleted reports keys destroyed by other nodes; nil on bbolt.
	watchDeleted func(ctx context.Context, fn func(tag string))
	// rootCheck stores a root-key check value if there is none and returns the stored one.
	rootCheck func(ctx context.Context, candidate []byte) ([]byte, error)
	where     string // for messages: the data file or the etcd prefix
}

// DefaultEtcdPrefix is the default --etcd-prefix: store/etcd.DefaultPrefix
// (a test checks they agree), repeated here so that cmd/nkms does not import
// store/etcd, which a binary built with -tags noetcd leaves out.
const DefaultEtcdPrefix = "/nkms/"

// errNoEtcd is what --store etcd gets from a binary built with -tags noetcd.
var errNoEtcd = errors.New("--store etcd: this nkms binary was built without etcd support (-tags noetcd); use a default build")

// openBackend opens the store that cfg.Store names.
func openBackend(ctx context.Context, cfg Config, log *slog.Logger) (*backend, error) {
	switch cfg.Store {
	case "etcd":
		return openEtcd(ctx, cfg, log)
	case "mem":
		return openMem(), nil
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

// openMem is a store in memory (store/mem): nothing outlives the process.
// It is for tests (nkmstest), where a data file would only cost time.
func openMem() *backend {
	st := mem.New()
	var mu sync.Mutex
	var check []byte
	return &backend{
		store: cache.New(st, 0),
		close: st.Close,
		lead:  func(ctx context.Context, fn func(context.Context)) { fn(ctx) },
		rootCheck: func(_ context.Context, candidate []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			if check == nil {
				check = candidate
			}
			return check, nil
		},
		where: "in memory",
	}
}

// nodeID names this node in leader elections: host name and process id.
func nodeID() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "node"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid()), nil
}
