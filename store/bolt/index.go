package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
)

// buckets are the buckets of one transaction.
type buckets struct {
	keys, versions, names, byKeystore, due, accessKeys, meta *bbolt.Bucket
	activities, activityOldest                               *bbolt.Bucket
}

// bucketsOf returns the buckets of tx; Open created them all.
func bucketsOf(tx *bbolt.Tx) (*buckets, error) {
	b := &buckets{
		keys: tx.Bucket(bucketKeys), versions: tx.Bucket(bucketVersions),
		names: tx.Bucket(bucketNames), byKeystore: tx.Bucket(bucketByKeystore),
		due: tx.Bucket(bucketDue), accessKeys: tx.Bucket(bucketAccessKeys), meta: tx.Bucket(bucketMeta),
		activities: tx.Bucket(bucketActivities), activityOldest: tx.Bucket(bucketActOldest),
	}
	if b.keys == nil || b.versions == nil || b.names == nil || b.byKeystore == nil || b.due == nil || b.accessKeys == nil || b.meta == nil ||
		b.activities == nil || b.activityOldest == nil {
		return nil, fmt.Errorf("data file is missing a bucket")
	}
	return b, nil
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// keystorePrefix is the first 8 bytes of the names and byKeystore keys.
func keystorePrefix(keystore int64) []byte { return be64(uint64(keystore)) }

// nameKey is the names bucket key of k, or nil for no key.
func nameKey(k *nkms.Key) []byte {
	if k == nil {
		return nil
	}
	return append(keystorePrefix(k.Keystore), nkms.NameKey(k.Name)...)
}

// keystoreKey is the byKeystore bucket key of k, or nil for no key.
func keystoreKey(k *nkms.Key) []byte {
	if k == nil {
		return nil
	}
	return binary.BigEndian.AppendUint64(keystorePrefix(k.Keystore), uint64(k.ID))
}

// dueKey is the due bucket key of k, or nil when k is nil or has no due time.
func dueKey(k *nkms.Key) []byte {
	if k == nil {
		return nil
	}
	at, ok := k.DueAt()
	if !ok {
		return nil
	}
	return append(dueTime(at), k.Tag...)
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// dueTime encodes t as Unix nanoseconds, 8 bytes big-endian with the sign bit
// flipped so that byte order is time order for dates before 1970 as well.
// Times that nanoseconds cannot hold (the zero time among them) are clamped:
// such a time is due at once or never.
func dueTime(t time.Time) []byte { return appendTime(make([]byte, 0, 8), t) }

// appendTime appends the 8 bytes of dueTime(t) to dst.
func appendTime(dst []byte, t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minNanos): // and the zero time
		n = math.MinInt64
	case t.After(maxNanos):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(dst, uint64(n)^1<<63)
}

// countKey is the meta key of a keystore's key count.
func countKey(keystore int64) []byte {
	return append(bytes.Clone(metaCount), keystorePrefix(keystore)...)
}

// count returns the number of keys in a keystore.
func (b *buckets) count(keystore int64) int {
	if v := b.meta.Get(countKey(keystore)); len(v) == 8 {
		return int(beUint64(v))
	}
	return 0
}

// lastIDKey is the meta key of the last key ID given out in a keystore.
func lastIDKey(keystore int64) []byte {
	return append(bytes.Clone(metaLastID), keystorePrefix(keystore)...)
}

// nextID returns the next key ID of a keystore and records it as given out.
func (b *buckets) nextID(keystore int64) (int64, error) {
	var last uint64
	if v := b.meta.Get(lastIDKey(keystore)); len(v) == 8 {
		last = beUint64(v)
	}
	if last >= math.MaxInt64 {
		return 0, errors.New("no key ID left in the keystore")
	}
	if err := b.meta.Put(lastIDKey(keystore), be64(last+1)); err != nil {
		return 0, fmt.Errorf("next key id: %w", err)
	}
	return int64(last + 1), nil
}

// addCount changes a keystore's key count by delta.
func (b *buckets) addCount(keystore int64, delta int) error {
	n := b.count(keystore) + delta
	if n <= 0 {
		return b.meta.Delete(countKey(keystore))
	}
	return b.meta.Put(countKey(keystore), be64(uint64(n)))
}

// reindex moves the index entries of the key with tag from old to new: nil old
// is a create, nil new a delete. Only entries that change are written. A new
// name already used in the keystore is nkms.ErrNameConflict; the caller's
// transaction then rolls back what reindex did.
func (b *buckets) reindex(tag string, old, new *nkms.Key) error {
	if on, nn := nameKey(old), nameKey(new); !bytes.Equal(on, nn) {
		if nn != nil && b.names.Get(nn) != nil {
			return nkms.ErrNameConflict
		}
		if err := move(b.names, on, nn, []byte(tag)); err != nil {
			return fmt.Errorf("index name: %w", err)
		}
	}
	if ok, nk := keystoreKey(old), keystoreKey(new); !bytes.Equal(ok, nk) {
		if err := move(b.byKeystore, ok, nk, []byte(tag)); err != nil {
			return fmt.Errorf("index keystore: %w", err)
		}
		if old != nil {
			if err := b.addCount(old.Keystore, -1); err != nil {
				return fmt.Errorf("count keys: %w", err)
			}
		}
		if new != nil {
			if err := b.addCount(new.Keystore, +1); err != nil {
				return fmt.Errorf("count keys: %w", err)
			}
		}
	}
	if od, nd := dueKey(old), dueKey(new); !bytes.Equal(od, nd) {
		if err := move(b.due, od, nd, []byte{}); err != nil {
			return fmt.Errorf("index due time: %w", err)
		}
	}
	return nil
}

// move deletes key from (unless nil) and puts key to (unless nil) with value v.
func move(bk *bbolt.Bucket, from, to, v []byte) error {
	if from != nil {
		if err := bk.Delete(from); err != nil {
			return err
		}
	}
	if to != nil {
		return bk.Put(to, v)
	}
	return nil
}
