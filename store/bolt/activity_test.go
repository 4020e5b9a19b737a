package bolt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// testActivity returns an entry of k at t.
func testActivity(k *nkms.Key, at time.Time, message string) nkms.Activity {
	return nkms.Activity{
		Tag: k.Tag, Keystore: k.Keystore, KeyName: k.Name, Time: at, RequestType: "API",
		Requestor: "NKtest", IP: "192.0.2.9", Result: "FAIL", Action: "Decrypt", AuthType: "TOKEN", Message: message,
	}
}

// allActivities returns every entry of the key with tag, newest first.
func allActivities(t *testing.T, s *Store, tag string) []nkms.Activity {
	t.Helper()
	page, total, err := s.Activities(t.Context(), nkms.ActivityQuery{
		Tag: tag, From: time.Unix(0, 0), To: time.Now().Add(24 * time.Hour), PageNo: 1, PageSize: 200,
	})
	if err != nil {
		t.Fatalf("Activities: %v", err)
	}
	if total != len(page) {
		t.Fatalf("Activities: total %d for a page of %d (of all entries)", total, len(page))
	}
	return page
}

// markedActivity returns an entry of k whose message is a fresh random marker.
func markedActivity(t *testing.T, k *nkms.Key, at time.Time) (nkms.Activity, []byte) {
	t.Helper()
	marker := []byte(hex.EncodeToString(randomBytes(t, 32)))
	return testActivity(k, at, string(marker)), marker
}

// oldestIndexLen returns the number of rows in the activityOldest bucket.
func oldestIndexLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketActOldest).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkActivityIndex checks the invariants of the activity buckets: the file
// has layout 2; every log is non-empty and its counter is its number of
// entries; a refusal log holds refusals only, another log none;
// activityOldest holds exactly one row per log, of the time of its oldest
// entry; entry numbers are unique and not above the last one given out. A
// closed store is not checked.
func checkActivityIndex(t testing.TB, s *Store) {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if tx.Bucket(bucketActTime) != nil {
			report("the bucket %s of layout 1 is still there", bucketActTime)
		}
		if v := b.meta.Get(metaSchema); len(v) != 8 || beUint64(v) != schema {
			report("layout version %x, want %d", v, schema)
		}
		rows := map[string]bool{} // the rows that should be there
		seqs := map[uint64]bool{}
		last := b.activities.Sequence()
		err = b.activities.ForEach(func(tag, v []byte) error {
			log := b.activities.Bucket(tag)
			if log == nil {
				report("activities holds %q, not a log", tag)
				return nil
			}
			n := 0
			var first []byte
			refusals := bytes.HasSuffix(tag, []byte(refusedSuffix))
			err := log.ForEach(func(k, v []byte) error {
				if first == nil {
					first = bytes.Clone(k)
				}
				n++
				if a, err := codec.UnmarshalActivity(v); err != nil {
					report("log of %s: entry %x: %v", tag, k, err)
				} else if a.Refused != refusals {
					report("log of %s: entry %x is a refusal: %v", tag, k, a.Refused)
				}
				if len(k) != 16 {
					report("log of %s: entry key %x is not 16 bytes", tag, k)
					return nil
				}
				seq := beUint64(k[8:])
				if seq == 0 || seq > last {
					report("log of %s: entry number %d, last given out %d", tag, seq, last)
				}
				if seqs[seq] {
					report("log of %s: entry number %d given twice", tag, seq)
				}
				seqs[seq] = true
				return nil
			})
			if err != nil {
				return err
			}
			if n == 0 {
				report("log of %s is empty", tag)
			} else {
				rows[string(oldestKey(first, tag))] = true
			}
			if c := entryCount(log); c != n {
				report("log of %s: counter %d, %d entries", tag, c, n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = b.activityOldest.ForEach(func(k, v []byte) error {
			if !rows[string(k)] {
				report("stray activityOldest row %x", k)
			}
			delete(rows, string(k))
			return nil
		})
		for k := range rows {
			report("missing activityOldest row %x", k)
		}
		return err
	})
	if errors.Is(err, ErrClosed) {
		return
	}
	if err != nil {
		t.Fatalf("check activity index: %v", err)
	}
	for _, p := range problems {
		t.Errorf("activity index: %s", p)
	}
}

func TestActivitiesSurviveReopenAndCompact(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Create(t.Context(), testKey(t, 1, "logged", randomBytes(t, 32)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Second)
	want := []nkms.Activity{testActivity(k, at, "first"), testActivity(k, at.Add(-time.Second), "older")}
	if err := s.AppendActivities(t.Context(), want, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	if diff := cmp.Diff(allActivities(t, s, k.Tag), want); diff != "" {
		t.Errorf("entries after reopen (-got +want):\n%s", diff)
	}
	// Entry numbers go on after a reopen and a compaction: of two entries of
	// the same time, the one appended later still comes first.
	for _, step := range []string{"reopen", "compact"} {
		if step == "compact" {
			if err := s.Compact(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		a := testActivity(k, at, "after "+step)
		if err := s.AppendActivities(t.Context(), []nkms.Activity{a}, 0); err != nil {
			t.Fatal(err)
		}
		want = append([]nkms.Activity{a}, want...)
		if diff := cmp.Diff(allActivities(t, s, k.Tag), want); diff != "" {
			t.Errorf("entries after %s and one more (-got +want):\n%s", step, diff)
		}
	}
	if n, err := s.PruneActivities(t.Context(), at.Add(time.Hour)); err != nil || n != len(want) {
		t.Errorf("PruneActivities of all = %d, %v; want %d, nil (the counters and the index survived)", n, err, len(want))
	}
}

func TestActivityScrubAfterDelete(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s := openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	gone, _ := createMarked(t, s, "gone")
	kept, _ := createMarked(t, s, "kept")
	goneEntry, goneMarker := markedActivity(t, gone, time.Now())
	keptEntry, keptMarker := markedActivity(t, kept, time.Now())
	if err := s.AppendActivities(t.Context(), []nkms.Activity{goneEntry, keptEntry}, 0); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, goneMarker, true, "after AppendActivities")

	if err := s.Delete(t.Context(), gone.Tag, nil); err != nil {
		t.Fatal(err)
	}
	if pending, err := s.scrubPending(); err != nil || !pending {
		t.Errorf("scrub pending after Delete = %v, %v; want true", pending, err)
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, goneMarker, false, "after Delete and Compact")
	checkInFile(t, path, keptMarker, true, "after Delete and Compact (the other key's entry)")
	if n := oldestIndexLen(t, s); n != 1 {
		t.Errorf("activityOldest holds %d rows after Delete, want 1", n)
	}
	checkActivityIndex(t, s)
}

// TestOrphanActivitiesDroppedOnOpen simulates an nkms from before usage logs
// that deleted a key of a file with a log: the next Open drops the log and
// scrubs it from the file.
func TestOrphanActivitiesDroppedOnOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := createMarked(t, s, "gone")
	kept, _ := createMarked(t, s, "kept")
	goneEntry, goneMarker := markedActivity(t, gone, time.Now())
	keptEntry, keptMarker := markedActivity(t, kept, time.Now())
	if err := s.AppendActivities(t.Context(), []nkms.Activity{goneEntry, keptEntry}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The old nkms deletes the key and compacts, knowing nothing of logs.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		if err := b.reindex(gone.Tag, gone, nil); err != nil {
			return err
		}
		return b.keys.Delete([]byte(gone.Tag))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	checkInFile(t, path, goneMarker, true, "after the old nkms deleted the key")

	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	checkInFile(t, path, goneMarker, false, "after Open")
	checkInFile(t, path, keptMarker, true, "after Open (the other key's entry)")
	if _, err := s.LastActivity(t.Context(), gone.Tag); !errors.Is(err, nkms.ErrNoActivity) {
		t.Errorf("LastActivity of the deleted key: got error %v, want ErrNoActivity", err)
	}
	if diff := cmp.Diff(allActivities(t, s, kept.Tag), []nkms.Activity{keptEntry}); diff != "" {
		t.Errorf("entries of the other key (-got +want):\n%s", diff)
	}
	if n := oldestIndexLen(t, s); n != 1 {
		t.Errorf("activityOldest holds %d rows after Open, want 1", n)
	}
	checkActivityIndex(t, s)
}

// TestOpenAddsActivityBuckets opens a file of layout 1 written before usage
// logs existed: Open adds their buckets and moves it to layout 2.
func TestOpenAddsActivityBuckets(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Create(t.Context(), testKey(t, 1, "old", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return errors.Join(tx.DeleteBucket(bucketActivities), tx.DeleteBucket(bucketActOldest),
			tx.Bucket(bucketMeta).Put(metaSchema, be64(schemaTimeIndex)))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	if _, err := s.LastActivity(t.Context(), k.Tag); !errors.Is(err, nkms.ErrNoActivity) {
		t.Errorf("LastActivity in an old file: got error %v, want ErrNoActivity", err)
	}
	a := testActivity(k, time.Now(), "")
	if err := s.AppendActivities(t.Context(), []nkms.Activity{a}, 0); err != nil {
		t.Fatalf("AppendActivities in an old file: %v", err)
	}
	if diff := cmp.Diff(allActivities(t, s, k.Tag), []nkms.Activity{a}); diff != "" {
		t.Errorf("entries in an old file (-got +want):\n%s", diff)
	}
	checkActivityIndex(t, s)
}

// TestPruneManyBatches prunes more entries than one transaction removes.
func TestPruneManyBatches(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{})
	k, err := s.Create(t.Context(), testKey(t, 1, "busy", nil))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	const old, young = 2*pruneBatch + 7, 3
	entries := make([]nkms.Activity, 0, old+young)
	for i := range old + young {
		entries = append(entries, testActivity(k, start.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(i)))
	}
	if err := s.AppendActivities(t.Context(), entries, 0); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneActivities(t.Context(), entries[old].Time)
	if err != nil || n != old {
		t.Fatalf("PruneActivities = %d, %v; want %d, nil", n, err, old)
	}
	if got := allActivities(t, s, k.Tag); len(got) != young || got[young-1].Message != fmt.Sprint(old) {
		t.Errorf("after pruning: %d entries, want the %d youngest", len(got), young)
	}
	checkActivityIndex(t, s)
}

// TestRefusalsInAFileOfBefore: a data file written before refusals were
// marked keeps working: its entries, refused calls among them, are ordinary
// entries, and refusals appended after a reopen push none of them out.
func TestRefusalsInAFileOfBefore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nkms.db")
	s, err := Open(path, Options{hooks: &hooks{noBackground: true}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.Create(t.Context(), testKey(t, 1, "older", randomBytes(t, 32)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Minute)
	// What an older nkms wrote: a success, and a refused call as a failure.
	used := testActivity(k, at, "")
	used.Result = "SUCCESS"
	oldRefusal := testActivity(k, at.Add(time.Second), "210")
	if err := s.AppendActivities(t.Context(), []nkms.Activity{used, oldRefusal}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Options{hooks: &hooks{noBackground: true}})
	var flood []nkms.Activity
	for i := range 10 {
		r := oldRefusal
		r.Time, r.Refused = at.Add(time.Duration(i)*time.Minute+2*time.Second), true
		flood = append(flood, r)
	}
	if err := s.AppendActivities(t.Context(), flood, 3); err != nil {
		t.Fatal(err)
	}
	want := append([]nkms.Activity{flood[9], flood[8], flood[7]}, oldRefusal, used)
	if diff := cmp.Diff(allActivities(t, s, k.Tag), want); diff != "" {
		t.Errorf("entries after a reopen and 10 refusals (-got +want):\n%s", diff)
	}
	if last, err := s.LastActivity(t.Context(), k.Tag); err != nil || !cmp.Equal(*last, oldRefusal) {
		t.Errorf("LastActivity = %+v, %v; want the old entry of a refused call, an ordinary one", last, err)
	}
	checkActivityIndex(t, s)
}

// TestTrimAcrossLeaves: batches of 1000 entries into a log capped at 2500,
// so that every trim deletes entries of many leaves in the transaction that
// adds entries at the log's end: the log keeps exactly the newest 2500, in
// order, and its count and index agree.
func TestTrimAcrossLeaves(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "nkms.db"), Options{})
	k, err := s.Create(t.Context(), testKey(t, 1, "busy", nil))
	if err != nil {
		t.Fatal(err)
	}
	const batch, limit = 1000, 2500
	start := time.Now().Add(-time.Hour)
	for b := range 6 {
		entries := make([]nkms.Activity, batch)
		for i := range entries {
			n := b*batch + i
			entries[i] = testActivity(k, start.Add(time.Duration(n)*time.Millisecond), fmt.Sprint(n))
		}
		if err := s.AppendActivities(t.Context(), entries, limit); err != nil {
			t.Fatal(err)
		}
		total := (b + 1) * batch
		want := min(total, limit)
		var got []string
		err := s.db.View(func(tx *bbolt.Tx) error {
			log := tx.Bucket(bucketActivities).Bucket([]byte(k.Tag))
			if n := entryCount(log); n != want {
				t.Errorf("batch %d: count %d, want %d", b, n, want)
			}
			return log.ForEach(func(_, v []byte) error {
				a, err := codec.UnmarshalActivity(v)
				if err != nil {
					return err
				}
				got = append(got, a.Message)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Fatalf("batch %d: %d entries, want %d", b, len(got), want)
		}
		for i, m := range got {
			if w := fmt.Sprint(total - want + i); m != w {
				t.Fatalf("batch %d: entry %d is %s, want %s", b, i, m, w)
			}
		}
		checkActivityIndex(t, s)
	}
}
