package bolt

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// migrateKeys moves the keys of a data file of layout 1 or 2 to layout 3,
// in Open's transaction (so all of it or nothing): every key record of
// format 1 gives its versions records of their own, and each keystore's keys
// are renumbered 1..n in the order of their old, server-wide IDs, so that
// list order is kept; the keystore index, the key counts and the last IDs
// are rebuilt from the key records. Records already of format 2 are
// renumbered the same way (a file can hold them if a layout-3 nkms wrote it
// and something set its layout back; the migration does not mind).
func migrateKeys(tx *bbolt.Tx, b *buckets) error {
	type entry struct {
		keystore, id int64
		tag          []byte
	}
	var keys []entry
	err := b.keys.ForEach(func(tag, rec []byte) error {
		k, err := readKey(b, tag, rec)
		if err != nil {
			return err
		}
		keys = append(keys, entry{k.Keystore, k.ID, bytes.Clone(tag)})
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(keys, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.keystore, b.keystore), cmp.Compare(a.id, b.id), bytes.Compare(a.tag, b.tag))
	})
	if err := tx.DeleteBucket(bucketByKeystore); err != nil {
		return fmt.Errorf("rebuild the keystore index: %w", err)
	}
	if b.byKeystore, err = tx.CreateBucket(bucketByKeystore); err != nil {
		return fmt.Errorf("rebuild the keystore index: %w", err)
	}
	if err := deletePrefix(b.meta, metaCount); err != nil {
		return fmt.Errorf("recount the keys: %w", err)
	}
	last := map[int64]int64{}
	for _, e := range keys {
		k, err := readKey(b, e.tag, b.keys.Get(e.tag))
		if err != nil {
			return err
		}
		last[k.Keystore]++
		k.ID = last[k.Keystore]
		if err := deleteVersions(b, e.tag); err != nil { // rewritten whole below
			return err
		}
		if err := putKey(b, nil, k); err != nil {
			return err
		}
		if err := b.byKeystore.Put(keystoreKey(k), e.tag); err != nil {
			return fmt.Errorf("index keystore: %w", err)
		}
	}
	for keystore, n := range last {
		if err := b.meta.Put(lastIDKey(keystore), be64(uint64(n))); err != nil {
			return err
		}
		if err := b.meta.Put(countKey(keystore), be64(uint64(n))); err != nil {
			return err
		}
	}
	if err := dropOrphanVersions(b); err != nil {
		return err
	}
	return b.meta.Put(metaSchema, be64(schema))
}

// readKey decodes the key record rec of tag, of format 1 (with its versions
// inside) or 2 (with its versions in their bucket).
func readKey(b *buckets, tag, rec []byte) (*nkms.Key, error) {
	f, err := codec.KeyRecordFormat(rec)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", tag, err)
	}
	if f == codec.KeyFormatV1 {
		k, err := codec.UnmarshalKeyV1(rec)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", tag, err)
		}
		return k, nil
	}
	return getKey(b, string(tag))
}

// deletePrefix deletes the keys of bk that start with prefix.
func deletePrefix(bk *bbolt.Bucket, prefix []byte) error {
	var del [][]byte
	c := bk.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		del = append(del, bytes.Clone(k))
	}
	for _, k := range del {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// dropOrphanVersions removes the version buckets of keys that do not exist.
func dropOrphanVersions(b *buckets) error {
	var orphans [][]byte
	err := b.versions.ForEach(func(tag, _ []byte) error {
		if b.keys.Get(tag) == nil {
			orphans = append(orphans, bytes.Clone(tag))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, tag := range orphans {
		if err := deleteVersions(b, tag); err != nil {
			return err
		}
	}
	if len(orphans) > 0 {
		return markScrub(b)
	}
	return nil
}
