package mem

import (
	"context"
	"slices"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/internal/activityfilter"
)

// activity is one stored usage-log entry. seq orders entries of the same
// time by when they were appended.
type activity struct {
	a   nkms.Activity
	seq uint64
}

// before reports whether x sorts before y: older first, then appended first.
func (x activity) before(y activity) bool {
	if c := x.a.Time.Compare(y.a.Time); c != 0 {
		return c < 0
	}
	return x.seq < y.seq
}

// AppendActivities stores the entries of existing keys and trims each
// touched key's log to its newest maxPerKey entries (maxPerKey <= 0: no limit).
func (s *Store) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	touched := map[string]bool{}
	for _, e := range entries {
		if _, ok := s.keys[e.Tag]; !ok {
			continue
		}
		s.activitySeq++
		n := activity{e, s.activitySeq}
		log := s.activities[e.Tag]
		// The first entry that sorts after n; n has the highest seq so far.
		i, _ := slices.BinarySearchFunc(log, n, func(x, n activity) int {
			if x.before(n) {
				return -1
			}
			return 1
		})
		s.activities[e.Tag] = slices.Insert(log, i, n)
		touched[e.Tag] = true
	}
	if maxPerKey > 0 {
		for tag := range touched {
			if log := s.activities[tag]; len(log) > maxPerKey {
				s.activities[tag] = slices.Delete(log, 0, len(log)-maxPerKey)
			}
		}
	}
	return nil
}

// Activities returns one page of a key's entries that match q, newest first,
// and the number of all matching entries.
func (s *Store) Activities(ctx context.Context, q nkms.ActivityQuery) ([]nkms.Activity, int, error) {
	if q.PageNo < 1 || q.PageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	if err := s.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	keyword := activityfilter.NewKeyword(q.Keyword)
	skip := (q.PageNo - 1) * q.PageSize
	page := []nkms.Activity{}
	total := 0
	log := s.activities[q.Tag]
	for i := len(log) - 1; i >= 0; i-- {
		a := log[i].a
		if a.Time.Before(q.From) || a.Time.After(q.To) || !keyword.Match(&a) {
			continue
		}
		if total >= skip && len(page) < q.PageSize {
			page = append(page, a)
		}
		total++
	}
	return page, total, nil
}

// LastActivity returns the key's newest entry; nkms.ErrNoActivity when it has
// none or does not exist.
func (s *Store) LastActivity(ctx context.Context, tag string) (*nkms.Activity, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	log := s.activities[tag]
	if len(log) == 0 {
		return nil, nkms.ErrNoActivity
	}
	a := log[len(log)-1].a
	return &a, nil
}

// PruneActivities removes every entry older than before and returns how many.
func (s *Store) PruneActivities(ctx context.Context, before time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for tag, log := range s.activities {
		i, _ := slices.BinarySearchFunc(log, before, func(x activity, t time.Time) int {
			if x.a.Time.Before(t) {
				return -1
			}
			return 1
		})
		n += i
		if i == len(log) {
			delete(s.activities, tag)
		} else {
			s.activities[tag] = slices.Delete(log, 0, i)
		}
	}
	return n, nil
}
