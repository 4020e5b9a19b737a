package etcd

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/etcdtest"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/storetest"
)

// node is what one nkms node of a cluster reads through: a cache over its
// store that follows the changes of every store on the prefix.
type node struct {
	*cache.Store
	st *Store
	f  *Follower
}

// newNode returns a node on cli under prefix, as internal/server wires it.
func newNode(t *testing.T, cli *clientv3.Client, prefix string, opts Options) *node {
	t.Helper()
	opts.Client, opts.Prefix = cli, prefix
	st, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	n := &node{st: st}
	n.Store = cache.Following(st, 0, func(ctx context.Context) error { return n.f.CatchUp(ctx) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if n.f, err = st.Follow(ctx, Changes{Key: n.ForgetKey, AccessKey: n.ForgetAccessKey, All: n.ForgetAll}); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	return n
}

// TestConformanceFollowing runs the store suite through a following cache.
func TestConformanceFollowing(t *testing.T) {
	_, cli := sharedEtcd(t)
	storetest.Run(t, func(t *testing.T) nkms.Store {
		return newNode(t, cli, newPrefix(t, cli), Options{})
	})
}

// TestFollowingSeesOtherNodes changes keys and access keys through node A
// and reads them through node B right after A answered, with B's cache
// filled before each change: B sees every change on its very next read.
func TestFollowingSeesOtherNodes(t *testing.T) {
	t.Parallel()
	c, cli := sharedEtcd(t)
	prefix := newPrefix(t, cli)
	a, b := newNode(t, c.Client(t), prefix, Options{}), newNode(t, c.Client(t), prefix, Options{})
	ctx := context.Background()
	getB := func(tag string) *nkms.Key {
		t.Helper()
		k, err := b.Get(ctx, tag)
		if err != nil {
			t.Fatalf("B: get %s: %v", tag, err)
		}
		return k
	}
	for i := range 20 {
		k, err := a.Create(ctx, testKey(1, "fresh"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		getB(k.Tag)
		getB(k.Tag) // from B's cache
		if _, err := a.Update(ctx, k.Tag, func(k *nkms.Key) error { k.State = nkms.StateDisable; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := getB(k.Tag); got.State != nkms.StateDisable {
			t.Fatalf("round %d: B sees state %s right after A disabled the key", i, got.State)
		}
		if _, err := a.Update(ctx, k.Tag, func(k *nkms.Key) error {
			v := k.Versions[0]
			v.Number = 2
			k.Versions = append(k.Versions, v)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := getB(k.Tag); len(got.Versions) != 2 {
			t.Fatalf("round %d: B sees %d versions right after A added the second", i, len(got.Versions))
		}
		if err := a.Delete(ctx, k.Tag, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, k.Tag); !errors.Is(err, nkms.ErrKeyNotFound) {
			t.Fatalf("round %d: B reads a key A deleted: %v", i, err)
		}

		id := "AK" + k.Tag[:20]
		if _, err := b.GetAccessKey(ctx, id); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
			t.Fatalf("round %d: access key before A created it: %v", i, err)
		}
		ak := &nkms.AccessKey{ID: id, Keystore: 1, Role: nkms.RoleViewer, SealedSecret: []byte("sealed"), Created: time.Now()}
		if err := a.CreateAccessKey(ctx, ak); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second from B's cache
			if got, err := b.GetAccessKey(ctx, id); err != nil || got.Role != nkms.RoleViewer {
				t.Fatalf("round %d: B right after A created access key %s: %v, %v", i, id, got, err)
			}
		}
		ak.Role = nkms.RoleAdmin
		if err := a.PutAccessKey(ctx, ak); err != nil {
			t.Fatal(err)
		}
		if got, err := b.GetAccessKey(ctx, id); err != nil || got.Role != nkms.RoleAdmin {
			t.Fatalf("round %d: B right after A changed the role of %s: %v, %v", i, id, got, err)
		}
		if err := a.DeleteAccessKey(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.GetAccessKey(ctx, id); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
			t.Fatalf("round %d: B authenticates an access key A revoked: %v", i, err)
		}
	}
	if st := b.Stats(); st.KeyHits == 0 || st.AccessKeyHits == 0 {
		t.Errorf("B's cache served nothing: %+v", st)
	}
}

// TestReadScopeCatchesUpOnce: the reads of one scope share one catch-up.
func TestReadScopeCatchesUpOnce(t *testing.T) {
	t.Parallel()
	_, cli := sharedEtcd(t)
	n := newNode(t, cli, newPrefix(t, cli), Options{})
	ctx := context.Background()
	k, err := n.Create(ctx, testKey(1, "scoped"))
	if err != nil {
		t.Fatal(err)
	}
	before := n.f.Rounds()
	scoped := nkms.WithReadScope(ctx)
	for range 5 {
		if _, err := n.Get(scoped, k.Tag); err != nil {
			t.Fatal(err)
		}
		if _, err := n.GetAccessKey(scoped, "nobody"); !errors.Is(err, nkms.ErrAccessKeyNotFound) {
			t.Fatal(err)
		}
	}
	if got := n.f.Rounds() - before; got != 1 {
		t.Errorf("10 reads of one scope made %d quorum reads, want 1", got)
	}
	for range 3 {
		if _, err := n.Get(ctx, k.Tag); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.f.Rounds() - before; got != 4 {
		t.Errorf("after 3 reads outside a scope: %d quorum reads in all, want 4", got)
	}
}

// TestCatchUpCoalesces: CatchUps arriving together share quorum reads.
func TestCatchUpCoalesces(t *testing.T) {
	t.Parallel()
	_, cli := sharedEtcd(t)
	n := newNode(t, cli, newPrefix(t, cli), Options{})
	const goroutines, each = 32, 20
	before := n.f.Rounds()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := n.f.CatchUp(context.Background()); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d CatchUps failed", failed.Load())
	}
	rounds := n.f.Rounds() - before
	t.Logf("%d CatchUps, %d quorum reads", goroutines*each, rounds)
	if rounds >= goroutines*each {
		t.Errorf("%d CatchUps from %d goroutines made %d quorum reads: none shared", goroutines*each, goroutines, rounds)
	}
}

// TestUnavailableIsBounded: without an etcd quorum, reads and writes fail
// with ErrUnavailable (the API's 503) within the timeout instead of
// waiting, and work again when the quorum is back.
func TestUnavailableIsBounded(t *testing.T) {
	t.Parallel()
	ec := etcdtest.Start(t, 3)
	const timeout = 300 * time.Millisecond
	n := newNode(t, ec.Client(t), "/nkms/", Options{Timeout: timeout})
	ctx := context.Background()
	k, err := n.Create(ctx, testKey(1, "bounded"))
	if err != nil {
		t.Fatal(err)
	}
	ec.Kill(1)
	ec.Kill(2)
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := n.Get(ctx, k.Tag); return err }},
		{"get access key", func() error { _, err := n.GetAccessKey(ctx, "someone"); return err }},
		{"update", func() error {
			_, err := n.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Memo = "x"; return nil })
			return err
		}},
		{"create", func() error { _, err := n.Create(ctx, testKey(1, "other")); return err }},
		{"list", func() error { _, _, err := n.List(ctx, 1, 1, 10); return err }},
	} {
		start := time.Now()
		err := op.do()
		took := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || nkms.ErrorCode(err) != nkms.Unavailable {
			t.Errorf("%s without a quorum: %v (code %s), want ErrUnavailable", op.name, err, nkms.ErrorCode(err))
		}
		t.Logf("%s without a quorum failed after %v", op.name, took.Round(time.Millisecond))
	}
	for _, i := range []int{1, 2} {
		if err := ec.Restart(i); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := n.Get(ctx, k.Tag)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get with the quorum back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFollowerAfterCompaction: a follower whose watch resumes from a
// revision that etcd compacted away drops everything (it may have missed
// changes) and follows on from the current revision.
func TestFollowerAfterCompaction(t *testing.T) {
	t.Parallel()
	ec := etcdtest.Start(t, 1)
	cli := ec.Client(t)
	st := open(t, cli, "/nkms/")
	ctx := context.Background()
	start, err := (&Follower{s: st}).currentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k, err := st.Create(ctx, testKey(1, "compacted"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, k.Tag, func(k *nkms.Key) error { k.Memo = "changed"; return nil }); err != nil {
		t.Fatal(err)
	}
	now, err := (&Follower{s: st}).currentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	all := make(chan struct{}, 1)
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := newFollower(fctx, st, Changes{
		Key:       func(string) { t.Error("a change reported from compacted history") },
		AccessKey: func(string) {},
		All:       func() { all <- struct{}{} },
	})
	f.reported = start
	go f.watch(start) // as if the watch had broken at start and resumed after the compaction
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not drop everything after its history was compacted")
	}
	if err := f.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp after the compaction: %v", err)
	}
	if got := f.reportedRevision(); got < now {
		t.Errorf("follower at revision %d after the compaction at %d", got, now)
	}
}
