package etcd

// What the nodes of a cluster need from etcd besides the Store: one leader
// for the scheduler, news of keys deleted by other nodes, a health check and
// agreement on the root key.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// LeaderTTL is the lease of a leader: when a leader dies (or loses etcd),
// another node takes over at most this long after its last keep-alive.
const LeaderTTL = 5 * time.Second

// RunAsLeader campaigns for the leadership called name among the stores on
// this prefix, with id naming this node, and runs fn while it leads: fn's
// context ends when the leadership is lost (the lease expired or was
// revoked) or ctx ends. It campaigns again after losing, until ctx ends.
func (s *Store) RunAsLeader(ctx context.Context, name, id string, fn func(ctx context.Context)) {
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx, name, id, fn); err != nil && ctx.Err() == nil {
			s.log.Warn("etcd: leader election", "name", name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// leadOnce waits to be elected, runs fn until the leadership ends, and resigns.
func (s *Store) leadOnce(ctx context.Context, name, id string, fn func(ctx context.Context)) error {
	sess, err := concurrency.NewSession(s.client, concurrency.WithTTL(int(LeaderTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close() // revokes the lease: a successor need not wait for it to expire
	el := concurrency.NewElection(sess, s.prefix+"election/"+name)
	if err := el.Campaign(ctx, id); err != nil {
		return err
	}
	s.log.Info("etcd: leading", "name", name, "node", id)
	lead, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-sess.Done(): // the lease is gone: another node may lead already
			s.log.Warn("etcd: leadership lost", "name", name, "node", id)
		case <-lead.Done():
		}
		stop()
	}()
	fn(lead)
	resignCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	el.Resign(resignCtx) //nolint:errcheck // closing the session revokes the lease anyway
	return nil
}

// WatchDeletedKeys calls fn with the tag of every key record that any node
// deletes from now until ctx ends (a destroyed key, whose unsealed material
// a node may still hold in memory). A broken watch is restarted; deletions
// while it was down are missed, which only delays forgetting material that
// can no longer be used: every request reads the key from etcd.
func (s *Store) WatchDeletedKeys(ctx context.Context, fn func(tag string)) {
	prefix := s.prefix + "keys/"
	for ctx.Err() == nil {
		wctx := clientv3.WithRequireLeader(ctx)
		for resp := range s.client.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithFilterPut()) {
			if err := resp.Err(); err != nil {
				s.log.Warn("etcd: watch of deleted keys", "err", err)
				break
			}
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					fn(strings.TrimPrefix(string(ev.Kv.Key), prefix))
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// Ready reports whether the cluster answers a linearizable read (which needs
// a quorum) within timeout.
func (s *Store) Ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := s.kv.Get(ctx, s.prefix+"schema", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd does not answer: %w", err)
	}
	return nil
}

// RootCheck stores candidate as the prefix's root-key check value when it
// has none, and returns the stored value: a value sealed under the root key
// of the first node, which every other node must be able to open.
func (s *Store) RootCheck(ctx context.Context, candidate []byte) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	key := s.prefix + "meta/rootCheck"
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(candidate))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd store: root key check: %w", err)
	}
	if resp.Succeeded {
		return candidate, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) != 1 {
		return nil, errors.New("etcd store: root key check vanished")
	}
	return kvs[0].Value, nil
}
