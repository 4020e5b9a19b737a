package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// PutAccessKey creates or replaces the access key with a.ID.
func (s *Store) PutAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	rec, err := s.accessKeyRecord(ctx, a)
	if err != nil {
		return err
	}
	_, err = s.kv.Txn(ctx).Then(clientv3.OpPut(s.accessKeyKey(a.ID), string(rec)), s.accessKeyChanged(a.ID)).Commit()
	if err != nil {
		return fmt.Errorf("etcd store: put access key %s: %w", a.ID, err)
	}
	return nil
}

// CreateAccessKey stores a new access key; nkms.ErrAccessKeyExists if a.ID
// is taken. One txn: put if the key was never created (or was deleted).
func (s *Store) CreateAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	rec, err := s.accessKeyRecord(ctx, a)
	if err != nil {
		return err
	}
	key := s.accessKeyKey(a.ID)
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(rec)), s.accessKeyChanged(a.ID)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd store: create access key %s: %w", a.ID, err)
	}
	if !resp.Succeeded {
		return nkms.ErrAccessKeyExists
	}
	return nil
}

// accessKeyRecord checks the store and a, and encodes a.
func (s *Store) accessKeyRecord(ctx context.Context, a *nkms.AccessKey) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if a.ID == "" {
		return nil, nkms.Errorf(nkms.Invalid, "access key id is empty")
	}
	return codec.MarshalAccessKey(a)
}

// GetAccessKey returns the access key with the given id.
func (s *Store) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	resp, err := s.kv.Get(ctx, s.accessKeyKey(id))
	if err != nil {
		return nil, fmt.Errorf("etcd store: get access key %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nkms.ErrAccessKeyNotFound
	}
	a, err := codec.UnmarshalAccessKey(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("etcd store: access key %s: %w", id, err)
	}
	return a, nil
}

// ListAccessKeys returns every access key, ordered by ID (etcd's key order),
// read in pages of markerChunk at one revision.
func (s *Store) ListAccessKeys(ctx context.Context) ([]*nkms.AccessKey, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var err error
	for range 3 {
		var all []*nkms.AccessKey
		if all, err = s.listAccessKeys(ctx); !errors.Is(err, rpctypes.ErrCompacted) {
			return all, err
		}
		// etcd compacted the revision of the first page away: start again.
	}
	return nil, err
}

func (s *Store) listAccessKeys(ctx context.Context) ([]*nkms.AccessKey, error) {
	prefix := s.accessKeyKey("")
	end := clientv3.GetPrefixRangeEnd(prefix)
	all := []*nkms.AccessKey{}
	var rev int64
	for from := prefix; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(markerChunk)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.kv.Get(ctx, from, opts...)
		if err != nil {
			return nil, fmt.Errorf("etcd store: list access keys: %w", err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			a, err := codec.UnmarshalAccessKey(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("etcd store: access key %s: %w", kv.Key[len(prefix):], err)
			}
			all = append(all, a)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return all, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// DeleteAccessKey removes an access key; nkms.ErrAccessKeyNotFound if there
// is none. One txn: delete it if it exists.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	key := s.accessKeyKey(id)
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
		Then(clientv3.OpDelete(key), s.accessKeyChanged(id)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcd store: delete access key %s: %w", id, err)
	}
	if !resp.Succeeded {
		return nkms.ErrAccessKeyNotFound
	}
	return nil
}
