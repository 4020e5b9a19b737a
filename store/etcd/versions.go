package etcd

import (
	"context"
	"fmt"
	"math"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// A key is its record (keys/<tag>) and its version records
// (vers/<tag*>/<number>); the record's mod revision guards both, since
// every write of a version writes the record too.

// readKeyOps are the operations of a txn that reads the key with tag: its
// record and its version records, at one revision.
func (s *Store) readKeyOps(tag string) []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(s.keyKey(tag)), clientv3.OpGet(s.versionsPrefix(tag), clientv3.WithPrefix())}
}

// stored is a key as read: its record (nil if there is none) and the
// records of its versions.
type stored struct {
	rec      *mvccpb.KeyValue
	versions []*mvccpb.KeyValue
}

// storedFrom returns the key that the responses of readKeyOps hold.
func storedFrom(resps []*etcdserverpb.ResponseOp) stored {
	return stored{first(resps[0].GetResponseRange().Kvs), resps[1].GetResponseRange().Kvs}
}

// readKey reads the key with tag, at one revision.
func (s *Store) readKey(ctx context.Context, tag string) (stored, error) {
	resp, err := s.kv.Txn(ctx).Then(s.readKeyOps(tag)...).Commit()
	if err != nil {
		return stored{}, err
	}
	return storedFrom(resp.Responses), nil
}

// decode returns the key that st holds with all its versions;
// nkms.ErrKeyNotFound when there is no record.
func (st stored) decode(tag string) (*nkms.Key, error) {
	if st.rec == nil {
		return nil, nkms.ErrKeyNotFound
	}
	k, n, err := codec.UnmarshalKey(st.rec.Value)
	if err != nil {
		return nil, fmt.Errorf("etcd store: key %s: %w", tag, err)
	}
	recs := make([][]byte, len(st.versions))
	for i, kv := range st.versions {
		recs[i] = kv.Value
	}
	vs, err := codec.UnmarshalVersions(recs)
	if err != nil {
		return nil, fmt.Errorf("etcd store: key %s: %w", tag, err)
	}
	if err := codec.SetVersions(k, n, vs); err != nil {
		return nil, fmt.Errorf("etcd store: %w", err)
	}
	return k, nil
}

// versionOps returns the operations that store the versions of a key that
// had old and now has new: a put of each version that is new or changed
// (a rotation: one), and a delete of those past the end of new. It checks
// that new is numbered 1..n.
func (s *Store) versionOps(tag string, old, new []nkms.Version) ([]clientv3.Op, error) {
	if err := codec.CheckNumbers(new); err != nil {
		return nil, nkms.Errorf(nkms.Internal, "key %s: %v", tag, err)
	}
	var ops []clientv3.Op
	for i := range new {
		v := &new[i]
		if i < len(old) && codec.VersionsEqual(&old[i], v) {
			continue
		}
		rec, err := codec.MarshalVersion(v)
		if err != nil {
			return nil, err
		}
		ops = append(ops, clientv3.OpPut(s.versionKey(tag, v.Number), string(rec)))
	}
	if len(old) > len(new) {
		ops = append(ops, clientv3.OpDelete(s.versionKey(tag, len(new)+1),
			clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.versionsPrefix(tag)))))
	}
	return ops, nil
}

// fits refuses a txn of more operations or bytes than etcd takes in one
// request. Only a Create or Update that writes many versions at once can
// come near (nkms writes one at a time).
func (s *Store) fits(ops []clientv3.Op) error {
	size := 0
	for _, op := range ops {
		size += len(op.KeyBytes()) + len(op.ValueBytes())
	}
	if len(ops) > s.maxOps || size > maxTxnBytes {
		return nkms.Errorf(nkms.Internal, "%d operations of %d bytes in one txn; at most %d of %d bytes (too many versions written at once)",
			len(ops), size, s.maxOps, maxTxnBytes)
	}
	return nil
}

// ListVersions returns one page of a key's versions, ascending, and their
// number: one txn reads the key record and the page's version records.
func (s *Store) ListVersions(ctx context.Context, tag string, pageNo, pageSize int) ([]nkms.Version, int, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	ops := []clientv3.Op{clientv3.OpGet(s.keyKey(tag))}
	// Version numbers fit in 32 bits (codec), so a page that starts past
	// that is past the end: its versions need no read.
	firstNo := uint64(0)
	if uint64(pageNo-1) <= math.MaxUint32/uint64(pageSize) {
		firstNo = uint64(pageNo-1)*uint64(pageSize) + 1
		ops = append(ops, clientv3.OpGet(s.versionKey(tag, int(firstNo)),
			clientv3.WithRange(s.versionKey(tag, int(firstNo+uint64(pageSize))))))
	}
	resp, err := s.kv.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("etcd store: list versions of key %s: %w", tag, err)
	}
	rec := first(resp.Responses[0].GetResponseRange().Kvs)
	if rec == nil {
		return nil, 0, nkms.ErrKeyNotFound
	}
	_, total, err := codec.UnmarshalKey(rec.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("etcd store: key %s: %w", tag, err)
	}
	page := []nkms.Version{}
	if firstNo == 0 || firstNo > uint64(total) {
		return page, total, nil
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	recs := make([][]byte, len(kvs))
	for i, kv := range kvs {
		recs[i] = kv.Value
	}
	vs, err := codec.UnmarshalVersions(recs)
	if err != nil {
		return nil, 0, fmt.Errorf("etcd store: key %s: %w", tag, err)
	}
	if want := min(uint64(pageSize), uint64(total)-firstNo+1); uint64(len(vs)) != want {
		return nil, 0, fmt.Errorf("etcd store: key %s: %d version records from %d, the key record says %d", tag, len(vs), firstNo, total)
	}
	for i, v := range vs {
		if uint64(v.Number) != firstNo+uint64(i) {
			return nil, 0, fmt.Errorf("etcd store: key %s: version %d where %d belongs", tag, v.Number, firstNo+uint64(i))
		}
	}
	return append(page, vs...), total, nil
}
