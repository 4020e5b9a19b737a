package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// Create stores a new key with the next ID and returns the stored copy.
func (s *Store) Create(ctx context.Context, k *nkms.Key) (*nkms.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if k.Tag == "" {
		return nil, nkms.Errorf(nkms.Invalid, "key tag is empty")
	}
	c := k.Clone()
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if b.keys.Get([]byte(c.Tag)) != nil {
			return nkms.ErrKeyExists
		}
		id, err := b.meta.NextSequence()
		if err != nil {
			return fmt.Errorf("next key id: %w", err)
		}
		c.ID = int64(id)
		if err := b.reindex(c.Tag, nil, c); err != nil {
			return err
		}
		return putKey(b, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// putKey writes the record of k.
func putKey(b *buckets, k *nkms.Key) error {
	rec, err := codec.MarshalKey(k)
	if err != nil {
		return err
	}
	if err := b.keys.Put([]byte(k.Tag), rec); err != nil {
		return fmt.Errorf("store key %s: %w", k.Tag, err)
	}
	return nil
}

// getKey reads and decodes the key with tag; nkms.ErrKeyNotFound if absent.
func getKey(b *buckets, tag string) (*nkms.Key, error) {
	rec := b.keys.Get([]byte(tag))
	if rec == nil {
		return nil, nkms.ErrKeyNotFound
	}
	k, err := codec.UnmarshalKey(rec)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", tag, err)
	}
	return k, nil
}

// Get returns the key with the given tag.
func (s *Store) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var k *nkms.Key
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		k, err = getKey(b, tag)
		return err
	})
	return k, err
}

// List returns one page of a keystore's keys, newest first, and the number of
// keys in the keystore. The total is a counter in meta; the page is found by
// walking the byKeystore index backwards, and only its keys are decoded.
func (s *Store) List(ctx context.Context, keystore int64, pageNo, pageSize int) ([]*nkms.Key, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	keys := []*nkms.Key{}
	var total int
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		total = b.count(keystore)
		if total == 0 || pageNo-1 > (total-1)/pageSize {
			return nil // past the end
		}
		skip := (pageNo - 1) * pageSize
		prefix := keystorePrefix(keystore)
		c := b.byKeystore.Cursor()
		// Keys are prefix ‖ ID with ID < 2⁶³, so this seeks just past the keystore.
		var tag []byte
		k, _ := c.Seek(append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if k == nil {
			k, tag = c.Last()
		} else {
			k, tag = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(keys) < pageSize; k, tag = c.Prev() {
			if skip > 0 {
				skip--
				continue
			}
			key, err := getKey(b, string(tag))
			if err != nil {
				return fmt.Errorf("list keystore %d: %w", keystore, err)
			}
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return keys, total, nil
}

// Update runs fn on the stored key inside one transaction and stores the
// result if fn returns nil. An error from fn is returned as it is.
func (s *Store) Update(ctx context.Context, tag string, fn func(*nkms.Key) error) (*nkms.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var k *nkms.Key
	var fnErr error
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		old, err := getKey(b, tag)
		if err != nil {
			return err
		}
		k = old.Clone()
		if fnErr = fn(k); fnErr != nil {
			return fnErr
		}
		if k.Tag != old.Tag || k.ID != old.ID {
			return nkms.Errorf(nkms.Internal, "update must not change the key tag or id")
		}
		if err := b.reindex(tag, old, k); err != nil {
			return err
		}
		return putKey(b, k)
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Delete removes the key and its usage log if fn (nil means no check) returns
// nil for it, and marks the data file for scrubbing in the same transaction.
func (s *Store) Delete(ctx context.Context, tag string, fn func(*nkms.Key) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var fnErr error
	err := s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		k, err := getKey(b, tag)
		if err != nil {
			return err
		}
		if fn != nil {
			if fnErr = fn(k); fnErr != nil {
				return fnErr
			}
		}
		if err := b.reindex(tag, k, nil); err != nil {
			return err
		}
		if err := b.keys.Delete([]byte(tag)); err != nil {
			return fmt.Errorf("delete key %s: %w", tag, err)
		}
		if err := b.dropActivities([]byte(tag)); err != nil {
			return err
		}
		return markScrub(b)
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return err
	}
	s.wakeScrub()
	return nil
}

// Due returns the tags of at most limit keys due at or before now, earliest
// first (ties by tag), from the due index.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tags := []string{}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		end := dueTime(now)
		c := b.due.Cursor()
		for k, _ := c.First(); k != nil && len(tags) < limit && bytes.Compare(k[:8], end) <= 0; k, _ = c.Next() {
			tags = append(tags, string(k[8:]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tags, nil
}
