package etcd

import (
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

// TestTwoStoresRefusals: two stores (two nodes) that append refusals of one
// group at once lose no call, keep the key's use, and fold the calls into
// one entry per minute (or a few, should they keep racing).
func TestTwoStoresRefusals(t *testing.T) {
	t.Parallel()
	a, b := twoStores(t)
	k, err := a.Create(t.Context(), testKey(1, "flooded"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Truncate(time.Minute)
	used := nkms.Activity{Tag: k.Tag, Time: t0, RequestType: "API", Requestor: "NKadmin", Result: "SUCCESS", Action: "Encrypt", AuthType: "ACCOUNT"}
	if err := a.AppendActivities(t.Context(), []nkms.Activity{used}, 5); err != nil {
		t.Fatal(err)
	}
	viewer := nkms.Caller{AccessKey: "NKviewer", Keystore: 1, IP: "192.0.2.7"}
	const writers, batches, batchSize = 4, 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*batches)
	for _, s := range []*Store{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range batches {
					var batch []nkms.Activity
					for j := range batchSize {
						at := t0.Add(time.Duration((w*batches+i)*batchSize+j) * time.Millisecond)
						batch = append(batch, nkms.RefusalActivity(k.Tag, at, viewer, "Encrypt", "210"))
					}
					errs <- s.AppendActivities(t.Context(), batch, 5)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	page, total, err := b.Activities(t.Context(), nkms.ActivityQuery{Tag: k.Tag, From: t0.Add(-time.Hour), To: t0.Add(time.Hour), PageNo: 1, PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	calls, refusals := 0, 0
	for _, e := range page {
		if e.Refused {
			refusals++
			calls += e.Calls()
		}
	}
	if want := 2 * writers * batches * batchSize; calls != want || total != refusals+1 {
		t.Errorf("after concurrent refusals from two stores: %d entries, %d of them refusals for %d calls; want %d calls and the use",
			total, refusals, calls, want)
	}
	t.Logf("%d appends of one group's refusals from two stores: %d refusal entries", 2*writers*batches, refusals)
	if last, err := a.LastActivity(t.Context(), k.Tag); err != nil || last.Action != "Encrypt" || last.Result != "SUCCESS" {
		t.Errorf("LastActivity = %+v, %v; want the Encrypt", last, err)
	}
}
