package bolt

// Usage logs (nkms.ActivityLog). Layout:
//
//	activities      tag → nested bucket of the key's entries (its log): entry key →
//	                activity record (store/codec). The nested bucket's sequence is
//	                its number of entries; the activities bucket's sequence is the
//	                last entry number given out.
//	activityOldest  time of a log's oldest entry (8 bytes, as in the due index) ‖ tag
//	                → empty: one row per non-empty log, for PruneActivities
//
// An entry key is its time (8 bytes, as in the due index) ‖ an entry number
// (8-byte BE, unique in the file), so that byte order is time order, then
// append order. A key's log is one nested bucket so that any tag works as a
// prefix and Delete drops the whole log at once; the counter lets
// AppendActivities enforce maxPerKey and Activities answer an unfiltered total
// without walking the log. Storing an entry costs one Put: the counter, the
// last entry number and a moved activityOldest row are written once per
// batch (per log), and a log's row moves only when its oldest entry's time
// changes. PruneActivities walks activityOldest from its start, so it visits
// only the logs that hold entries to remove.

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

// appendFill is the fill percent of the logs in AppendActivities:
// entries arrive mostly in key order, so pages may be filled nearly full.
const appendFill = 0.9

// pruneBatch bounds the entries that one transaction of PruneActivities removes.
const pruneBatch = 10_000

// entryKey is the key of the entry at t with number seq.
func entryKey(t time.Time, seq uint64) []byte {
	return appendEntryKey(make([]byte, 0, 16), t, seq)
}

// appendEntryKey appends entryKey(t, seq) to dst.
func appendEntryKey(dst []byte, t time.Time, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendTime(dst, t), seq)
}

// oldestKey is the activityOldest row of the log with tag whose oldest entry
// has the key first.
func oldestKey(first, tag []byte) []byte {
	return append(append(make([]byte, 0, 8+len(tag)), first[:8]...), tag...)
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

// headKeys returns copies of the keys of the (at most n) oldest entries of
// log that are below end (nil: no bound), and a copy of the key that follows
// them, nil when there is none. The caller deletes them after the walk, as
// bbolt's cursor may skip items when its bucket changes under it.
func headKeys(log *bbolt.Bucket, n int, end []byte) (keys [][]byte, next []byte) {
	var buf []byte // the keys, one after another
	var ends []int
	c := log.Cursor()
	k, _ := c.First()
	for ; k != nil && len(ends) < n && (end == nil || bytes.Compare(k, end) < 0); k, _ = c.Next() {
		buf = append(buf, k...)
		ends = append(ends, len(buf))
	}
	keys = make([][]byte, len(ends))
	from := 0
	for i, to := range ends {
		keys[i] = buf[from:to:to]
		from = to
	}
	return keys, bytes.Clone(k)
}

// deleteAll deletes keys from bk.
func deleteAll(bk *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// touchedLog is a log that AppendActivities writes to.
type touchedLog struct {
	tag   []byte
	log   *bbolt.Bucket
	first []byte // the time of its oldest entry before the batch; nil for an empty log
	added int    // entries added by the batch
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
		logs := map[string]*touchedLog{} // nil for a key that does not exist
		var touched []*touchedLog        // in the order of first appearance
		seq := b.activities.Sequence()   // the last entry number given out
		var key [16]byte                 // Put copies the key
		for i := range entries {
			tag := entries[i].Tag
			l, seen := logs[tag]
			if !seen {
				if l, err = b.touchLog(tag); err != nil {
					return err
				}
				logs[tag] = l
				if l != nil {
					touched = append(touched, l)
				}
			}
			if l == nil {
				continue // the key is gone; so is its log
			}
			seq++
			if err := l.log.Put(appendEntryKey(key[:0], entries[i].Time, seq), recs[i]); err != nil {
				return fmt.Errorf("store activity of key %s: %w", tag, err)
			}
			l.added++
		}
		if len(touched) == 0 {
			return nil
		}
		if err := b.activities.SetSequence(seq); err != nil {
			return fmt.Errorf("count activity numbers: %w", err)
		}
		for _, l := range touched {
			if err := b.settleLog(l, maxPerKey); err != nil {
				return fmt.Errorf("activities of key %s: %w", l.tag, err)
			}
		}
		return nil
	})
}

// touchLog returns the log of the key with tag, created if need be, for
// AppendActivities; nil when the key does not exist.
func (b *buckets) touchLog(tag string) (*touchedLog, error) {
	t := []byte(tag)
	if b.keys.Get(t) == nil {
		return nil, nil
	}
	log, err := b.activities.CreateBucketIfNotExists(t)
	if err != nil {
		return nil, fmt.Errorf("activities of key %s: %w", tag, err)
	}
	log.FillPercent = appendFill
	l := &touchedLog{tag: t, log: log}
	if first, _ := log.Cursor().First(); first != nil {
		l.first = bytes.Clone(first[:8])
	}
	return l, nil
}

// settleLog finishes a log that AppendActivities added l.added entries to:
// it trims the log to its newest maxPerKey entries (maxPerKey > 0), records
// its count and moves its activityOldest row if the time of its oldest entry
// changed.
func (b *buckets) settleLog(l *touchedLog, maxPerKey int) error {
	n := entryCount(l.log) + l.added
	var first []byte
	if maxPerKey > 0 && n > maxPerKey {
		old, next := headKeys(l.log, n-maxPerKey, nil)
		if err := deleteAll(l.log, old); err != nil {
			return fmt.Errorf("trim: %w", err)
		}
		n -= len(old)
		first = next
	} else if k, _ := l.log.Cursor().First(); k != nil {
		first = bytes.Clone(k[:8])
	}
	var old, row []byte // the log's activityOldest row before and after
	if l.first != nil {
		old = oldestKey(l.first, l.tag)
	}
	if first == nil {
		// Only a counter above the number of entries trims a log empty;
		// drop the log as PruneActivities would.
		if err := b.activities.DeleteBucket(l.tag); err != nil {
			return err
		}
	} else {
		if err := setEntryCount(l.log, n); err != nil {
			return err
		}
		if l.first != nil && bytes.Equal(first[:8], l.first) {
			return nil // the row stays
		}
		row = oldestKey(first, l.tag)
	}
	if err := move(b.activityOldest, old, row, []byte{}); err != nil {
		return fmt.Errorf("index the oldest activity: %w", err)
	}
	return nil
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

// PruneActivities removes every entry older than before, walking the logs
// in the order of their oldest entries, at most pruneBatch entries per
// transaction. On an error it returns the number removed by the transactions
// that committed.
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
// end, the logs with the oldest entries first, and returns how many it
// removed. A log left empty is dropped; a log left with entries gets the row
// of its new oldest entry.
func (b *buckets) pruneActivities(end []byte, limit int) (int, error) {
	endTime := end[:8]
	removed := 0
	for removed < limit {
		row, _ := b.activityOldest.Cursor().First()
		if row == nil || len(row) >= 8 && bytes.Compare(row[:8], endTime) >= 0 {
			break // no log has entries older than end
		}
		row = bytes.Clone(row)
		if err := b.activityOldest.Delete(row); err != nil {
			return 0, fmt.Errorf("prune activity index: %w", err)
		}
		if len(row) < 8 {
			continue // not a row; cannot happen
		}
		tag := row[8:]
		log := b.activities.Bucket(tag)
		if log == nil {
			continue // a row without a log; cannot happen
		}
		old, next := headKeys(log, limit-removed, end)
		if err := deleteAll(log, old); err != nil {
			return 0, fmt.Errorf("prune activities of key %s: %w", tag, err)
		}
		removed += len(old)
		if next == nil {
			if err := b.activities.DeleteBucket(tag); err != nil {
				return 0, fmt.Errorf("prune activities of key %s: %w", tag, err)
			}
			continue
		}
		if err := setEntryCount(log, entryCount(log)-len(old)); err != nil {
			return 0, err
		}
		if err := b.activityOldest.Put(oldestKey(next, tag), []byte{}); err != nil {
			return 0, fmt.Errorf("prune activity index: %w", err)
		}
	}
	return removed, nil
}

// dropActivities removes the log of the key with tag, if it has one, and its
// activityOldest row.
func (b *buckets) dropActivities(tag []byte) error {
	log := b.activities.Bucket(tag)
	if log == nil {
		return nil
	}
	if first, _ := log.Cursor().First(); first != nil {
		if err := b.activityOldest.Delete(oldestKey(first, tag)); err != nil {
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

// migrateTimeIndex turns a file of layout 1 into layout 2: it fills
// activityOldest (which Open created empty) from the oldest entry of every
// log, drops the per-entry time index activityTime, and records the new
// version.
func migrateTimeIndex(tx *bbolt.Tx, b *buckets) error {
	err := b.activities.ForEach(func(tag, v []byte) error {
		if v != nil {
			return nil // not a log; cannot happen
		}
		first, _ := b.activities.Bucket(tag).Cursor().First()
		if first == nil {
			return nil // an empty log has no row
		}
		return b.activityOldest.Put(oldestKey(first, tag), []byte{})
	})
	if err != nil {
		return fmt.Errorf("index the oldest activities: %w", err)
	}
	if tx.Bucket(bucketActTime) != nil {
		if err := tx.DeleteBucket(bucketActTime); err != nil {
			return fmt.Errorf("drop the activity time index: %w", err)
		}
	}
	return b.meta.Put(metaSchema, be64(schema))
}
