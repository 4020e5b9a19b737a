package bolt

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
)

// modelLog is what a key's log should hold: its entries in key order (time,
// then append order).
type modelLog struct {
	entries []modelEntry
}

type modelEntry struct {
	a   nkms.Activity
	seq int // append order across the test
}

func (m *modelLog) add(a nkms.Activity, seq int) {
	m.entries = append(m.entries, modelEntry{a, seq})
	slices.SortFunc(m.entries, func(x, y modelEntry) int {
		return cmp.Or(x.a.Time.Compare(y.a.Time), cmp.Compare(x.seq, y.seq))
	})
}

// trim keeps the newest limit entries (limit > 0).
func (m *modelLog) trim(limit int) {
	if limit > 0 && len(m.entries) > limit {
		m.entries = slices.Delete(m.entries, 0, len(m.entries)-limit)
	}
}

// prune removes the entries older than before and returns how many.
func (m *modelLog) prune(before time.Time) int {
	n := 0
	for n < len(m.entries) && m.entries[n].a.Time.Before(before) {
		n++
	}
	m.entries = slices.Delete(m.entries, 0, n)
	return n
}

// newestFirst returns the entries newest first.
func (m *modelLog) newestFirst() []nkms.Activity {
	var as []nkms.Activity
	for i := len(m.entries) - 1; i >= 0; i-- {
		as = append(as, m.entries[i].a)
	}
	return as
}

// checkLog compares a key's log with the model: every page of size 7 newest
// first, each with the right total, and LastActivity.
func checkLog(t *testing.T, s *Store, tag string, m *modelLog, when string) {
	t.Helper()
	want := m.newestFirst()
	var got []nkms.Activity
	for p := 1; ; p++ {
		page, total, err := s.Activities(t.Context(), nkms.ActivityQuery{
			Tag: tag, From: time.Unix(0, 0), To: time.Now().Add(24 * time.Hour), PageNo: p, PageSize: 7,
		})
		if err != nil {
			t.Fatalf("%s: Activities page %d: %v", when, p, err)
		}
		if total != len(want) {
			t.Fatalf("%s: Activities page %d: total %d, want %d", when, p, total, len(want))
		}
		got = append(got, page...)
		if len(page) < 7 {
			break
		}
	}
	if diff := gocmp.Diff(got, want); diff != "" {
		t.Fatalf("%s: every page of the log (-got +want):\n%s", when, diff)
	}
	last, err := s.LastActivity(t.Context(), tag)
	switch {
	case len(want) == 0:
		if !errors.Is(err, nkms.ErrNoActivity) {
			t.Fatalf("%s: LastActivity of an empty log: got error %v, want ErrNoActivity", when, err)
		}
	case err != nil:
		t.Fatalf("%s: LastActivity: %v", when, err)
	default:
		if diff := gocmp.Diff(*last, want[0]); diff != "" {
			t.Fatalf("%s: LastActivity (-got +want):\n%s", when, diff)
		}
	}
}

// TestActivityManyBatches appends many batches of entries of several keys,
// out of time order and with different caps, checks each log and the index
// after every batch, then prunes in steps, some through transactions that
// stop in the middle of a log.
func TestActivityManyBatches(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{hooks: &hooks{noBackground: true}})
	const nKeys = 3
	var keys []*nkms.Key
	models := map[string]*modelLog{}
	for i := range nKeys {
		k, err := s.Create(t.Context(), testKey(t, 1, fmt.Sprintf("key%d", i), nil))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		models[k.Tag] = &modelLog{}
	}
	ghost := testKey(t, 1, "ghost", nil) // never stored

	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	seq := 0
	for batch := range 80 {
		var entries []nkms.Activity
		touched := map[string]bool{}
		for range 1 + rng.IntN(20) {
			// Time goes on by 10ms a batch; an entry lies up to 40ms back,
			// often before entries of earlier batches, sometimes at the same
			// millisecond as another entry.
			at := start.Add(time.Duration(batch*10-rng.IntN(40)) * time.Millisecond)
			if rng.IntN(10) == 0 {
				entries = append(entries, testActivity(ghost, at, "ghost"))
				continue
			}
			k := keys[rng.IntN(nKeys)]
			entries = append(entries, testActivity(k, at, fmt.Sprint(seq)))
			models[k.Tag].add(entries[len(entries)-1], seq)
			touched[k.Tag] = true
			seq++
		}
		limit := []int{25, 25, 25, 10, 0, -1}[rng.IntN(6)]
		if err := s.AppendActivities(t.Context(), entries, limit); err != nil {
			t.Fatalf("batch %d: AppendActivities: %v", batch, err)
		}
		for tag := range touched {
			models[tag].trim(limit)
		}
		for i, k := range keys {
			checkLog(t, s, k.Tag, models[k.Tag], fmt.Sprintf("batch %d (max %d), key %d", batch, limit, i))
		}
		checkActivityIndex(t, s)
		if t.Failed() {
			t.FailNow()
		}
	}

	// Prune in steps, at times of the entries left; the first through
	// transactions of at most 5 entries each, which leave logs partly pruned.
	var times []time.Time
	for _, m := range models {
		for _, e := range m.entries {
			times = append(times, e.a.Time)
		}
	}
	slices.SortFunc(times, time.Time.Compare)
	if len(times) < 30 {
		t.Fatalf("only %d entries left to prune", len(times))
	}
	at := func(q float64) time.Time { return times[int(q*float64(len(times)-1))] }
	for step, before := range []time.Time{
		at(0.5), at(0.5), at(0.6), at(0.6).Add(1), at(0.8), times[len(times)-1], times[len(times)-1].Add(1),
	} {
		want := 0
		for _, m := range models {
			want += m.prune(before)
		}
		var got int
		if step == 0 {
			const limit = 5 // not a divisor of the 12 entries of each log to remove (with this seed)
			end := entryKey(before, 0)
			for {
				var n int
				err := s.update(func(tx *bbolt.Tx) error {
					b, err := bucketsOf(tx)
					if err != nil {
						return err
					}
					n, err = b.pruneActivities(end, limit)
					return err
				})
				if err != nil {
					t.Fatalf("pruneActivities: %v", err)
				}
				if n > limit {
					t.Fatalf("pruneActivities with limit %d removed %d", limit, n)
				}
				got += n
				checkActivityIndex(t, s)
				if n < limit {
					break
				}
			}
		} else {
			var err error
			if got, err = s.PruneActivities(t.Context(), before); err != nil {
				t.Fatalf("PruneActivities: %v", err)
			}
		}
		if got != want {
			t.Errorf("prune step %d, before start%+v: removed %d, want %d", step, before.Sub(start), got, want)
		}
		for i, k := range keys {
			checkLog(t, s, k.Tag, models[k.Tag], fmt.Sprintf("prune step %d, key %d", step, i))
		}
		checkActivityIndex(t, s)
	}
	if n := oldestIndexLen(t, s); n != 0 {
		t.Errorf("activityOldest holds %d rows after pruning everything, want 0", n)
	}
}

// TestOpenMigratesLayout1 builds a file of layout 1 (a time index row per
// entry, no activityOldest) and opens it: Open moves it to layout 2, keeps
// the logs, drops the log of a deleted key, and pruning and appending work.
func TestOpenMigratesLayout1(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := createMarked(t, s, "a")
	b, _ := createMarked(t, s, "b")
	idle, _ := createMarked(t, s, "idle")
	gone, _ := createMarked(t, s, "gone")
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	ma, mb := &modelLog{}, &modelLog{}
	var entries []nkms.Activity
	for i := range 30 {
		k, m := a, ma
		if i%3 == 0 {
			k, m = b, mb
		}
		e := testActivity(k, start.Add(time.Duration(i%10)*time.Minute+time.Duration(i)*time.Second), fmt.Sprint(i))
		entries = append(entries, e)
		m.add(e, i)
	}
	goneEntry, goneMarker := markedActivity(t, gone, start)
	entries = append(entries, goneEntry)
	if err := s.AppendActivities(t.Context(), entries, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Rewrite the file as layout 1 would have it, with the key "gone"
	// deleted by an nkms that knew nothing of usage logs.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	indexed := 0
	err = db.Update(func(tx *bbolt.Tx) error {
		bk, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		timeIndex, err := tx.CreateBucket(bucketActTime)
		if err != nil {
			return err
		}
		err = bk.activities.ForEach(func(tag, _ []byte) error {
			return bk.activities.Bucket(tag).ForEach(func(k, _ []byte) error {
				indexed++
				return timeIndex.Put(k, tag)
			})
		})
		if err != nil {
			return err
		}
		if err := bk.reindex(gone.Tag, gone, nil); err != nil {
			return err
		}
		return errors.Join(bk.keys.Delete([]byte(gone.Tag)), tx.DeleteBucket(bucketActOldest),
			bk.meta.Put(metaSchema, be64(schemaTimeIndex)))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	if indexed != len(entries) {
		t.Fatalf("layout 1 time index: %d rows, want %d", indexed, len(entries))
	}

	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	checkActivityIndex(t, s) // layout 2, no activityTime, one row per log
	if n := oldestIndexLen(t, s); n != 2 {
		t.Errorf("activityOldest holds %d rows after the migration, want 2", n)
	}
	checkInFile(t, path, goneMarker, false, "after Open (the deleted key's log is scrubbed)")
	checkLog(t, s, a.Tag, ma, "key a after the migration")
	checkLog(t, s, b.Tag, mb, "key b after the migration")
	checkLog(t, s, idle.Tag, &modelLog{}, "a key without entries after the migration")
	checkLog(t, s, gone.Tag, &modelLog{}, "the deleted key after the migration")

	// Entry numbers go on, an older entry moves a log's row, and the cap
	// trims.
	more := []nkms.Activity{
		testActivity(b, start.Add(-time.Minute), "older than all"),
		testActivity(b, start.Add(time.Hour), "newest"),
		testActivity(a, start.Add(5*time.Minute), "between"),
	}
	if err := s.AppendActivities(t.Context(), more, 0); err != nil {
		t.Fatal(err)
	}
	mb.add(more[0], 100)
	mb.add(more[1], 101)
	ma.add(more[2], 102)
	checkActivityIndex(t, s)
	checkLog(t, s, a.Tag, ma, "key a after appending")
	checkLog(t, s, b.Tag, mb, "key b after appending")

	before := start.Add(5*time.Minute + 10*time.Second)
	want := ma.prune(before) + mb.prune(before)
	if n, err := s.PruneActivities(t.Context(), before); err != nil || n != want {
		t.Errorf("PruneActivities after the migration = %d, %v; want %d, nil", n, err, want)
	}
	checkActivityIndex(t, s)
	checkLog(t, s, a.Tag, ma, "key a after pruning")
	checkLog(t, s, b.Tag, mb, "key b after pruning")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A file of layout 2 opens as it is.
	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	checkActivityIndex(t, s)
	checkLog(t, s, a.Tag, ma, "key a after reopening")
	checkLog(t, s, b.Tag, mb, "key b after reopening")
}

// TestTrimWithCounterTooHigh: a log whose counter says more entries than it
// holds may be trimmed empty; it is then dropped with its row, and the key's
// later entries go to a fresh log.
func TestTrimWithCounterTooHigh(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{hooks: &hooks{noBackground: true}})
	k, err := s.Create(t.Context(), testKey(t, 1, "miscounted", nil))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	if err := s.AppendActivities(t.Context(), []nkms.Activity{testActivity(k, start, "1"), testActivity(k, start.Add(time.Second), "2")}, 0); err != nil {
		t.Fatal(err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketActivities).Bucket([]byte(k.Tag)).SetSequence(10)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendActivities(t.Context(), []nkms.Activity{testActivity(k, start.Add(2*time.Second), "3")}, 5); err != nil {
		t.Fatalf("AppendActivities trimming a miscounted log: %v", err)
	}
	checkActivityIndex(t, s)
	checkLog(t, s, k.Tag, &modelLog{}, "the log trimmed empty")
	a := testActivity(k, start.Add(3*time.Second), "4")
	if err := s.AppendActivities(t.Context(), []nkms.Activity{a}, 5); err != nil {
		t.Fatal(err)
	}
	checkActivityIndex(t, s)
	checkLog(t, s, k.Tag, &modelLog{entries: []modelEntry{{a, 0}}}, "a fresh log")
}
