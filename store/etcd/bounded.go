package etcd

// Bounded failure: every etcd request of the store has a deadline, so that a
// request that reached an etcd leader as it died, or a cluster without a
// quorum, answers within a bound (nkms.Unavailable: the API's 503 with
// Retry-After) instead of waiting for etcd's own timeouts.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nkms/nkms"
)

// DefaultTimeout is Options.Timeout when it is zero: the longest one etcd
// request of the store may take. A new raft leader is elected about a second
// (etcd's default election timeout) after the old one died.
const DefaultTimeout = time.Second

// ErrUnavailable is returned (wrapped) when etcd did not answer in time or
// has no leader. It is an Unavailable error: the API answers 503 with
// Retry-After, and the caller may retry.
var ErrUnavailable = &nkms.Error{Code: nkms.Unavailable, Message: "the etcd cluster did not answer in time; retry"}

// boundedKV gives every request of the KV it wraps a deadline and turns the
// errors of an unreachable or leaderless cluster into ErrUnavailable.
type boundedKV struct {
	clientv3.KV
	timeout time.Duration
}

func (b boundedKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	bctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.KV.Get(bctx, key, opts...)
	return resp, unavailable(ctx, err)
}

func (b boundedKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	bctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.KV.Put(bctx, key, val, opts...)
	return resp, unavailable(ctx, err)
}

func (b boundedKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	bctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.KV.Delete(bctx, key, opts...)
	return resp, unavailable(ctx, err)
}

func (b boundedKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	bctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	resp, err := b.KV.Do(bctx, op)
	return resp, unavailable(ctx, err)
}

// Txn returns a txn whose Commit has the deadline; the time counts from
// Commit, not from Txn.
func (b boundedKV) Txn(ctx context.Context) clientv3.Txn {
	return &boundedTxn{kv: b.KV, ctx: ctx, timeout: b.timeout}
}

// boundedTxn collects a txn and sends it in Commit, under the deadline.
type boundedTxn struct {
	kv              clientv3.KV
	ctx             context.Context
	timeout         time.Duration
	cmps            []clientv3.Cmp
	thenOps, elseOp []clientv3.Op
}

func (t *boundedTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.cmps = append(t.cmps, cs...)
	return t
}

func (t *boundedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.thenOps = append(t.thenOps, ops...)
	return t
}

func (t *boundedTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.elseOp = append(t.elseOp, ops...)
	return t
}

func (t *boundedTxn) Commit() (*clientv3.TxnResponse, error) {
	bctx, cancel := context.WithTimeout(t.ctx, t.timeout)
	defer cancel()
	resp, err := t.kv.Txn(bctx).If(t.cmps...).Then(t.thenOps...).Else(t.elseOp...).Commit()
	return resp, unavailable(t.ctx, err)
}

// unavailable returns err, as ErrUnavailable when it says that etcd did not
// answer in time (and ctx, the caller's, has not ended: then the caller gave
// up, and gets its own error) or has no leader.
func unavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// isUnavailable reports whether err is a deadline or an etcd that cannot
// serve now (no leader, leader changed, request timed out, no endpoint).
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		return true
	}
	if errors.Is(err, rpctypes.ErrLeaderChanged) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
