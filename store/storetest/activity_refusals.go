package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms"
)

// Refusals (nkms.Activity.Refused): kept apart from ordinary entries in
// quota, aggregated per group and minute, listed with the others, never the
// last use.

// testActivityRefusals runs the refusal cases one after another on one
// store (each with its own keys; pruning looks only at times no other case uses).
func testActivityRefusals(t *testing.T, s nkms.Store) {
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s nkms.Store)
	}{
		{"Flood", testRefusalFlood},
		{"QuotaApart", testRefusalQuotaApart},
		{"Aggregation", testRefusalAggregation},
		{"Listing", testRefusalListing},
		{"OnlyRefusals", testOnlyRefusals},
		{"Concurrent", testConcurrentRefusals},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, s) })
	}
}

// refusal returns a refused call on k at t by requestor (role refusal "210").
func refusal(k *nkms.Key, at time.Time, requestor string) nkms.Activity {
	c := nkms.Caller{AccessKey: requestor, Keystore: k.Keystore, IP: "198.51.100.7"}
	a := nkms.RefusalActivity(k.Tag, at, c, "Encrypt", "210")
	a.Keystore, a.KeyName = k.Keystore, k.Name
	return a
}

// minuteOf is the start of t0's minute plus d: refusals aggregate per minute.
func minuteOf(d time.Duration) time.Time { return nkms.RefusalMinute(t0).Add(d) }

// allEntries returns every entry of k, newest first, in pages of 200.
func allEntries(t *testing.T, s nkms.Store, k *nkms.Key) []nkms.Activity {
	t.Helper()
	var all []nkms.Activity
	for p := 1; ; p++ {
		q := allOf(k)
		q.PageNo = p
		page, total, err := s.Activities(t.Context(), q)
		if err != nil {
			t.Fatalf("Activities page %d: %v", p, err)
		}
		all = append(all, page...)
		if len(page) == 0 || len(all) >= total {
			return all
		}
	}
}

// census counts the ordinary entries, the refusal entries and the refused
// calls these stand for.
func census(as []nkms.Activity) (ordinary, refusals, calls int) {
	for _, a := range as {
		if a.Refused {
			refusals++
			calls += a.Calls()
		} else {
			ordinary++
		}
	}
	return ordinary, refusals, calls
}

// testRefusalFlood is the attack of issue 13: a viewer's 10,400 refused
// encrypts, appended in batches of 1000 as the recorder writes them, must
// leave the admin's successful Encrypt in the log and as the last use, and
// cost one entry per minute.
func testRefusalFlood(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "flooded"))
	used := activity(k, minuteOf(0), "Encrypt")
	used.Requestor = "NKadmin"
	appendActivities(t, s, nkms.DefaultActivityPerKey, used)
	const flood = 10_400
	var batch []nkms.Activity
	for i := range flood {
		// 10 ms apart: the flood lasts 104 s and spans two minutes.
		batch = append(batch, refusal(k, minuteOf(time.Second+time.Duration(i)*10*time.Millisecond), "NKviewer"))
		if len(batch) == 1000 || i == flood-1 {
			appendActivities(t, s, nkms.DefaultActivityPerKey, batch...)
			batch = batch[:0]
		}
	}
	all := allEntries(t, s, k)
	ordinary, refusals, calls := census(all)
	if ordinary != 1 || refusals != 2 || calls != flood {
		t.Errorf("after the flood: %d ordinary entries, %d refusal entries for %d calls; want 1, 2 (one per minute), %d",
			ordinary, refusals, calls, flood)
	}
	checkLast(t, s, "after the flood", k.Tag, &used)
	if got := all[len(all)-1]; got.Refused || got.Action != "Encrypt" || got.Result != "SUCCESS" {
		t.Errorf("oldest entry after the flood = %+v, want the successful Encrypt", got)
	}
	if want := fmt.Sprintf("210 (x%d)", all[0].Count); all[0].Message != want || all[0].Count < 2 {
		t.Errorf("newest refusal entry: message %q, count %d; want %q, a count above 1", all[0].Message, all[0].Count, want)
	}
}

// testRefusalQuotaApart: refusals too many to aggregate (each in a minute of
// its own) are trimmed among themselves, and ordinary entries among
// themselves: neither kind ever pushes the other out.
func testRefusalQuotaApart(t *testing.T, s nkms.Store) {
	const limit = 20
	k := create(t, s, newKey(t, 1, "quotas"))
	ordinary := activitiesAt(k, minutes(10)...)
	appendActivities(t, s, limit, ordinary...)
	var refusals []nkms.Activity
	for i := range 3 * limit {
		refusals = append(refusals, refusal(k, minuteOf(time.Hour+time.Duration(i)*time.Minute), "NKviewer"))
	}
	appendActivities(t, s, limit, refusals[:limit/2]...)
	appendActivities(t, s, limit, refusals[limit/2:]...)
	kept := nkms.RefusalsPerKey(limit)
	want := newestFirst(slices.Concat(ordinary, refusals[len(refusals)-kept:]))
	checkActivities(t, s, "after 3×limit refusals", allOf(k), want, len(want))
	checkLast(t, s, "after 3×limit refusals", k.Tag, &ordinary[len(ordinary)-1])

	// Ordinary entries over the limit push out ordinary entries only.
	more := activitiesAt(k, 5*time.Hour, 5*time.Hour+time.Minute)
	for i := range more {
		more[i].Action = fmt.Sprintf("More%d", i)
	}
	for range limit {
		appendActivities(t, s, limit, more...)
	}
	got := allEntries(t, s, k)
	o, r, calls := census(got)
	if o != limit || r != kept || calls != kept {
		t.Errorf("after %d more ordinary entries: %d ordinary, %d refusals (%d calls); want %d, %d (%d)", 2*limit, o, r, calls, limit, kept, kept)
	}
	checkLast(t, s, "after more ordinary entries", k.Tag, &more[1])
}

// testRefusalAggregation: refusals of one group (key, requestor, address,
// action, auth type, code) within one minute are one entry, across appends
// too; anything that differs is an entry of its own.
func testRefusalAggregation(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "aggregated"))
	m := minuteOf(0)
	base := refusal(k, m.Add(time.Second), "NKviewer")
	vary := func(at time.Duration, set func(*nkms.Activity)) nkms.Activity {
		a := base
		a.Time = m.Add(at)
		set(&a)
		return a
	}
	same := func(at time.Duration) nkms.Activity { return vary(at, func(*nkms.Activity) {}) }
	appendActivities(t, s, 100, same(time.Second), same(2*time.Second))
	appendActivities(t, s, 100, same(59*time.Second+999*time.Millisecond))
	aggregated := base
	aggregated.Count, aggregated.Message = 3, "210 (x3)"

	// An entry that already stands for several calls adds them all.
	pre := same(30 * time.Second)
	pre.AddRefusals(&nkms.Activity{Count: 4})
	appendActivities(t, s, 100, pre)
	aggregated.Count, aggregated.Message = 8, "210 (x8)"

	others := []nkms.Activity{
		vary(time.Minute, func(*nkms.Activity) {}), // the next minute
		vary(3*time.Second, func(a *nkms.Activity) { a.Requestor = "NKother" }),
		vary(4*time.Second, func(a *nkms.Activity) { a.IP = "203.0.113.1" }),
		vary(5*time.Second, func(a *nkms.Activity) { a.Action = "Decrypt" }),
		vary(6*time.Second, func(a *nkms.Activity) { a.AuthType = "TOKEN" }),
		vary(7*time.Second, func(a *nkms.Activity) { a.Message = "FORBIDDEN" }),
		vary(8*time.Second, func(a *nkms.Activity) { a.Refused, a.Count = false, 0 }), // an ordinary failure
		vary(9*time.Second, func(a *nkms.Activity) { a.Refused, a.Count = false, 0 }), // is never aggregated
	}
	appendActivities(t, s, 100, others...)
	// Each of those aggregates with its own group's next refusal.
	again := slices.Clone(others[:6])
	for i := range again {
		again[i].Time = again[i].Time.Add(10 * time.Second)
	}
	appendActivities(t, s, 100, again...)
	want := []nkms.Activity{aggregated}
	for _, a := range others {
		if a.Refused {
			a.Count, a.Message = 2, a.Message+" (x2)"
		}
		want = append(want, a)
	}
	checkActivities(t, s, "aggregated", allOf(k), newestFirst(want), len(want))
	checkLast(t, s, "aggregated", k.Tag, &others[7])
}

// testRefusalListing: the list shows both kinds newest first, with time
// ranges, keywords and paging across both; entries of the same time come
// latest appended first, whatever their kinds.
func testRefusalListing(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "listed"))
	var model []nkms.Activity // in append order, as the log should hold them
	for i := range 12 {
		at := minuteOf(time.Duration(i) * time.Minute)
		o := activity(k, at, fmt.Sprintf("Use%d", i))
		r := refusal(k, at.Add(time.Duration(i%3)*time.Second), "NKviewer") // i%3 == 0: the same time as o
		switch i % 4 {
		case 0: // the refusal first, then the use
			appendActivities(t, s, 0, r)
			appendActivities(t, s, 0, o)
			model = append(model, r, o)
		case 1: // both in one batch, the use first
			appendActivities(t, s, 0, o, r)
			model = append(model, o, r)
		default: // the refusal comes twice, in one batch with the use
			appendActivities(t, s, 0, r, o, r)
			r.Count, r.Message = 2, "210 (x2)"
			model = append(model, r, o)
		}
	}
	desc := newestFirst(model)
	checkActivities(t, s, "all", allOf(k), desc, len(desc))
	// Every page of size 5 gives every entry once, in order.
	var walked []nkms.Activity
	for p := 1; p <= 6; p++ {
		q := allOf(k)
		q.PageNo, q.PageSize = p, 5
		page, total, err := s.Activities(t.Context(), q)
		if err != nil || total != len(desc) {
			t.Fatalf("page %d of size 5: total %d, err %v; want %d, nil", p, total, err, len(desc))
		}
		walked = append(walked, page...)
	}
	if diff := cmp.Diff(walked, desc, keyOpts); diff != "" {
		t.Errorf("every page of size 5 (-got +want):\n%s", diff)
	}
	filter := func(keep func(*nkms.Activity) bool) []nkms.Activity {
		var r []nkms.Activity
		for _, a := range desc {
			if keep(&a) {
				r = append(r, a)
			}
		}
		return r
	}
	inRange := func(a *nkms.Activity) bool {
		return !a.Time.Before(minuteOf(3*time.Minute)) && !a.Time.After(minuteOf(8*time.Minute+time.Second))
	}
	for _, tc := range []struct {
		name             string
		keyword          string
		from, to         time.Time
		pageNo, pageSize int
		keep             func(*nkms.Activity) bool
	}{
		{"range", "", minuteOf(3 * time.Minute), minuteOf(8*time.Minute + time.Second), 1, 200, inRange},
		{"range, second page", "", minuteOf(3 * time.Minute), minuteOf(8*time.Minute + time.Second), 2, 4, inRange},
		{"keyword of refusals", "210", t0.Add(-day), t0.Add(day), 1, 200, func(a *nkms.Activity) bool { return a.Refused }},
		{"keyword of counts", "(X2)", t0.Add(-day), t0.Add(day), 1, 200, func(a *nkms.Activity) bool { return a.Count == 2 }},
		{"keyword of both", "crypt", t0.Add(-day), t0.Add(day), 2, 3, func(a *nkms.Activity) bool { return a.Refused }},
		{"keyword of uses", "use1", t0.Add(-day), t0.Add(day), 1, 2, func(a *nkms.Activity) bool { return !a.Refused && a.Action[3] == '1' }},
		{"keyword and range", "fail", minuteOf(3 * time.Minute), minuteOf(8*time.Minute + time.Second), 2, 2,
			func(a *nkms.Activity) bool { return a.Refused && inRange(a) }},
	} {
		want := filter(tc.keep)
		total := len(want)
		from := min((tc.pageNo-1)*tc.pageSize, len(want))
		want = want[from:min(from+tc.pageSize, len(want))]
		q := nkms.ActivityQuery{Tag: k.Tag, From: tc.from, To: tc.to, Keyword: tc.keyword, PageNo: tc.pageNo, PageSize: tc.pageSize}
		checkActivities(t, s, tc.name, q, want, total)
	}
	checkLast(t, s, "listed", k.Tag, &model[len(model)-1])
}

// testOnlyRefusals: a key with only refusals was never used; they are
// listed, pruned like any entry and go with the key.
func testOnlyRefusals(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "refusedOnly"))
	old := t0.Add(-1000 * day) // no other case has entries this old
	rs := []nkms.Activity{refusal(k, old, "NKa"), refusal(k, old.Add(time.Second), "NKa"), refusal(k, old.Add(time.Minute), "NKb")}
	appendActivities(t, s, 10, rs...)
	checkLast(t, s, "only refusals", k.Tag, nil)
	q := allOf(k)
	q.From = old.Add(-day)
	_, total, err := s.Activities(t.Context(), q)
	if err != nil || total != 2 {
		t.Errorf("Activities of only refusals: total %d, err %v; want 2, nil", total, err)
	}
	if n, err := s.PruneActivities(t.Context(), old.Add(30*time.Second)); err != nil || n != 1 {
		t.Errorf("PruneActivities of the first minute = %d, %v; want 1 (an entry of two calls), nil", n, err)
	}
	checkActivities(t, s, "after pruning", q, rs[2:], 1)
	if err := s.Delete(t.Context(), k.Tag, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	create(t, s, k)
	checkActivities(t, s, "the key created again", q, nil, 0)
	if n, err := s.PruneActivities(t.Context(), old.Add(day)); err != nil || n != 0 {
		t.Errorf("PruneActivities after Delete = %d, %v; want 0, nil", n, err)
	}
}

// testConcurrentRefusals: concurrent appends of one group's refusals lose
// no call.
func testConcurrentRefusals(t *testing.T, s nkms.Store) {
	const writers, batches, batchSize = 8, 10, 5
	k := create(t, s, newKey(t, 1, "contended"))
	used := activity(k, minuteOf(0), "Encrypt")
	appendActivities(t, s, 1000, used)
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				var batch []nkms.Activity
				for j := range batchSize {
					batch = append(batch, refusal(k, minuteOf(time.Duration((w*batches+i)*batchSize+j)*time.Millisecond), "NKviewer"))
				}
				errs <- s.AppendActivities(t.Context(), batch, 1000)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("AppendActivities: %v", err)
		}
	}
	all := allEntries(t, s, k)
	ordinary, refusals, calls := census(all)
	if ordinary != 1 || calls != writers*batches*batchSize || refusals < 1 {
		t.Errorf("after concurrent refusals: %d ordinary entries, %d refusal entries for %d calls; want 1, at least 1, %d",
			ordinary, refusals, calls, writers*batches*batchSize)
	}
	t.Logf("%d concurrent appends of one group's refusals: %d refusal entries", writers*batches, refusals)
	checkLast(t, s, "after concurrent refusals", k.Tag, &used)
}
