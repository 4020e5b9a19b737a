package bolt

// Usage logs (nkms.ActivityLog). Layout:
//
//	activities    tag → nested bucket of the key's entries: entry key → activity record
//	              (store/codec). The nested bucket's sequence is its number of entries;
//	              the activities bucket's sequence is the last entry number given out.
//	activityTime  entry key → tag: every entry in time order, for PruneActivities
//
// An entry key is its time (8 bytes, as in the due index) ‖ an entry number
// (8-byte BE, unique in the file), so that byte order is time order, then
// append order, and the same 16 bytes name the entry in both buckets. A key's
// log is one nested bucket so that any tag works as a prefix and Delete drops
// the whole log at once; the counter lets AppendActivities enforce maxPerKey
// and Activities answer an unfiltered total without walking the log.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
	"github.com/nkms/nkms/store/internal/activityfilter"
)

// appendFill is the fill percent of the activity buckets in AppendActivities:
// entries arrive mostly in key order, so pages may be filled nearly full.
const appendFill = 0.9

// pruneBatch bounds the entries that one transaction of PruneActivities removes.
const pruneBatch = 10_000

// entryKey is the key of the entry at t with number seq.
func entryKey(t time.Time, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(dueTime(t), seq)
}

// entryCount returns the number of entries of a key's log.
func entryCount(log *bbolt.Bucket) int { return int(log.Sequence()) }

// setEntryCount records the number of entries of a key's log.
func setEntryCount(log *bbolt.Bucket, n int) error {
	if err := log.SetSequence(uint64(n)); err != nil {
		return fmt.Errorf("count activities: %w", err)
	}
	return nil
}

// AppendActivities stores the entries of existing keys in one transaction and
// trims each touched key's log to its newest maxPerKey entries.
func (s *Store) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	recs := make([][]byte, len(entries))
	for i := range entries {
		var err error
		if recs[i], err = codec.MarshalActivity(&entries[i]); err != nil {
			return err
		}
	}
	return s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		b.activityTime.FillPercent = appendFill
		logs := map[string]*bbolt.Bucket{} // the touched logs; nil for a key that does not exist
		for i := range entries {
			tag := entries[i].Tag
			log, seen := logs[tag]
			if !seen {
				if b.keys.Get([]byte(tag)) != nil {
					if log, err = b.activities.CreateBucketIfNotExists([]byte(tag)); err != nil {
						return fmt.Errorf("activities of key %s: %w", tag, err)
					}
					log.FillPercent = appendFill
				}
				logs[tag] = log
			}
			if log == nil {
				continue // the key is gone; so is its log
			}
			seq, err := b.activities.NextSequence()
			if err != nil {
				return fmt.Errorf("next activity number: %w", err)
			}
			k := entryKey(entries[i].Time, seq)
			if err := log.Put(k, recs[i]); err != nil {
				return fmt.Errorf("store activity of key %s: %w", tag, err)
			}
			if err := b.activityTime.Put(k, []byte(tag)); err != nil {
				return fmt.Errorf("index activity of key %s: %w", tag, err)
			}
			if err := setEntryCount(log, entryCount(log)+1); err != nil {
				return err
			}
		}
		if maxPerKey > 0 {
			for tag, log := range logs {
				if log == nil || entryCount(log) <= maxPerKey {
					continue
				}
				if err := b.trimActivities(log, entryCount(log)-maxPerKey); err != nil {
					return fmt.Errorf("trim activities of key %s: %w", tag, err)
				}
			}
		}
		return nil
	})
}

// trimActivities removes the n oldest entries of log.
func (b *buckets) trimActivities(log *bbolt.Bucket, n int) error {
	old := make([][]byte, 0, n)
	c := log.Cursor()
	for k, _ := c.First(); k != nil && len(old) < n; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := log.Delete(k); err != nil {
			return err
		}
		if err := b.activityTime.Delete(k); err != nil {
			return err
		}
	}
	return setEntryCount(log, entryCount(log)-len(old))
}

// Activities returns one page of a key's entries that match q, newest first,
// and the number of all matching entries. It walks the key's log backwards
// from q.To; without a keyword only the page's entries are decoded, and when
// the whole log lies in [q.From, q.To] the total is the log's counter and the
// walk stops after the page. With a keyword, the entries whose records may
// match are decoded and matched.
func (s *Store) Activities(ctx context.Context, q nkms.ActivityQuery) ([]nkms.Activity, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if q.PageNo < 1 || q.PageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	keyword := activityfilter.NewKeyword(q.Keyword)
	lo, hi := entryKey(q.From, 0), entryKey(q.To, math.MaxUint64)
	skip := (q.PageNo - 1) * q.PageSize
	var page []nkms.Activity
	var total int
	err := s.view(func(tx *bbolt.Tx) error {
		page, total = []nkms.Activity{}, 0
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		log := b.activities.Bucket([]byte(q.Tag))
		if log == nil || bytes.Compare(lo, hi) > 0 {
			return nil
		}
		c := log.Cursor()
		whole := false // every entry is in the range and none is filtered out
		if keyword.Empty() {
			first, _ := c.First()
			last, _ := c.Last()
			whole = first != nil && bytes.Compare(first, lo) >= 0 && bytes.Compare(last, hi) <= 0
		}
		if whole && skip >= entryCount(log) {
			total = entryCount(log)
			return nil // past the end
		}
		k, v := c.Seek(hi)
		if k == nil {
			k, v = c.Last()
		} else if bytes.Compare(k, hi) > 0 {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.Compare(k, lo) >= 0; k, v = c.Prev() {
			inPage := total >= skip && len(page) < q.PageSize
			if !inPage && keyword.Empty() {
				if whole && total >= skip {
					break // the page is full and the counter has the total
				}
				total++
				continue
			}
			if !keyword.MayMatch(v) {
				continue // certainly no match: not worth decoding
			}
			a, err := codec.UnmarshalActivity(v)
			if err != nil {
				return fmt.Errorf("activities of key %s: %w", q.Tag, err)
			}
			if !keyword.Match(a) {
				continue
			}
			if inPage {
				page = append(page, *a)
			}
			total++
		}
		if whole {
			total = entryCount(log)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return page, total, nil
}

// LastActivity returns the key's newest entry; nkms.ErrNoActivity when it has
// none or does not exist.
func (s *Store) LastActivity(ctx context.Context, tag string) (*nkms.Activity, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *nkms.Activity
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		log := b.activities.Bucket([]byte(tag))
		if log == nil {
			return nkms.ErrNoActivity
		}
		k, v := log.Cursor().Last()
		if k == nil {
			return nkms.ErrNoActivity
		}
		if a, err = codec.UnmarshalActivity(v); err != nil {
			return fmt.Errorf("activities of key %s: %w", tag, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// PruneActivities removes every entry older than before, walking the time
// index from its start, at most pruneBatch entries per transaction. On an
// error it returns the number removed by the transactions that committed.
func (s *Store) PruneActivities(ctx context.Context, before time.Time) (int, error) {
	end := entryKey(before, 0) // entries with smaller keys are older than before
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var n int
		err := s.update(func(tx *bbolt.Tx) error {
			b, err := bucketsOf(tx)
			if err != nil {
				return err
			}
			n, err = b.pruneActivities(end, pruneBatch)
			return err
		})
		if err != nil {
			return removed, err
		}
		removed += n
		if n < pruneBatch {
			return removed, nil
		}
	}
}

// pruneActivities removes up to limit of the entries whose keys are below
// end, oldest first, and returns how many it removed. A log left empty is
// dropped.
func (b *buckets) pruneActivities(end []byte, limit int) (int, error) {
	type entry struct{ key, tag []byte }
	var old []entry
	c := b.activityTime.Cursor()
	for k, tag := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(old) < limit; k, tag = c.Next() {
		old = append(old, entry{bytes.Clone(k), bytes.Clone(tag)})
	}
	logs := map[string]*bbolt.Bucket{}
	for _, e := range old {
		log, seen := logs[string(e.tag)]
		if !seen {
			log = b.activities.Bucket(e.tag)
			logs[string(e.tag)] = log
		}
		if log != nil && log.Get(e.key) != nil {
			if err := log.Delete(e.key); err != nil {
				return 0, fmt.Errorf("prune activities of key %s: %w", e.tag, err)
			}
			if err := setEntryCount(log, entryCount(log)-1); err != nil {
				return 0, err
			}
		}
		if err := b.activityTime.Delete(e.key); err != nil {
			return 0, fmt.Errorf("prune activity index: %w", err)
		}
	}
	for tag, log := range logs {
		if log != nil && entryCount(log) <= 0 {
			if err := b.activities.DeleteBucket([]byte(tag)); err != nil {
				return 0, fmt.Errorf("prune activities of key %s: %w", tag, err)
			}
		}
	}
	return len(old), nil
}

// dropActivities removes the log of the key with tag, if it has one, and its
// entries in the time index.
func (b *buckets) dropActivities(tag []byte) error {
	log := b.activities.Bucket(tag)
	if log == nil {
		return nil
	}
	c := log.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if err := b.activityTime.Delete(k); err != nil {
			return fmt.Errorf("drop activities of key %s: %w", tag, err)
		}
	}
	if err := b.activities.DeleteBucket(tag); err != nil {
		return fmt.Errorf("drop activities of key %s: %w", tag, err)
	}
	return nil
}

// dropOrphanActivities removes the logs of keys that do not exist, which an
// nkms from before usage logs leaves when it deletes a key, and returns how
// many it removed.
func (b *buckets) dropOrphanActivities() (int, error) {
	var orphans [][]byte
	err := b.activities.ForEach(func(tag, _ []byte) error {
		if b.keys.Get(tag) == nil {
			orphans = append(orphans, bytes.Clone(tag))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, tag := range orphans {
		if err := b.dropActivities(tag); err != nil {
			return 0, err
		}
	}
	return len(orphans), nil
}
