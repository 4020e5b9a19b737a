package etcd

import (
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// rowsOf is the number of rows of the ordinary log of tag.
func rowsOf(t *testing.T, s *Store, tag string) int64 {
	t.Helper()
	p := s.logPrefix(tag, false)
	resp, err := s.kv.Get(t.Context(), p, clientv3.WithRange(logEnd(p)), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// TestChunksMixedWithEntryRows: a batch becomes one row; a log holding rows
// of one entry (as earlier versions wrote them) and chunks that straddle a
// trim's cut and a prune's cut-off keeps the exact newest entries, and
// LastActivity, paging and totals see every entry.
func TestChunksMixedWithEntryRows(t *testing.T) {
	t.Parallel()
	_, cli := sharedEtcd(t)
	s := open(t, cli, newPrefix(t, cli))
	s.minChunk = 2
	k, err := s.Create(t.Context(), testKey(1, "chunked"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) nkms.Activity {
		return nkms.Activity{Tag: k.Tag, Keystore: 1, Time: t0.Add(time.Duration(i) * time.Second), RequestType: "API",
			Result: "SUCCESS", Action: "A" + time.Duration(i).String(), AuthType: "ACCOUNT"}
	}
	// Rows of one entry, as an earlier version wrote them: entries 0, 2, 4, …, 18.
	for i := 0; i < 20; i += 2 {
		a := at(i)
		rec, err := codec.MarshalActivity(&a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(t.Context(), s.logPrefix(k.Tag, false)+s.entryKey(a.Time, uint64(i)), string(rec)); err != nil {
			t.Fatal(err)
		}
	}
	// One batch of the odd entries 1 … 19, out of order: one chunk.
	var batch []nkms.Activity
	for i := 19; i > 0; i -= 2 {
		batch = append(batch, at(i))
	}
	if err := s.AppendActivities(t.Context(), batch, 0); err != nil {
		t.Fatal(err)
	}
	if n := rowsOf(t, s, k.Tag); n != 11 {
		t.Errorf("rows after a batch of 10 on 10 entry rows = %d, want 11", n)
	}
	check := func(what string, want ...int) {
		t.Helper()
		page, total, err := s.Activities(t.Context(), nkms.ActivityQuery{Tag: k.Tag, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), PageNo: 1, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		if total != len(want) || len(page) != len(want) {
			t.Fatalf("%s: %d entries, total %d; want %d", what, len(page), total, len(want))
		}
		for j, i := range want {
			if !page[j].Time.Equal(at(i).Time) {
				t.Errorf("%s: entry %d at %v, want %v", what, j, page[j].Time.Sub(t0), at(i).Time.Sub(t0))
			}
		}
		last, err := s.LastActivity(t.Context(), k.Tag)
		if err != nil || !last.Time.Equal(at(want[0]).Time) {
			t.Errorf("%s: LastActivity = %+v, %v; want the entry at %ds", what, last, err, want[0])
		}
	}
	check("mixed", 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
	// A page in the middle, and a range that starts inside the chunk.
	page, total, err := s.Activities(t.Context(), nkms.ActivityQuery{Tag: k.Tag, From: t0.Add(5 * time.Second), To: t0.Add(12 * time.Second), PageNo: 2, PageSize: 3})
	if err != nil || total != 8 || len(page) != 3 || !page[0].Time.Equal(at(9).Time) || !page[2].Time.Equal(at(7).Time) {
		t.Errorf("page 2 of 3 of [5s, 12s] = %d entries from %v, total %d, %v; want 9s, 8s, 7s of 8", len(page), page, total, err)
	}
	// Trim to 13: entries 0 … 6 go, the chunk keeps 7 … 19 of its entries.
	if err := s.AppendActivities(t.Context(), []nkms.Activity{at(20)}, 14); err != nil {
		t.Fatal(err)
	}
	check("trimmed to 14", 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7)
	// Prune before 12s: entries 7 … 11 go, of the chunk 7, 9, 11.
	if n, err := s.PruneActivities(t.Context(), t0.Add(12*time.Second)); err != nil || n != 5 {
		t.Errorf("PruneActivities = %d, %v; want 5", n, err)
	}
	check("pruned", 20, 19, 18, 17, 16, 15, 14, 13, 12)
	if n, err := s.PruneActivities(t.Context(), t0.Add(time.Hour)); err != nil || n != 9 {
		t.Errorf("PruneActivities of all = %d, %v; want 9", n, err)
	}
	if _, err := s.LastActivity(t.Context(), k.Tag); err != nkms.ErrNoActivity {
		t.Errorf("LastActivity after pruning all: %v, want ErrNoActivity", err)
	}
	resp, err := cli.Get(t.Context(), s.actPrefix(k.Tag), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("rows left under the key's prefix: %d, %v; want none", resp.Count, err)
	}
}

// TestTwoStoresTrimChunks: two stores append chunks to one key's log at once
// with a small limit; trims race with appends and with each other. In the
// end the log holds exactly the limit's newest entries.
func TestTwoStoresTrimChunks(t *testing.T) {
	t.Parallel()
	a, b := twoStores(t)
	k, err := a.Create(t.Context(), testKey(1, "trimrace"))
	if err != nil {
		t.Fatal(err)
	}
	const batches, per, limit = 15, 40, 100
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 2*batches)
	for si, s := range []*Store{a, b} {
		s.minChunk = 2
		wg.Go(func() {
			for i := range batches {
				batch := make([]nkms.Activity, per)
				for j := range batch {
					n := (i*per+j)*2 + si // distinct times, interleaved between the stores
					batch[j] = nkms.Activity{Tag: k.Tag, Keystore: 1, Time: t0.Add(time.Duration(n) * time.Millisecond),
						RequestType: "API", Result: "SUCCESS", Action: strconv.Itoa(n), AuthType: "ACCOUNT"}
				}
				errs <- s.AppendActivities(t.Context(), batch, limit)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	page, total, err := b.Activities(t.Context(), nkms.ActivityQuery{Tag: k.Tag, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), PageNo: 1, PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if total != limit || len(page) != limit {
		t.Fatalf("after racing appends with limit %d: %d entries (page %d)", limit, total, len(page))
	}
	all := 2 * batches * per
	for i, e := range page { // newest first
		if want := strconv.Itoa(all - 1 - i); e.Action != want {
			t.Fatalf("entry %d is %s, want %s: the newest %d entries must stay", i, e.Action, want, limit)
		}
	}
}
