package bolt

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.etcd.io/bbolt"

	"github.com/nkms/nkms"
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

// timeIndexLen returns the number of entries in the activityTime bucket.
func timeIndexLen(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketActTime).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
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
	if n := timeIndexLen(t, s); n != 1 {
		t.Errorf("time index holds %d entries after Delete, want 1", n)
	}
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
	if n := timeIndexLen(t, s); n != 1 {
		t.Errorf("time index holds %d entries after Open, want 1", n)
	}
}

// TestOpenAddsActivityBuckets opens a file of layout 1 written before usage
// logs existed: Open adds their buckets.
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
		return errors.Join(tx.DeleteBucket(bucketActivities), tx.DeleteBucket(bucketActTime))
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
}
