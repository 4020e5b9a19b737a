package mem

import (
	"context"
	"slices"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/internal/activityfilter"
)

// A key's log is one slice of both kinds of entries, ordinary and refusals
// (nkms.Activity.Refused), oldest first; each kind has its own quota when
// the log is trimmed.

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

// firstAt returns the index of the first entry of log at or after t.
func firstAt(log []activity, t time.Time) int {
	i, _ := slices.BinarySearchFunc(log, t, func(x activity, t time.Time) int {
		if x.a.Time.Before(t) {
			return -1
		}
		return 1
	})
	return i
}

// AppendActivities stores the entries of existing keys, folds each refusal
// into its group's entry of the same minute if the log has one, and trims
// each touched key's log to its newest maxPerKey ordinary entries and
// nkms.RefusalsPerKey(maxPerKey) refusals (maxPerKey <= 0: no limit).
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
		log := s.activities[e.Tag]
		if e.Refused {
			if i := findRefusal(log, &e); i >= 0 {
				log[i].a.AddRefusals(&e)
				continue
			}
		}
		s.activitySeq++
		n := activity{e, s.activitySeq}
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
			s.activities[tag] = trim(s.activities[tag], maxPerKey, nkms.RefusalsPerKey(maxPerKey))
		}
	}
	return nil
}

// findRefusal returns the index of the refusal of e's group in the minute
// of e, -1 when log has none.
func findRefusal(log []activity, e *nkms.Activity) int {
	g := e.RefusalGroup()
	start := nkms.RefusalMinute(e.Time)
	end := start.Add(time.Minute)
	for i := firstAt(log, start); i < len(log) && log[i].a.Time.Before(end); i++ {
		if a := &log[i].a; a.Refused && a.RefusalGroup() == g {
			return i
		}
	}
	return -1
}

// trim removes the oldest ordinary entries of log beyond maxOrdinary and
// the oldest refusals beyond maxRefused.
func trim(log []activity, maxOrdinary, maxRefused int) []activity {
	refused := 0
	for _, x := range log {
		if x.a.Refused {
			refused++
		}
	}
	dropOrdinary, dropRefused := len(log)-refused-maxOrdinary, refused-maxRefused
	if dropOrdinary <= 0 && dropRefused <= 0 {
		return log
	}
	return slices.DeleteFunc(log, func(x activity) bool { // oldest first
		n := &dropOrdinary
		if x.a.Refused {
			n = &dropRefused
		}
		if *n > 0 {
			*n--
			return true
		}
		return false
	})
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
	keyword := activityfilter.New(q)
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

// LastActivity returns the key's newest entry that is not a refusal;
// nkms.ErrNoActivity when it has none or does not exist.
func (s *Store) LastActivity(ctx context.Context, tag string) (*nkms.Activity, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	log := s.activities[tag]
	for i := len(log) - 1; i >= 0; i-- {
		if a := log[i].a; !a.Refused {
			return &a, nil
		}
	}
	return nil, nkms.ErrNoActivity
}

// PruneActivities removes every entry older than before and returns how many.
func (s *Store) PruneActivities(ctx context.Context, before time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	n := 0
	for tag, log := range s.activities {
		i := firstAt(log, before)
		n += i
		if i == len(log) {
			delete(s.activities, tag)
		} else {
			s.activities[tag] = slices.Delete(log, 0, i)
		}
	}
	return n, nil
}
