package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// PutAccessKey creates or replaces the access key with a.ID. Replacing one
// schedules a scrub, since the old sealed secret lingers in freed pages.
func (s *Store) PutAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	return s.putAccessKey(ctx, a, true)
}

// CreateAccessKey stores a new access key; nkms.ErrAccessKeyExists if a.ID is taken.
func (s *Store) CreateAccessKey(ctx context.Context, a *nkms.AccessKey) error {
	return s.putAccessKey(ctx, a, false)
}

func (s *Store) putAccessKey(ctx context.Context, a *nkms.AccessKey, replace bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.ID == "" {
		return nkms.Errorf(nkms.Invalid, "access key id is empty")
	}
	rec, err := codec.MarshalAccessKey(a)
	if err != nil {
		return err
	}
	replaced := false
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		old := b.accessKeys.Get([]byte(a.ID))
		if old != nil && !replace {
			return nkms.ErrAccessKeyExists
		}
		if old != nil && !bytes.Equal(old, rec) {
			replaced = true
			if err := markScrub(b); err != nil {
				return err
			}
		}
		if err := b.accessKeys.Put([]byte(a.ID), rec); err != nil {
			return fmt.Errorf("store access key %s: %w", a.ID, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if replaced {
		s.wakeScrub()
	}
	return nil
}

// GetAccessKey returns the access key with the given id.
func (s *Store) GetAccessKey(ctx context.Context, id string) (*nkms.AccessKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *nkms.AccessKey
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec := b.accessKeys.Get([]byte(id))
		if rec == nil {
			return nkms.ErrAccessKeyNotFound
		}
		if a, err = codec.UnmarshalAccessKey(rec); err != nil {
			return fmt.Errorf("access key %s: %w", id, err)
		}
		return nil
	})
	return a, err
}

// ListAccessKeys returns every access key, ordered by ID.
func (s *Store) ListAccessKeys(ctx context.Context) ([]*nkms.AccessKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all := []*nkms.AccessKey{}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		return b.accessKeys.ForEach(func(id, rec []byte) error {
			a, err := codec.UnmarshalAccessKey(rec)
			if err != nil {
				return fmt.Errorf("access key %s: %w", id, err)
			}
			all = append(all, a)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return all, nil
}

// DeleteAccessKey removes an access key; its sealed secret is scrubbed from
// the data file like a deleted key's material.
func (s *Store) DeleteAccessKey(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if b.accessKeys.Get([]byte(id)) == nil {
			return nkms.ErrAccessKeyNotFound
		}
		if err := markScrub(b); err != nil {
			return err
		}
		if err := b.accessKeys.Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete access key %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.wakeScrub()
	return nil
}
