package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// Create stores a new key with the next ID of its keystore and returns the
// stored copy.
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
		if c.ID, err = b.nextID(c.Keystore); err != nil {
			return err
		}
		if err := b.reindex(c.Tag, nil, c); err != nil {
			return err
		}
		return putKey(b, nil, c)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// versionFill is the fill percent of the version buckets: versions are
// appended in number order, so a page that splits may stay fuller than
// bbolt's default of half.
const versionFill = 0.9

// versionKey is the key of version n in a key's versions bucket.
func versionKey(n int) []byte { return be64(uint64(n)) }

// putKey writes the record of k and the records of those of its versions
// that differ from old's (old nil: a new key, all of them); versions of old
// beyond k's are deleted. So a rotation writes one version record.
func putKey(b *buckets, old, k *nkms.Key) error {
	if err := codec.CheckNumbers(k.Versions); err != nil {
		return nkms.Errorf(nkms.Internal, "store key %s: %v", k.Tag, err)
	}
	rec, err := codec.MarshalKey(k)
	if err != nil {
		return err
	}
	if err := b.keys.Put([]byte(k.Tag), rec); err != nil {
		return fmt.Errorf("store key %s: %w", k.Tag, err)
	}
	var prev []nkms.Version
	if old != nil {
		prev = old.Versions
	}
	vb := b.versions.Bucket([]byte(k.Tag))
	for i := range k.Versions {
		v := &k.Versions[i]
		if i < len(prev) && codec.VersionsEqual(&prev[i], v) {
			continue
		}
		rec, err := codec.MarshalVersion(v)
		if err != nil {
			return fmt.Errorf("store key %s: %w", k.Tag, err)
		}
		if vb == nil {
			if vb, err = b.versions.CreateBucket([]byte(k.Tag)); err != nil {
				return fmt.Errorf("store key %s: versions: %w", k.Tag, err)
			}
		}
		vb.FillPercent = versionFill
		if err := vb.Put(versionKey(v.Number), rec); err != nil {
			return fmt.Errorf("store key %s: version %d: %w", k.Tag, v.Number, err)
		}
	}
	for n := len(k.Versions) + 1; n <= len(prev) && vb != nil; n++ {
		if err := vb.Delete(versionKey(n)); err != nil {
			return fmt.Errorf("store key %s: delete version %d: %w", k.Tag, n, err)
		}
	}
	return nil
}

// getKey reads and decodes the key with tag and its versions;
// nkms.ErrKeyNotFound if absent.
func getKey(b *buckets, tag string) (*nkms.Key, error) {
	rec := b.keys.Get([]byte(tag))
	if rec == nil {
		return nil, nkms.ErrKeyNotFound
	}
	k, n, err := codec.UnmarshalKey(rec)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", tag, err)
	}
	var vb *bbolt.Bucket
	if b.versions != nil { // nil only for ReadFile of a file of layout 1 or 2
		vb = b.versions.Bucket([]byte(tag))
	}
	recs := make([][]byte, 0, min(n, nkms.MaxVersions)) // n is not trusted to size an allocation
	if vb != nil {
		c := vb.Cursor()
		for _, v := c.First(); v != nil; _, v = c.Next() {
			recs = append(recs, v)
		}
	}
	vs, err := codec.UnmarshalVersions(recs)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", tag, err)
	}
	if err := codec.SetVersions(k, n, vs); err != nil {
		return nil, err
	}
	return k, nil
}

// deleteVersions removes the versions bucket of the key with tag, if any.
func deleteVersions(b *buckets, tag []byte) error {
	if err := b.versions.DeleteBucket(tag); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
		return fmt.Errorf("delete the versions of key %s: %w", tag, err)
	}
	return nil
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

// ListVersions returns one page of a key's versions, ascending, and their
// number; it decodes the key record and the page's version records only.
func (s *Store) ListVersions(ctx context.Context, tag string, pageNo, pageSize int) ([]nkms.Version, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	page := []nkms.Version{}
	var total int
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		rec := b.keys.Get([]byte(tag))
		if rec == nil {
			return nkms.ErrKeyNotFound
		}
		if _, total, err = codec.UnmarshalKey(rec); err != nil {
			return fmt.Errorf("key %s: %w", tag, err)
		}
		if total == 0 || pageNo-1 > (total-1)/pageSize {
			return nil // past the end
		}
		first := (pageNo-1)*pageSize + 1
		vb := b.versions.Bucket([]byte(tag))
		if vb == nil {
			return fmt.Errorf("key %s: no version records, the key record says %d", tag, total)
		}
		var recs [][]byte
		c := vb.Cursor()
		for k, v := c.Seek(versionKey(first)); k != nil && len(recs) < pageSize; k, v = c.Next() {
			recs = append(recs, v)
		}
		vs, err := codec.UnmarshalVersions(recs)
		if err != nil {
			return fmt.Errorf("key %s: %w", tag, err)
		}
		for i, v := range vs {
			if v.Number != first+i {
				return fmt.Errorf("key %s: version %d where %d belongs", tag, v.Number, first+i)
			}
		}
		if want := min(pageSize, total-first+1); len(vs) != want {
			return fmt.Errorf("key %s: %d version records from %d, the key record says %d", tag, len(vs), first, total)
		}
		page = vs
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return page, total, nil
}

// Update runs fn on the stored key inside one transaction and stores the
// result if fn returns nil: the key record and the versions fn added or
// changed. An error from fn is returned as it is.
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
		return putKey(b, old, k)
	})
	if fnErr != nil {
		return nil, fnErr
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Delete removes the key, its versions and its usage log if fn (nil means
// no check) returns nil for it, and marks the data file for scrubbing in the
// same transaction.
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
		if err := deleteVersions(b, []byte(tag)); err != nil {
			return err
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
