package bolt

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
	"github.com/nkms/nkms/store/internal/activityfilter"
)

// Reading usage logs (the layout is at the top of activity.go).

// logWalk walks one log newest first through its entries in [lo, hi] that
// match a keyword. Without a keyword it decodes nothing; with one, the
// entries whose records may match.
type logWalk struct {
	c       *bbolt.Cursor
	lo      []byte
	keyword activityfilter.Filter
	k, v    []byte         // the current entry; k is nil past the end
	a       *nkms.Activity // the current entry, if the keyword decoded it
	passed  int            // entries walked past
	count   int            // the log's counter
	whole   bool           // every entry of the log is in the range and none is filtered out
}

// walkLog starts a walk of log (nil: an empty log) at its newest entry
// in [lo, hi].
func walkLog(log *bbolt.Bucket, lo, hi []byte, keyword activityfilter.Filter) (*logWalk, error) {
	w := &logWalk{lo: lo, keyword: keyword}
	if log == nil {
		w.whole = true // and empty: its counter is 0
		return w, nil
	}
	w.c, w.count = log.Cursor(), entryCount(log)
	if keyword.Empty() {
		first, _ := w.c.First()
		last, _ := w.c.Last()
		w.whole = first != nil && bytes.Compare(first, lo) >= 0 && bytes.Compare(last, hi) <= 0
	}
	k, v := w.c.Seek(hi)
	if k == nil {
		k, v = w.c.Last()
	} else if bytes.Compare(k, hi) > 0 {
		k, v = w.c.Prev()
	}
	return w, w.settle(k, v)
}

// settle makes k the current entry if it matches, or else the next older
// one that does.
func (w *logWalk) settle(k, v []byte) error {
	for ; k != nil && bytes.Compare(k, w.lo) >= 0; k, v = w.c.Prev() {
		if w.keyword.Empty() {
			w.k, w.v, w.a = k, v, nil
			return nil
		}
		if !w.keyword.MayMatch(v) {
			continue // certainly no match: not worth decoding
		}
		a, err := codec.UnmarshalActivity(v)
		if err != nil {
			return err
		}
		if w.keyword.Match(a) {
			w.k, w.v, w.a = k, v, a
			return nil
		}
	}
	w.k, w.v, w.a = nil, nil, nil
	return nil
}

// next moves past the current entry.
func (w *logWalk) next() error {
	w.passed++
	k, v := w.c.Prev()
	return w.settle(k, v)
}

// entry returns the current entry.
func (w *logWalk) entry() (*nkms.Activity, error) {
	if w.a != nil {
		return w.a, nil
	}
	return codec.UnmarshalActivity(w.v)
}

// total returns the number of matching entries of the log, walking the
// rest of it unless the counter has the answer.
func (w *logWalk) total() (int, error) {
	if w.whole {
		return w.count, nil
	}
	for w.k != nil {
		if err := w.next(); err != nil {
			return 0, err
		}
	}
	return w.passed, nil
}

// Activities returns one page of a key's entries that match q, newest first,
// and the number of all matching entries. It walks the key's two logs
// backwards from q.To, merged by entry key; without a keyword only the
// page's entries are decoded, and the total of a log that lies wholly in
// [q.From, q.To] is its counter, so the walk stops after the page. With a
// keyword, the entries whose records may match are decoded and matched.
func (s *Store) Activities(ctx context.Context, q nkms.ActivityQuery) ([]nkms.Activity, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if q.PageNo < 1 || q.PageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	keyword := activityfilter.New(q)
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
		if bytes.Compare(lo, hi) > 0 {
			return nil
		}
		var walks [2]*logWalk
		for i, refused := range []bool{false, true} {
			log := b.activities.Bucket([]byte(logName(q.Tag, refused)))
			if walks[i], err = walkLog(log, lo, hi, keyword); err != nil {
				return fmt.Errorf("activities of key %s: %w", q.Tag, err)
			}
		}
		if walks[0].whole && walks[1].whole && skip >= walks[0].count+walks[1].count {
			total = walks[0].count + walks[1].count
			return nil // past the end
		}
		for n := 0; n < skip+q.PageSize; n++ {
			w := newer(walks[0], walks[1])
			if w == nil {
				break
			}
			if n >= skip {
				a, err := w.entry()
				if err != nil {
					return fmt.Errorf("activities of key %s: %w", q.Tag, err)
				}
				page = append(page, *a)
			}
			if err := w.next(); err != nil {
				return fmt.Errorf("activities of key %s: %w", q.Tag, err)
			}
		}
		for _, w := range walks {
			n, err := w.total()
			if err != nil {
				return fmt.Errorf("activities of key %s: %w", q.Tag, err)
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return page, total, nil
}

// newer returns the walk whose current entry is the newer, nil when both
// are past their ends.
func newer(a, b *logWalk) *logWalk {
	switch {
	case a.k == nil && b.k == nil:
		return nil
	case b.k == nil || a.k != nil && bytes.Compare(a.k, b.k) > 0:
		return a
	default:
		return b
	}
}

// LastActivity returns the key's newest entry that is not a refusal (the
// newest of its ordinary log); nkms.ErrNoActivity when it has none or does
// not exist.
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
		log := b.activities.Bucket([]byte(logName(tag, false)))
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
