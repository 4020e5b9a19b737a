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

// activity returns a usage-log entry of k at t with every field set.
func activity(k *nkms.Key, at time.Time, action string) nkms.Activity {
	return nkms.Activity{
		Tag: k.Tag, Keystore: k.Keystore, KeyName: k.Name, Time: at,
		RequestType: "API", Requestor: "NKrequestor", IP: "192.0.2.1",
		Result: "SUCCESS", Action: action, AuthType: "ACCOUNT",
	}
}

// activitiesAt returns one entry of k per offset from t0, with action "A<i>"
// for the i-th; oldest first when the offsets grow.
func activitiesAt(k *nkms.Key, offsets ...time.Duration) []nkms.Activity {
	var as []nkms.Activity
	for i, d := range offsets {
		as = append(as, activity(k, t0.Add(d), fmt.Sprintf("A%d", i)))
	}
	return as
}

// minutes returns the offsets 0, 1, …, n-1 minutes.
func minutes(n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(i) * time.Minute
	}
	return ds
}

// appendActivities stores entries and fails the test on error.
func appendActivities(t *testing.T, s nkms.Store, maxPerKey int, entries ...nkms.Activity) {
	t.Helper()
	if err := s.AppendActivities(t.Context(), entries, maxPerKey); err != nil {
		t.Fatalf("AppendActivities(%d entries, max %d): %v", len(entries), maxPerKey, err)
	}
}

// allOf is the query of every entry of k (a 200-entry page).
func allOf(k *nkms.Key) nkms.ActivityQuery {
	return nkms.ActivityQuery{Tag: k.Tag, From: t0.Add(-1000 * day), To: t0.Add(1000 * day), PageNo: 1, PageSize: 200}
}

// newestFirst returns as sorted newest first; entries of the same time keep
// their reversed order.
func newestFirst(as []nkms.Activity) []nkms.Activity {
	r := slices.Clone(as)
	slices.Reverse(r)
	slices.SortStableFunc(r, func(a, b nkms.Activity) int { return b.Time.Compare(a.Time) })
	return r
}

// checkActivities compares a query's page and total with what is expected.
func checkActivities(t *testing.T, s nkms.Store, what string, q nkms.ActivityQuery, want []nkms.Activity, wantTotal int) {
	t.Helper()
	got, total, err := s.Activities(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: Activities: %v", what, err)
	}
	if total != wantTotal {
		t.Errorf("%s: total = %d, want %d", what, total, wantTotal)
	}
	if diff := cmp.Diff(got, want, keyOpts); diff != "" {
		t.Errorf("%s: page (-got +want):\n%s", what, diff)
	}
}

// checkLast compares LastActivity with want; nil want means ErrNoActivity.
func checkLast(t *testing.T, s nkms.Store, what, tag string, want *nkms.Activity) {
	t.Helper()
	got, err := s.LastActivity(t.Context(), tag)
	if want == nil {
		checkIs(t, what+": LastActivity", err, nkms.ErrNoActivity)
		return
	}
	if err != nil {
		t.Fatalf("%s: LastActivity: %v", what, err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("%s: LastActivity (-got +want):\n%s", what, diff)
	}
}

func testActivityRoundTrip(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "logged"))
	system := nkms.Activity{
		Tag: k.Tag, Keystore: k.Keystore, KeyName: "oldName", Time: t0.Add(time.Hour),
		RequestType: "SYSTEM", Result: "SUCCESS", Action: "AutoRotate", AuthType: "SYSTEM",
	}
	failed := nkms.Activity{
		Tag: k.Tag, Keystore: k.Keystore, KeyName: k.Name, Time: t0,
		RequestType: "API", Requestor: "NKtoken", IP: "198.51.100.23",
		Result: "FAIL", Action: "Decrypt", AuthType: "TOKEN", Message: "invalid_state 한글",
	}
	appendActivities(t, s, 0, failed, system)
	checkActivities(t, s, "after AppendActivities", allOf(k), []nkms.Activity{system, failed}, 2)
	checkLast(t, s, "after AppendActivities", k.Tag, &system)
}

func testActivityNewestFirst(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "ordered"))
	first := activitiesAt(k, 5*time.Minute, time.Minute, 3*time.Minute)
	appendActivities(t, s, 0, first...)
	// Earlier than all, between, later than all, and ties: entries of the
	// same time come back latest appended first.
	second := activitiesAt(k, -time.Minute, 2*time.Minute, 10*time.Minute, 3*time.Minute, 3*time.Minute)
	for i := range second {
		second[i].Action = fmt.Sprintf("B%d", i)
	}
	appendActivities(t, s, 0, second[:3]...)
	appendActivities(t, s, 0, second[3])
	appendActivities(t, s, 0, second[4])
	all := append(slices.Clone(first), second...)
	checkActivities(t, s, "all", allOf(k), newestFirst(all), len(all))
	checkLast(t, s, "newest by time, not by append order", k.Tag, &second[2])
}

func testActivityTimeRange(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "ranged"))
	other := create(t, s, newKey(t, 1, "other"))
	as := activitiesAt(k, minutes(10)...) // t0 … t0+9m
	appendActivities(t, s, 0, as...)
	appendActivities(t, s, 0, activitiesAt(other, minutes(10)...)...)
	desc := newestFirst(as)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     []nkms.Activity
	}{
		{"both ends inclusive", t0.Add(2 * time.Minute), t0.Add(5 * time.Minute), desc[4:8]},
		{"one instant", t0.Add(3 * time.Minute), t0.Add(3 * time.Minute), desc[6:7]},
		{"just inside by a nanosecond", t0.Add(2*time.Minute - 1), t0.Add(5*time.Minute + 1), desc[4:8]},
		{"just outside by a nanosecond", t0.Add(2*time.Minute + 1), t0.Add(5*time.Minute - 1), desc[5:7]},
		{"everything", t0, t0.Add(9 * time.Minute), desc},
		{"zero From", time.Time{}, t0.Add(time.Minute), desc[8:]},
		{"before all", t0.Add(-time.Hour), t0.Add(-1), nil},
		{"after all", t0.Add(9*time.Minute + 1), t0.Add(time.Hour), nil},
		{"From after To", t0.Add(5 * time.Minute), t0.Add(2 * time.Minute), nil},
		{"other zone", t0.Add(time.Minute).UTC(), t0.Add(2 * time.Minute).In(time.FixedZone("X", -5*3600)), desc[7:9]},
	} {
		q := nkms.ActivityQuery{Tag: k.Tag, From: tc.from, To: tc.to, PageNo: 1, PageSize: 100}
		checkActivities(t, s, tc.name, q, tc.want, len(tc.want))
	}
}

func testActivityKeyword(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "Searched"))
	base := activity(k, t0, "Encrypt")
	field := func(i int, set func(*nkms.Activity)) nkms.Activity {
		a := base
		a.Time = t0.Add(time.Duration(i) * time.Second)
		set(&a)
		return a
	}
	as := []nkms.Activity{
		field(0, func(a *nkms.Activity) { a.Action = "NeedleAction" }),
		field(1, func(a *nkms.Activity) { a.Requestor = "NKneedle" }),
		field(2, func(a *nkms.Activity) { a.IP = "needle-ip" }),
		field(3, func(a *nkms.Activity) { a.Result = "NEEDLE" }),
		field(4, func(a *nkms.Activity) { a.AuthType = "needleAuth" }),
		field(5, func(a *nkms.Activity) { a.RequestType = "nEeDlE" }),
		field(6, func(a *nkms.Activity) { a.Message = "a needle in a message" }),
		field(7, func(a *nkms.Activity) { a.KeyName = "needleName" }), // KeyName is not searched
		field(8, func(a *nkms.Activity) {}),
	}
	appendActivities(t, s, 0, as...)
	matching := newestFirst(as[:7])
	for _, kw := range []string{"needle", "NEEDLE", "Needle", "eedl"} {
		q := allOf(k)
		q.Keyword = kw
		checkActivities(t, s, "keyword "+kw, q, matching, len(matching))
	}
	q := allOf(k)
	q.Keyword = "192.0.2"
	checkActivities(t, s, "keyword in every entry's IP but one", q, newestFirst(slices.Delete(slices.Clone(as), 2, 3)), len(as)-1)
	q.Keyword = "absent"
	checkActivities(t, s, "keyword nowhere", q, nil, 0)
	q.Keyword = "searched"
	checkActivities(t, s, "keyword only in KeyName", q, nil, 0)
	q = allOf(k)
	q.Keyword, q.From, q.To = "needle", t0.Add(2*time.Second), t0.Add(4*time.Second)
	checkActivities(t, s, "keyword and time range", q, newestFirst(as[2:5]), 3)
}

func testActivityPaging(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "paged"))
	as := activitiesAt(k, minutes(25)...)
	for i := range as {
		if i%2 == 0 {
			as[i].Result = "FAIL"
		}
	}
	appendActivities(t, s, 0, as...)
	desc := newestFirst(as)
	var fails []nkms.Activity // 13, newest first
	for _, a := range desc {
		if a.Result == "FAIL" {
			fails = append(fails, a)
		}
	}
	inRange := desc[5:20] // t0+5m … t0+19m, 15 entries
	for _, tc := range []struct {
		name             string
		keyword          string
		from, to         time.Time
		pageNo, pageSize int
		want             []nkms.Activity
		total            int
	}{
		{"first", "", t0, t0.Add(time.Hour), 1, 10, desc[0:10], 25},
		{"second", "", t0, t0.Add(time.Hour), 2, 10, desc[10:20], 25},
		{"last, partial", "", t0, t0.Add(time.Hour), 3, 10, desc[20:25], 25},
		{"past the end", "", t0, t0.Add(time.Hour), 4, 10, nil, 25},
		{"far past the end", "", t0, t0.Add(time.Hour), 100, 10, nil, 25},
		{"one page of all", "", t0, t0.Add(time.Hour), 1, 200, desc, 25},
		{"exactly all", "", t0, t0.Add(time.Hour), 1, 25, desc, 25},
		{"after exactly all", "", t0, t0.Add(time.Hour), 2, 25, nil, 25},
		{"size 1", "", t0, t0.Add(time.Hour), 7, 1, desc[6:7], 25},
		{"range, first", "", t0.Add(5 * time.Minute), t0.Add(19 * time.Minute), 1, 10, inRange[0:10], 15},
		{"range, second", "", t0.Add(5 * time.Minute), t0.Add(19 * time.Minute), 2, 10, inRange[10:15], 15},
		{"range, past the end", "", t0.Add(5 * time.Minute), t0.Add(19 * time.Minute), 3, 10, nil, 15},
		{"keyword, first", "fail", t0, t0.Add(time.Hour), 1, 5, fails[0:5], 13},
		{"keyword, third", "fail", t0, t0.Add(time.Hour), 3, 5, fails[10:13], 13},
		{"keyword, past the end", "fail", t0, t0.Add(time.Hour), 4, 5, nil, 13},
		{"keyword and range", "fail", t0.Add(5 * time.Minute), t0.Add(19 * time.Minute), 2, 4, fails[7:10], 7},
	} {
		q := nkms.ActivityQuery{Tag: k.Tag, From: tc.from, To: tc.to, Keyword: tc.keyword, PageNo: tc.pageNo, PageSize: tc.pageSize}
		checkActivities(t, s, tc.name, q, tc.want, tc.total)
	}
	// Walking every page of size 3 gives every entry once, in order.
	var walked []nkms.Activity
	for p := 1; p <= 10; p++ {
		page, total, err := s.Activities(t.Context(), nkms.ActivityQuery{Tag: k.Tag, From: t0, To: t0.Add(time.Hour), PageNo: p, PageSize: 3})
		if err != nil || total != len(as) {
			t.Fatalf("page %d of size 3: total %d, err %v; want %d, nil", p, total, err, len(as))
		}
		walked = append(walked, page...)
	}
	if diff := cmp.Diff(walked, desc, keyOpts); diff != "" {
		t.Errorf("every page of size 3 (-got +want):\n%s", diff)
	}
}

func testActivityUnknownKey(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "known"))
	ghost := newKey(t, 1, "ghost") // never stored
	mixed := []nkms.Activity{activity(ghost, t0, "Encrypt"), activity(k, t0, "Encrypt"), activity(ghost, t0.Add(time.Second), "Decrypt")}
	appendActivities(t, s, 1, mixed...)
	checkActivities(t, s, "the known key", allOf(k), mixed[1:2], 1)
	checkActivities(t, s, "the unknown key", allOf(ghost), nil, 0)
	checkLast(t, s, "the unknown key", ghost.Tag, nil)
	checkLast(t, s, "a tag no key ever had", randomTag(t), nil)
	appendActivities(t, s, 0, activity(ghost, t0, "Encrypt")) // a batch of only unknown keys
	appendActivities(t, s, 0)                                 // an empty batch
	// A key created later under that tag starts without a log.
	create(t, s, ghost)
	checkLast(t, s, "the key created after its entries were dropped", ghost.Tag, nil)
	if n, err := s.PruneActivities(t.Context(), t0.Add(day)); err != nil || n != 1 {
		t.Errorf("PruneActivities of everything = %d, %v; want 1 (only the known key's entry), nil", n, err)
	}
}

func testActivityMaxPerKey(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "capped"))
	other := create(t, s, newKey(t, 1, "uncapped"))
	otherAs := activitiesAt(other, minutes(6)...)
	appendActivities(t, s, 0, otherAs...)

	as := activitiesAt(k, minutes(10)...)
	appendActivities(t, s, 3, as[:5]...)
	checkActivities(t, s, "5 appended, max 3", allOf(k), newestFirst(as[2:5]), 3)
	appendActivities(t, s, 4, as[5:7]...)
	checkActivities(t, s, "2 more, max 4", allOf(k), newestFirst(as[3:7]), 4)
	appendActivities(t, s, 0, as[7:9]...)
	checkActivities(t, s, "2 more, no max", allOf(k), newestFirst(as[3:9]), 6)
	appendActivities(t, s, -1, as[9])
	checkActivities(t, s, "1 more, negative max", allOf(k), newestFirst(as[3:10]), 7)
	// The oldest go first, whenever they were appended: an entry older than
	// all others is dropped at once.
	old := activity(k, t0.Add(-time.Hour), "Old")
	appendActivities(t, s, 7, old)
	checkActivities(t, s, "an old entry at the max", allOf(k), newestFirst(as[3:10]), 7)
	appendActivities(t, s, 1, activity(other, t0.Add(time.Hour), "Other"), activity(k, t0.Add(time.Hour), "Newest"))
	checkActivities(t, s, "max 1 for both keys of a batch", allOf(k), []nkms.Activity{activity(k, t0.Add(time.Hour), "Newest")}, 1)
	checkActivities(t, s, "the other key, max 1", allOf(other), []nkms.Activity{activity(other, t0.Add(time.Hour), "Other")}, 1)
	// Trimmed entries are gone for pruning too.
	if n, err := s.PruneActivities(t.Context(), t0.Add(day)); err != nil || n != 2 {
		t.Errorf("PruneActivities of everything = %d, %v; want 2, nil", n, err)
	}
}

func testActivityMaxPerKeyUntouched(t *testing.T, s nkms.Store) {
	a := create(t, s, newKey(t, 1, "touched"))
	b := create(t, s, newKey(t, 1, "untouched"))
	bs := activitiesAt(b, minutes(5)...)
	appendActivities(t, s, 0, bs...)
	appendActivities(t, s, 2, activitiesAt(a, minutes(3)...)...)
	checkActivities(t, s, "a key the batch did not touch", allOf(b), newestFirst(bs), 5)
}

func testPruneActivities(t *testing.T, s nkms.Store) {
	a := create(t, s, newKey(t, 1, "pruneA"))
	b := create(t, s, newKey(t, 1, "pruneB"))
	as := activitiesAt(a, -3*day, -2*day, -day, 0, day)
	bs := activitiesAt(b, -5*day, -day-1, -day, -day+1)
	appendActivities(t, s, 0, append(slices.Clone(as), bs...)...)

	prune := func(before time.Time, want int) {
		t.Helper()
		n, err := s.PruneActivities(t.Context(), before)
		if err != nil {
			t.Fatalf("PruneActivities(t0%+v): %v", before.Sub(t0), err)
		}
		if n != want {
			t.Errorf("PruneActivities(t0%+v) = %d, want %d", before.Sub(t0), n, want)
		}
	}
	prune(t0.Add(-10*day), 0)
	prune(t0.Add(-day), 4) // a's -3d, -2d; b's -5d, -1d-1ns; not those at exactly -1d
	checkActivities(t, s, "a after pruning", allOf(a), newestFirst(as[2:]), 3)
	checkActivities(t, s, "b after pruning", allOf(b), newestFirst(bs[2:]), 2)
	prune(t0.Add(-day), 0)
	prune(t0.Add(-day+1), 2) // exactly -1d, of both
	checkActivities(t, s, "b after pruning again", allOf(b), bs[3:], 1)
	prune(t0.Add(time.Hour), 2) // a's 0, b's last
	checkLast(t, s, "b, pruned empty", b.Tag, nil)
	checkActivities(t, s, "b, pruned empty", allOf(b), nil, 0)
	checkLast(t, s, "a, one left", a.Tag, &as[4])
	// A pruned-empty key's log works again.
	again := activity(b, t0.Add(2*day), "Again")
	appendActivities(t, s, 1, again)
	checkLast(t, s, "b, appended after pruning", b.Tag, &again)
	prune(t0.Add(100*day), 2)
}

func testLastActivity(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "lastUse"))
	idle := create(t, s, newKey(t, 1, "idle"))
	checkLast(t, s, "before any entry", k.Tag, nil)
	checkLast(t, s, "a key that was never used", idle.Tag, nil)
	as := activitiesAt(k, time.Minute, 3*time.Minute, 2*time.Minute)
	appendActivities(t, s, 0, as[0])
	checkLast(t, s, "one entry", k.Tag, &as[0])
	appendActivities(t, s, 0, as[1:]...)
	checkLast(t, s, "three entries", k.Tag, &as[1])
	checkLast(t, s, "the idle key after another key's entries", idle.Tag, nil)
}

func testActivityGoesWithKey(t *testing.T, s nkms.Store) {
	gone := create(t, s, newKey(t, 1, "gone"))
	kept := create(t, s, newKey(t, 1, "kept"))
	keptAs := activitiesAt(kept, minutes(3)...)
	appendActivities(t, s, 0, activitiesAt(gone, minutes(4)...)...)
	appendActivities(t, s, 0, keptAs...)
	// A refused Delete keeps the log.
	_ = s.Delete(t.Context(), gone.Tag, func(*nkms.Key) error { return nkms.ErrInvalidStatus })
	if _, total, err := s.Activities(t.Context(), allOf(gone)); err != nil || total != 4 {
		t.Errorf("Activities after a refused Delete: total %d, err %v; want 4, nil", total, err)
	}
	if err := s.Delete(t.Context(), gone.Tag, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkActivities(t, s, "the deleted key", allOf(gone), nil, 0)
	checkLast(t, s, "the deleted key", gone.Tag, nil)
	checkActivities(t, s, "the other key", allOf(kept), newestFirst(keptAs), 3)
	// A key created again under the tag has an empty log.
	create(t, s, gone)
	checkLast(t, s, "the key created again", gone.Tag, nil)
	checkActivities(t, s, "the key created again", allOf(gone), nil, 0)
	// Nothing of the deleted log is left for pruning either.
	if n, err := s.PruneActivities(t.Context(), t0.Add(day)); err != nil || n != 3 {
		t.Errorf("PruneActivities of everything = %d, %v; want 3 (the other key's), nil", n, err)
	}
}

func testActivityCopies(t *testing.T, s nkms.Store) {
	k := create(t, s, newKey(t, 1, "copied"))
	in := activitiesAt(k, 0, time.Minute)
	want := newestFirst(in)
	appendActivities(t, s, 0, in...)
	in[0].Message, in[1].Action, in[1].Time = "changed", "Changed", t0.Add(day)
	checkActivities(t, s, "after changing AppendActivities's input", allOf(k), want, 2)

	page, _, err := s.Activities(t.Context(), allOf(k))
	if err != nil {
		t.Fatal(err)
	}
	page[0].Action, page[1].Time = "Changed", t0.Add(-day)
	checkActivities(t, s, "after changing Activities's result", allOf(k), want, 2)

	last, err := s.LastActivity(t.Context(), k.Tag)
	if err != nil {
		t.Fatal(err)
	}
	last.Message, last.Time = "changed", t0.Add(day)
	checkLast(t, s, "after changing LastActivity's result", k.Tag, &want[0])
}

func testConcurrentAppendActivities(t *testing.T, s nkms.Store) {
	const writers, batches, batchSize = 8, 10, 5
	a := create(t, s, newKey(t, 1, "busyA"))
	b := create(t, s, newKey(t, 1, "busyB"))
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				var batch []nkms.Activity
				for j := range batchSize {
					at := t0.Add(time.Duration((w*batches+i)*batchSize+j) * time.Millisecond)
					batch = append(batch, activity(a, at, "Encrypt"), activity(b, at, "Decrypt"))
				}
				errs <- s.AppendActivities(t.Context(), batch, 0)
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
	const n = writers * batches * batchSize
	for _, k := range []*nkms.Key{a, b} {
		q := allOf(k)
		q.PageSize = 1
		_, total, err := s.Activities(t.Context(), q)
		if err != nil || total != n {
			t.Errorf("Activities of %s after concurrent appends: total %d, err %v; want %d, nil", k.Name, total, err, n)
		}
		q.Keyword = "crypt"
		if _, total, err := s.Activities(t.Context(), q); err != nil || total != n {
			t.Errorf("Activities of %s with a keyword: total %d, err %v; want %d, nil", k.Name, total, err, n)
		}
	}
	if got, err := s.PruneActivities(t.Context(), t0.Add(day)); err != nil || got != 2*n {
		t.Errorf("PruneActivities of everything = %d, %v; want %d, nil", got, err, 2*n)
	}
}
