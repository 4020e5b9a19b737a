package bolt

// Usage logs (nkms.ActivityLog). Layout:
//
//	activities      log name → nested bucket of a log's entries: entry key →
//	                activity record (store/codec). The nested bucket's sequence
//	                is its number of entries; the activities bucket's sequence
//	                is the last entry number given out.
//	activityOldest  time of a log's oldest entry (8 bytes, as in the due index) ‖
//	                log name → empty: one row per non-empty log, for PruneActivities
//
// A key has up to two logs: its ordinary entries under its tag, and its
// refusals (nkms.Activity.Refused) under tag ‖ "/refused" (a tag is hex, so
// the names never meet). Each log has its own counter and trim limit
// (maxPerKey, nkms.RefusalsPerKey(maxPerKey)), so that refusals never push
// an ordinary entry out; LastActivity reads the ordinary log only; Activities
// walks both, merged by entry key. A refusal of a group (nkms.RefusalGroup)
// that already has an entry in that minute rewrites that entry with the new
// count: AppendActivities reads a minute's refusals once per batch.
//
// An entry key is its time (8 bytes, as in the due index) ‖ an entry number
// (8-byte BE, unique in the file, shared by both kinds), so that byte order is
// time order, then append order. A log is one nested bucket so that any tag
// works as a prefix and Delete drops the whole log at once; the counter lets
// AppendActivities enforce its limit and Activities answer an unfiltered total
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
	"time"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
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

// deleteHead deletes the (at most n) oldest entries of log that are below end
// (nil: no bound) and returns how many it deleted and a copy of the key that
// now comes first, nil when there is none. It walks forward to the last
// entry to delete, then deletes backwards through the same cursor: Prev
// after Delete is exact (the entries before a deleted one stay where they
// are), where Next after Delete may skip one and a Seek per entry would go
// down from the root again. Bucket.Delete would also cost a cursor and a
// copy of the key per entry.
func deleteHead(log *bbolt.Bucket, n int, end []byte) (deleted int, next []byte, err error) {
	c := log.Cursor()
	count := 0
	k, _ := c.First()
	for ; k != nil && count < n && (end == nil || bytes.Compare(k, end) < 0); k, _ = c.Next() {
		count++
	}
	next = bytes.Clone(k)
	if count == 0 {
		return 0, next, nil
	}
	if k == nil {
		c.Last()
	} else {
		c.Prev()
	}
	for ; deleted < count; c.Prev() {
		if err := c.Delete(); err != nil {
			return deleted, nil, err
		}
		deleted++
	}
	return deleted, next, nil
}

// refusedSuffix ends the name of a key's refusal log.
const refusedSuffix = "/refused"

// logName is the name of the log of the key with tag that holds refusals
// (refused) or ordinary entries.
func logName(tag string, refused bool) string {
	if refused {
		return tag + refusedSuffix
	}
	return tag
}

// touchedLog is a log that AppendActivities writes to.
type touchedLog struct {
	tag   []byte // the log's name (logName)
	log   *bbolt.Bucket
	limit int    // most entries it keeps; <= 0: no limit
	first []byte // the time of its oldest entry before the batch; nil for an empty log
	added int    // entries added by the batch
	// The refusals of a refusal log, by minute (Unix seconds of its start)
	// and group, as far as the batch has read or added them.
	minutes map[int64]map[nkms.RefusalGroup]*refusalSlot
}

// refusalSlot is a refusal entry of a log that the batch may add calls to.
type refusalSlot struct {
	key   []byte
	a     nkms.Activity
	dirty bool // to be written
}

// AppendActivities stores the entries of existing keys in one transaction,
// folds each refusal into its group's entry of the same minute if the log
// has one, and trims each touched key's logs to their newest maxPerKey
// ordinary entries and nkms.RefusalsPerKey(maxPerKey) refusals.
func (s *Store) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	// The records, one after the other in buf: Put keeps the value it is
	// given until the transaction ends, and buf outlives it.
	recs := make([][]byte, len(entries))
	buf := make([]byte, 0, 320*len(entries)) // a usual record is 250-300 bytes
	for i := range entries {
		if entries[i].Refused {
			continue // encoded when the batch is settled
		}
		start := len(buf)
		var err error
		if buf, err = codec.AppendActivity(buf, &entries[i]); err != nil {
			return err
		}
		recs[i] = buf[start:len(buf):len(buf)]
	}
	return s.update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		logs := map[string]*touchedLog{} // by name; nil for a key that does not exist
		var touched []*touchedLog        // in the order of first appearance
		seq := b.activities.Sequence()   // the last entry number given out
		var key [16]byte                 // Put copies the key
		for i := range entries {
			e := &entries[i]
			name := logName(e.Tag, e.Refused)
			l, seen := logs[name]
			if !seen {
				limit := maxPerKey
				if e.Refused {
					limit = nkms.RefusalsPerKey(maxPerKey)
				}
				if l, err = b.touchLog(e.Tag, name, limit); err != nil {
					return err
				}
				logs[name] = l
				if l != nil {
					touched = append(touched, l)
				}
			}
			if l == nil {
				continue // the key is gone; so are its logs
			}
			if e.Refused {
				added, err := l.addRefusal(e, seq+1)
				if err != nil {
					return fmt.Errorf("store activity of key %s: %w", e.Tag, err)
				}
				if added {
					seq++
				}
				continue
			}
			seq++
			if err := l.log.Put(appendEntryKey(key[:0], e.Time, seq), recs[i]); err != nil {
				return fmt.Errorf("store activity of key %s: %w", e.Tag, err)
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
			if err := l.putRefusals(); err != nil {
				return fmt.Errorf("activities of key %s: %w", l.tag, err)
			}
			if err := b.settleLog(l); err != nil {
				return fmt.Errorf("activities of key %s: %w", l.tag, err)
			}
		}
		return nil
	})
}

// touchLog returns the key's log called name (logName of tag), created if
// need be, for AppendActivities; nil when the key with tag does not exist.
func (b *buckets) touchLog(tag, name string, limit int) (*touchedLog, error) {
	if b.keys.Get([]byte(tag)) == nil {
		return nil, nil
	}
	t := []byte(name)
	log, err := b.activities.CreateBucketIfNotExists(t)
	if err != nil {
		return nil, fmt.Errorf("activities of key %s: %w", tag, err)
	}
	log.FillPercent = appendFill
	l := &touchedLog{tag: t, log: log, limit: limit}
	if first, _ := log.Cursor().First(); first != nil {
		l.first = bytes.Clone(first[:8])
	}
	return l, nil
}

// addRefusal adds e to its group's entry of its minute, or makes it that
// entry with number seq and reports so; putRefusals writes what changed.
func (l *touchedLog) addRefusal(e *nkms.Activity, seq uint64) (added bool, err error) {
	groups, err := l.refusalsOf(nkms.RefusalMinute(e.Time))
	if err != nil {
		return false, err
	}
	g := e.RefusalGroup()
	if slot := groups[g]; slot != nil {
		slot.a.AddRefusals(e)
		slot.dirty = true
		return false, nil
	}
	groups[g] = &refusalSlot{key: entryKey(e.Time, seq), a: *e, dirty: true}
	l.added++
	return true, nil
}

// refusalsOf returns the refusals of the log in the minute that starts at
// minute, by group, reading them the first time. Of two entries of one
// group (none that this store wrote), the older one takes the new calls.
func (l *touchedLog) refusalsOf(minute time.Time) (map[nkms.RefusalGroup]*refusalSlot, error) {
	if groups := l.minutes[minute.Unix()]; groups != nil {
		return groups, nil
	}
	groups := map[nkms.RefusalGroup]*refusalSlot{}
	end := entryKey(minute.Add(time.Minute), 0)
	c := l.log.Cursor()
	for k, v := c.Seek(entryKey(minute, 0)); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
		a, err := codec.UnmarshalActivity(v)
		if err != nil {
			return nil, err
		}
		if g := a.RefusalGroup(); a.Refused && groups[g] == nil {
			groups[g] = &refusalSlot{key: bytes.Clone(k), a: *a}
		}
	}
	if l.minutes == nil {
		l.minutes = map[int64]map[nkms.RefusalGroup]*refusalSlot{}
	}
	l.minutes[minute.Unix()] = groups
	return groups, nil
}

// putRefusals writes the refusal entries that the batch added or changed.
func (l *touchedLog) putRefusals() error {
	for _, groups := range l.minutes {
		for _, slot := range groups {
			if !slot.dirty {
				continue
			}
			rec, err := codec.MarshalActivity(&slot.a)
			if err != nil {
				return err
			}
			if err := l.log.Put(slot.key, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleLog finishes a log that AppendActivities added l.added entries to:
// it trims the log to its newest l.limit entries (l.limit > 0), records
// its count and moves its activityOldest row if the time of its oldest entry
// changed.
func (b *buckets) settleLog(l *touchedLog) error {
	n := entryCount(l.log) + l.added
	var first []byte
	if l.limit > 0 && n > l.limit {
		deleted, next, err := deleteHead(l.log, n-l.limit, nil)
		if err != nil {
			return fmt.Errorf("trim: %w", err)
		}
		n -= deleted
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
		deleted, next, err := deleteHead(log, limit-removed, end)
		if err != nil {
			return 0, fmt.Errorf("prune activities of key %s: %w", tag, err)
		}
		removed += deleted
		if next == nil {
			if err := b.activities.DeleteBucket(tag); err != nil {
				return 0, fmt.Errorf("prune activities of key %s: %w", tag, err)
			}
			continue
		}
		if err := setEntryCount(log, entryCount(log)-deleted); err != nil {
			return 0, err
		}
		if err := b.activityOldest.Put(oldestKey(next, tag), []byte{}); err != nil {
			return 0, fmt.Errorf("prune activity index: %w", err)
		}
	}
	return removed, nil
}

// dropActivities removes the logs of the key with tag, if it has any, and
// their activityOldest rows.
func (b *buckets) dropActivities(tag []byte) error {
	for _, name := range []string{logName(string(tag), false), logName(string(tag), true)} {
		name := []byte(name)
		log := b.activities.Bucket(name)
		if log == nil {
			continue
		}
		if first, _ := log.Cursor().First(); first != nil {
			if err := b.activityOldest.Delete(oldestKey(first, name)); err != nil {
				return fmt.Errorf("drop activities of key %s: %w", tag, err)
			}
		}
		if err := b.activities.DeleteBucket(name); err != nil {
			return fmt.Errorf("drop activities of key %s: %w", tag, err)
		}
	}
	return nil
}

// dropOrphanActivities removes the logs of keys that do not exist, which an
// nkms from before usage logs leaves when it deletes a key, and returns how
// many keys' logs it removed.
func (b *buckets) dropOrphanActivities() (int, error) {
	orphans := map[string]bool{}
	err := b.activities.ForEach(func(name, _ []byte) error {
		tag := bytes.TrimSuffix(name, []byte(refusedSuffix))
		if b.keys.Get(tag) == nil {
			orphans[string(tag)] = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for tag := range orphans {
		if err := b.dropActivities([]byte(tag)); err != nil {
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
