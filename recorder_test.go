package nkms_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nkms/nkms"
)

func activityCount(t *testing.T, s *nkms.Service, tag string) int {
	t.Helper()
	_, _, total, err := s.Activities(context.Background(), alice, parseTag(t, tag), nkms.ActivityQuery{From: t0.Add(-time.Hour), To: t0.Add(1000 * time.Hour), PageNo: 1, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestRecorder runs the background recorder in a synctest bubble: entries
// land within a flush interval, the per-key cap holds, and entries queued at
// shutdown are written before Run returns.
func TestRecorder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newService(t)
		k := create(t, s, alice, "recorded", nkms.AES256, false)
		rec := nkms.NewRecorder(s.Store, 3, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { rec.Run(ctx) })
		for i := range 5 {
			rec.Record(nkms.Activity{Tag: k.Tag, Time: t0.Add(time.Duration(i) * time.Second), RequestType: nkms.RequestAPI, Action: "Encrypt", Result: nkms.ResultSuccess})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := activityCount(t, s, k.Tag); n != 3 {
			t.Fatalf("after a flush: %d entries, want the per-key cap 3", n)
		}
		rec.Record(nkms.Activity{Tag: k.Tag, Time: t0.Add(time.Minute), Action: "Decrypt", Result: nkms.ResultSuccess})
		cancel()
		wg.Wait()
		last, err := s.Store.LastActivity(context.Background(), k.Tag)
		if err != nil || last.Action != "Decrypt" {
			t.Fatalf("entry queued at shutdown: %+v %v", last, err)
		}
		if rec.Dropped() != 0 {
			t.Fatalf("dropped %d", rec.Dropped())
		}
	})
}

func TestRecorderDropsWhenFull(t *testing.T) {
	t.Parallel()
	s, _ := newService(t)
	rec := nkms.NewRecorder(s.Store, 0, nil) // not running: nothing drains the buffer
	// More entries than any buffer holds.
	for range 100_000 {
		rec.Record(nkms.Activity{Tag: "t"})
	}
	if rec.Dropped() == 0 {
		t.Fatal("a full buffer dropped nothing")
	}
}

func TestSchedulerLogsAndPrunes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clk := newService(t)
	s.ActivityRetention = 48 * time.Hour
	k, err := s.CreateKey(ctx, alice, nkms.CreateKeyInput{Name: "auto", Type: nkms.AES256, AutoRotation: true, RotationPeriod: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Encrypt(ctx, alice, k.KeyTag(), [][]byte{[]byte("x")}, ""); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	if res, err := s.RunDue(ctx); err != nil || res.Rotated != 1 || res.Pruned != 0 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	_, last, err := s.LastUse(ctx, alice, k.KeyTag())
	if err != nil || last == nil || last.RequestType != nkms.RequestSystem || last.Action != "AutoRotateKey" || last.AuthType != nkms.AuthSystem {
		t.Fatalf("last use after auto rotation: %+v %v", last, err)
	}
	clk.Add(25 * time.Hour) // the CreateKey and Encrypt entries are now 49 h old, the rotation 25 h
	res, err := s.RunDue(ctx)
	if err != nil || res.Pruned != 2 { // CreateKey and Encrypt
		t.Fatalf("prune pass: %+v %v", res, err)
	}
	if n := activityCount(t, s, k.Tag); n < 1 {
		t.Fatalf("%d entries left, want the recent ones", n)
	}
}

// flakyStore fails its first failures usage-log writes.
type flakyStore struct {
	nkms.Store
	mu       sync.Mutex
	failures int
}

func (f *flakyStore) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	f.mu.Lock()
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("etcdserver: request timed out")
	}
	return f.Store.AppendActivities(ctx, entries, maxPerKey)
}

// TestRecorderRetriesFailedWrites: a batch the store refuses for a while
// (an etcd leader change) is written later, not dropped (found by the
// cluster test); a store that keeps refusing loses the batch, counted.
func TestRecorderRetriesFailedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newService(t)
		k := create(t, s, alice, "retried", nkms.AES256, false)
		created := activityCount(t, s, k.Tag) // the CreateKey entry
		flaky := &flakyStore{Store: s.Store, failures: 5}
		rec := nkms.NewRecorder(flaky, 0, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { rec.Run(ctx) })
		for i := range 3 {
			rec.Record(nkms.Activity{Tag: k.Tag, Time: t0.Add(time.Duration(i) * time.Second), Action: "Encrypt", Result: nkms.ResultSuccess})
		}
		time.Sleep(2 * time.Second) // 20 flushes: 5 fail, then one lands
		synctest.Wait()
		if n := activityCount(t, s, k.Tag) - created; n != 3 || rec.Dropped() != 0 {
			t.Fatalf("after the store recovered: %d entries, %d dropped; want 3 and 0", n, rec.Dropped())
		}
		flaky.mu.Lock()
		flaky.failures = 1 << 30 // from now on it always fails
		flaky.mu.Unlock()
		rec.Record(nkms.Activity{Tag: k.Tag, Time: t0.Add(time.Minute), Action: "Decrypt", Result: nkms.ResultSuccess})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if rec.Dropped() != 1 {
			t.Fatalf("a store that keeps failing: %d dropped, want the 1 entry", rec.Dropped())
		}
		cancel()
		wg.Wait()
	})
}

// countingStore counts the usage-log writes that reach the store.
type countingStore struct {
	nkms.Store
	mu              sync.Mutex
	writes, entries int
}

func (c *countingStore) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	c.mu.Lock()
	c.writes++
	c.entries += len(entries)
	c.mu.Unlock()
	return c.Store.AppendActivities(ctx, entries, maxPerKey)
}

// TestRecorderAggregatesRefusals: a viewer's flood of 10,400 refused
// encrypts (issue 13) reaches the store as one entry per flush, and leaves
// the admin's successful Encrypt in the log and as the last use, even with
// a per-key cap of 50; ordinary entries are never folded.
func TestRecorderAggregatesRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newService(t)
		k := create(t, s, alice, "flooded", nkms.AES256, false)
		store := &countingStore{Store: s.Store}
		rec := nkms.NewRecorder(store, 50, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { rec.Run(ctx) })
		used := nkms.Activity{Tag: k.Tag, Time: t0, RequestType: nkms.RequestAPI, Requestor: alice.AccessKey,
			Action: "Encrypt", Result: nkms.ResultSuccess, AuthType: nkms.AuthAccount}
		rec.Record(used)
		viewer := nkms.Caller{AccessKey: "NKviewer", Keystore: 1, Role: nkms.RoleViewer, IP: "192.0.2.7"}
		const flood = 10_400
		for i := range flood {
			rec.Record(nkms.RefusalActivity(k.Tag, t0.Add(time.Second+time.Duration(i)*time.Millisecond), viewer, "Encrypt", "210"))
			if i%1000 == 999 {
				synctest.Wait() // the recorder drains its buffer
			}
		}
		failed := used
		failed.Result, failed.Message = nkms.ResultFail, "422"
		rec.Record(failed)
		rec.Record(failed)
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		wg.Wait()
		_, list, total, err := s.Activities(context.Background(), alice, k.KeyTag(), nkms.ActivityQuery{From: t0.Add(-time.Hour), To: t0.Add(time.Hour), PageNo: 1, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		if total != 5 || !list[0].Refused || list[0].Count != flood || list[0].Message != "210 (x10400)" {
			t.Fatalf("after the flood: %d entries, newest %+v; want 5 (CreateKey, the use, two failures, one refusal of %d calls)", total, list[0], flood)
		}
		_, last, err := s.LastUse(context.Background(), alice, k.KeyTag())
		if err != nil || last == nil || *last != failed {
			t.Fatalf("last use after the flood: %+v, %v; want the last failed Encrypt", last, err)
		}
		if store.writes > 2 || store.entries > 4 || rec.Dropped() != 0 {
			t.Errorf("the flood cost %d writes of %d entries, %d dropped; want at most 2 writes of 4 entries, none dropped", store.writes, store.entries, rec.Dropped())
		}
		t.Logf("%d refusals: %d store writes, %d entries", flood, store.writes, store.entries)
	})
}
