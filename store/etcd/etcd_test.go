package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/etcdtest"
	"github.com/nkms/nkms/store/storetest"
)

// The package's tests share one etcd of one member, started by the first
// test that needs it; each store gets a prefix of its own.
var shared struct {
	once    sync.Once
	cluster *etcdtest.Cluster
	client  *clientv3.Client
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.client != nil {
		shared.client.Close()
	}
	if shared.cluster != nil {
		shared.cluster.Close()
	}
	os.Exit(code)
}

// sharedEtcd returns the package's etcd cluster and a client of it.
func sharedEtcd(tb testing.TB) (*etcdtest.Cluster, *clientv3.Client) {
	tb.Helper()
	shared.once.Do(func() {
		if shared.cluster, shared.err = etcdtest.Launch(1); shared.err == nil {
			shared.client, shared.err = shared.cluster.NewClient()
		}
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.cluster, shared.client
}

// newPrefix returns a prefix no other store of the test binary uses; the
// test's cleanup removes what was written under it.
func newPrefix(tb testing.TB, cli *clientv3.Client) string {
	tb.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "/nkms-test/" + hex.EncodeToString(b) + "/"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cli.Delete(ctx, prefix, clientv3.WithPrefix())
	})
	return prefix
}

// open returns a store on cli under prefix, closed when the test ends.
func open(tb testing.TB, cli *clientv3.Client, prefix string) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), Options{Client: cli, Prefix: prefix})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	_, cli := sharedEtcd(t)
	storetest.Run(t, func(t *testing.T) nkms.Store {
		return open(t, cli, newPrefix(t, cli))
	})
}

// TestConformanceSmallTxns runs the suite with at most 8 operations per txn,
// so that every batch, page and prune is split over several txns, and with
// every run of 2 entries or more of one key in a batch written as a chunk.
func TestConformanceSmallTxns(t *testing.T) {
	_, cli := sharedEtcd(t)
	storetest.Run(t, func(t *testing.T) nkms.Store {
		s := open(t, cli, newPrefix(t, cli))
		s.maxOps = 8
		s.minChunk = 2
		return s
	})
}

// twoStores returns two stores on one prefix, each with a client of its own,
// as two nkms servers would have.
func twoStores(t *testing.T) (*Store, *Store) {
	c, cli := sharedEtcd(t)
	prefix := newPrefix(t, cli)
	return open(t, c.Client(t), prefix), open(t, c.Client(t), prefix)
}

func testKey(keystore int64, name string) *nkms.Key {
	b := make([]byte, 32)
	rand.Read(b)
	now := time.Now()
	return &nkms.Key{
		Tag: hex.EncodeToString(b), Keystore: keystore, Name: name, Type: nkms.AES256,
		Protection: nkms.ProtectionBasic, State: nkms.StateEnable, StatusDate: now, Registered: now,
		RotationPeriod: nkms.DefaultRotationPeriod, Memo: "0",
		Versions: []nkms.Version{{Number: 1, State: nkms.StateEnable, StatusDate: now, Created: now, Sealed: b}},
	}
}

// TestTwoStoresCreateSameName races Creates of the same names in one
// keystore from two stores: exactly one wins per name, and IDs stay unique.
func TestTwoStoresCreateSameName(t *testing.T) {
	t.Parallel()
	a, b := twoStores(t)
	const names, perName = 5, 8
	type result struct {
		name string
		key  *nkms.Key
		err  error
	}
	results := make(chan result, names*perName)
	var wg sync.WaitGroup
	for i := range names * perName {
		s := []*Store{a, b}[i%2]
		name := fmt.Sprintf("Race%d", i%names)
		if i%3 == 0 {
			name = fmt.Sprintf("race%d", i%names) // the same name to NameKey
		}
		wg.Go(func() {
			k, err := s.Create(t.Context(), testKey(1, name))
			results <- result{nkms.NameKey(name), k, err}
		})
	}
	wg.Wait()
	close(results)
	won := map[string]int{}
	ids := map[int64]bool{}
	for r := range results {
		switch {
		case r.err == nil:
			won[r.name]++
			if ids[r.key.ID] {
				t.Errorf("ID %d given twice", r.key.ID)
			}
			ids[r.key.ID] = true
		case !errors.Is(r.err, nkms.ErrNameConflict):
			t.Errorf("Create %s: got error %v, want nil or %v", r.name, r.err, nkms.ErrNameConflict)
		}
	}
	for i := range names {
		if n := won[fmt.Sprintf("race%d", i)]; n != 1 {
			t.Errorf("name race%d: %d Creates succeeded, want 1", i, n)
		}
	}
	for _, s := range []*Store{a, b} {
		if _, total, err := s.List(t.Context(), 1, 1, 100); err != nil || total != names {
			t.Errorf("List: total %d, err %v; want %d, nil", total, err, names)
		}
	}
}

// TestTwoStoresUpdate increments a counter in one key's memo from many
// goroutines of two stores: no increment is lost.
func TestTwoStoresUpdate(t *testing.T) {
	t.Parallel()
	a, b := twoStores(t)
	k, err := a.Create(t.Context(), testKey(1, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	runs := make(chan struct{}, 10*writers*each)
	for w := range writers {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for range each {
				_, err := s.Update(t.Context(), k.Tag, func(k *nkms.Key) error {
					runs <- struct{}{}
					n, err := strconv.Atoi(k.Memo)
					if err != nil {
						return err
					}
					k.Memo = strconv.Itoa(n + 1)
					// Rotate too: the record grows, as a real rotation does.
					k.Versions = append(k.Versions, nkms.Version{Number: len(k.Versions) + 1, State: nkms.StateEnable})
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	got, err := b.Get(t.Context(), k.Tag)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(writers * each); got.Memo != want || len(got.Versions) != writers*each+1 {
		t.Errorf("after %d increments: memo %s, %d versions; want %s, %d", writers*each, got.Memo, len(got.Versions), want, writers*each+1)
	}
	t.Logf("%d updates ran fn %d times", writers*each, len(runs))
}

// TestTwoStoresActivities appends, trims and deletes from two stores at
// once: each log ends at most at its limit, and a deleted key leaves no
// entries behind for pruning.
func TestTwoStoresActivities(t *testing.T) {
	t.Parallel()
	a, b := twoStores(t)
	kept, err := a.Create(t.Context(), testKey(1, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := a.Create(t.Context(), testKey(1, "gone"))
	if err != nil {
		t.Fatal(err)
	}
	const writers, batches, limit = 4, 10, 15
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches+1)
	for w := range writers {
		s := []*Store{a, b}[w%2]
		wg.Go(func() {
			for i := range batches {
				at := t0.Add(time.Duration(w*batches+i) * time.Millisecond)
				batch := []nkms.Activity{
					{Tag: kept.Tag, Time: at, Action: "Encrypt"}, {Tag: gone.Tag, Time: at, Action: "Encrypt"},
					{Tag: kept.Tag, Time: at, Action: "Decrypt"},
				}
				errs <- s.AppendActivities(t.Context(), batch, limit)
			}
		})
	}
	wg.Go(func() { errs <- b.Delete(t.Context(), gone.Tag, nil) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// A last append trims the log; the one before it may have raced others.
	if err := a.AppendActivities(t.Context(), []nkms.Activity{{Tag: kept.Tag, Time: t0.Add(time.Hour), Action: "Last"}}, limit); err != nil {
		t.Fatal(err)
	}
	q := nkms.ActivityQuery{Tag: kept.Tag, From: t0.Add(-time.Hour), To: t0.Add(2 * time.Hour), PageNo: 1, PageSize: 200}
	page, total, err := b.Activities(t.Context(), q)
	if err != nil || total != limit || len(page) != limit || page[0].Action != "Last" {
		t.Errorf("kept key's log: %d entries (total %d), err %v; want %d, newest Last", len(page), total, err, limit)
	}
	n, err := b.PruneActivities(t.Context(), t0.Add(3*time.Hour))
	if err != nil || n != limit {
		t.Errorf("PruneActivities of everything = %d, %v; want %d (the kept key's only), nil", n, err, limit)
	}
	resp, err := a.kv.Get(t.Context(), a.prefix+"act", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("usage-log rows and markers after pruning everything: %d, err %v; want none", resp.Count, err)
	}
}

// TestBigBatch appends a batch bigger than one txn for keys that exist and
// keys that do not.
func TestBigBatch(t *testing.T) {
	t.Parallel()
	_, cli := sharedEtcd(t)
	s := open(t, cli, newPrefix(t, cli))
	k1, _ := s.Create(t.Context(), testKey(1, "one"))
	k2, _ := s.Create(t.Context(), testKey(1, "two"))
	ghost := testKey(1, "ghost")
	t0 := time.Now()
	var batch []nkms.Activity
	for i := range 1000 {
		tag := []string{k1.Tag, k2.Tag, ghost.Tag}[i%3]
		batch = append(batch, nkms.Activity{Tag: tag, Time: t0.Add(time.Duration(i)), Action: "Encrypt", Message: fmt.Sprint(i)})
	}
	if err := s.AppendActivities(t.Context(), batch, 300); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*nkms.Key{k1, k2} {
		q := nkms.ActivityQuery{Tag: k.Tag, From: t0, To: t0.Add(time.Hour), PageNo: 2, PageSize: 100}
		page, total, err := s.Activities(t.Context(), q)
		if err != nil || total != 300 || len(page) != 100 {
			t.Fatalf("Activities page 2: %d entries of %d, err %v; want 100 of 300", len(page), total, err)
		}
	}
	if n, err := s.PruneActivities(t.Context(), t0.Add(time.Hour)); err != nil || n != 600 {
		t.Errorf("PruneActivities = %d, %v; want 600, nil", n, err)
	}
}

// TestSurvivesMemberLoss runs updates against a cluster of three while each
// member in turn (the leader among them) is killed and restarted.
func TestSurvivesMemberLoss(t *testing.T) {
	t.Parallel()
	c := etcdtest.Start(t, 3)
	s := open(t, c.Client(t), "/loss/")
	k, err := s.Create(t.Context(), testKey(1, "survivor"))
	if err != nil {
		t.Fatal(err)
	}
	inc := func(k *nkms.Key) error {
		n, err := strconv.Atoi(k.Memo)
		k.Memo = strconv.Itoa(n + 1)
		return err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	done := 0
	update := func() {
		// A write in flight when the leader dies may fail (or may have
		// committed): nkms returns it as an internal error; try again.
		for ctx.Err() == nil {
			before, err := s.Get(ctx, k.Tag)
			if err != nil {
				continue
			}
			if _, err := s.Update(ctx, k.Tag, inc); err == nil {
				done++
				return
			}
			if now, err := s.Get(ctx, k.Tag); err == nil && now.Memo != before.Memo {
				done++ // it committed after all
				return
			}
		}
		t.Fatalf("no update within 30s")
	}
	for i := range 3 {
		update()
		c.Kill(i)
		update()
		if err := c.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Get(ctx, k.Tag); err != nil || got.Memo != strconv.Itoa(done) {
		t.Errorf("counter %v, err %v; want %d", got, err, done)
	}
}
