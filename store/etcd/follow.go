package etcd

// Following the changes of the other nodes, so that a node can answer key
// and access-key reads from memory and still be linearizable.
//
// Every txn that writes a key record or an access key puts meta/changes in
// the same txn, its value naming what changed ("k/<tag>", "a/<id>"). So the
// mod revision of meta/changes is the revision of the latest such write,
// and a watch of that one row sees every one of them, in order. A Follower
// watches it and reports each change (to store/cache, which drops its copy);
// CatchUp makes sure that every change committed before it was called has
// been reported: it learns the mod revision of meta/changes by a quorum read
// and waits until the watch has reported up to it.
//
// The quorum reads are coalesced the way etcd batches ReadIndex: a CatchUp
// that arrives while fewer than maxRounds reads are in flight starts one at
// once; otherwise it joins the one read that will start next, which every
// CatchUp arriving meanwhile shares, so under load one read serves many
// requests. A read that started before a CatchUp arrived is never shared
// with it: it might miss a change completed just before the arrival.
//
// The watch resumes where it stopped after a lost connection or a lost
// leader. If etcd compacted the revisions it missed, the Follower tells its
// user to forget everything (which keeps reads that began before from
// filling a cache) and goes on from the current revision.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxRounds bounds the quorum reads of CatchUp in flight at once.
const maxRounds = 1

// changesKey is the row that every write of a key or an access key puts.
func (s *Store) changesKey() string { return s.prefix + "meta/changes" }

// keyChanged is the op that a txn writing the key with tag adds.
func (s *Store) keyChanged(tag string) clientv3.Op { return clientv3.OpPut(s.changesKey(), "k/"+tag) }

// accessKeyChanged is the op that a txn writing access key id adds.
func (s *Store) accessKeyChanged(id string) clientv3.Op {
	return clientv3.OpPut(s.changesKey(), "a/"+id)
}

// Changes receives what a Follower learns. The functions are called from
// one goroutine, in the order of the changes.
type Changes struct {
	Key       func(tag string) // the key with tag changed
	AccessKey func(id string)  // the access key id changed
	All       func()           // anything may have changed
}

// Follower reports the changes to keys and access keys made through any
// store on its prefix, and makes sure a reader has heard of every change
// committed before it reads (CatchUp).
type Follower struct {
	s       *Store
	changes Changes
	ctx     context.Context // the follower's life

	mu       sync.Mutex
	reported int64         // every change at or below this revision was reported
	advanced chan struct{} // closed (and replaced) when reported grows
	inFlight int           // quorum reads in flight
	next     *round        // the read that starts next, once one in flight ends

	rounds atomic.Uint64 // quorum reads of CatchUp so far

	rangeKV      pb.KVClient      // the client's connection, without clientv3's wrapping
	changesRange *pb.RangeRequest // of CatchUp's quorum read; never changed
}

// round is one quorum read that several CatchUps share.
type round struct {
	done chan struct{}
	err  error
	// expired is closed the store's timeout after the round was made: its
	// CatchUps, which all joined it since, give up then. One timer per round
	// rather than per CatchUp: under load a round serves many.
	expired chan struct{}
	timer   *time.Timer
}

// Follow starts following the changes on s's prefix until ctx ends; it
// reports them to changes. It fails if etcd does not answer.
func (s *Store) Follow(ctx context.Context, changes Changes) (*Follower, error) {
	f := newFollower(ctx, s, changes)
	rev, err := f.currentRevision(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd store: follow changes: %w", err)
	}
	f.reported = rev
	go f.watch(rev)
	return f, nil
}

// newFollower returns a follower of s's changes, not started.
func newFollower(ctx context.Context, s *Store, changes Changes) *Follower {
	return &Follower{s: s, changes: changes, ctx: ctx, advanced: make(chan struct{}),
		rangeKV:      pb.NewKVClient(s.client.ActiveConnection()),
		changesRange: &pb.RangeRequest{Key: []byte(s.changesKey()), KeysOnly: true}}
}

// currentRevision reads meta/changes from a quorum and returns the store's
// revision then: every change up to it is in etcd's history from there on.
func (f *Follower) currentRevision(ctx context.Context) (int64, error) {
	resp, err := f.s.kv.Get(ctx, f.s.changesKey(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// watch reports the changes after revision from until the follower's life
// ends, resuming the watch when it breaks.
func (f *Follower) watch(from int64) {
	log := f.s.log
	for f.ctx.Err() == nil {
		err := f.watchOnce(from)
		if f.ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			// Changes were compacted away before they were seen: forget
			// everything, then go on from now. Forgetting after reading the
			// revision keeps any read older than it from filling a cache.
			log.Warn("etcd: changes compacted before this node saw them; dropping its caches", "after", f.reportedRevision())
			rev, err := f.currentRevision(f.ctx)
			if err != nil {
				log.Warn("etcd: follow changes", "err", err)
				sleep(f.ctx, 100*time.Millisecond) //nolint:errcheck // the loop checks ctx
				continue
			}
			f.changes.All()
			f.report(rev)
			from = rev
			continue
		}
		log.Warn("etcd: watch of changes broke; resuming", "err", err, "after", f.reportedRevision())
		from = f.reportedRevision()
		sleep(f.ctx, 100*time.Millisecond) //nolint:errcheck // the loop checks ctx
	}
}

// watchOnce watches meta/changes after revision from and reports what it
// sees, until the watch breaks.
func (f *Follower) watchOnce(from int64) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(f.ctx))
	defer cancel()
	for resp := range f.s.client.Watch(ctx, f.s.changesKey(), clientv3.WithRev(from+1)) {
		if err := resp.Err(); err != nil {
			return err
		}
		var last int64
		for _, ev := range resp.Events {
			v := string(ev.Kv.Value)
			switch {
			case strings.HasPrefix(v, "k/"):
				f.changes.Key(v[2:])
			case strings.HasPrefix(v, "a/"):
				f.changes.AccessKey(v[2:])
			case v != "":
				f.changes.All() // unknown: be safe
			}
			last = ev.Kv.ModRevision
		}
		if last > 0 {
			f.report(last)
		}
	}
	return errors.New("watch closed")
}

// report records that every change up to rev was reported.
func (f *Follower) report(rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev > f.reported {
		f.reported = rev
		close(f.advanced)
		f.advanced = make(chan struct{})
	}
}

func (f *Follower) reportedRevision() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reported
}

// CatchUp returns once every change committed through any store on the
// prefix before it was called has been reported, or ErrUnavailable (wrapped)
// when etcd does not say within the store's timeout.
func (f *Follower) CatchUp(ctx context.Context) error {
	r := f.join()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.expired:
		return fmt.Errorf("etcd store: catch up with the cluster: %w", ErrUnavailable)
	}
}

// join returns the round that the caller waits for: a new one, started at
// once, if fewer than maxRounds are in flight; else the one to start next.
func (f *Follower) join() *round {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next != nil {
		return f.next
	}
	r := &round{done: make(chan struct{}), expired: make(chan struct{})}
	r.timer = time.AfterFunc(f.s.timeout, func() { close(r.expired) })
	if f.inFlight < maxRounds {
		f.inFlight++
		go f.run(r)
	} else {
		f.next = r
	}
	return r
}

// Rounds returns how many quorum reads CatchUp made so far (each shared by
// the CatchUps that waited for it).
func (f *Follower) Rounds() uint64 { return f.rounds.Load() }

// run does round r, then the rounds that were waiting for a slot.
func (f *Follower) run(r *round) {
	for r != nil {
		f.rounds.Add(1)
		r.err = f.catchUpOnce()
		r.timer.Stop()
		close(r.done)
		f.mu.Lock()
		r, f.next = f.next, nil
		if r == nil {
			f.inFlight--
		}
		f.mu.Unlock()
	}
}

// catchUpOnce reads the mod revision of meta/changes from a quorum and waits
// until the watch has reported up to it.
func (f *Follower) catchUpOnce() error {
	want, err := f.changesRevision()
	if err != nil {
		return fmt.Errorf("etcd store: catch up with the cluster: %w", err)
	}
	f.mu.Lock()
	reported := f.reported
	f.mu.Unlock()
	if reported >= want {
		return nil
	}
	// The wait for the watch has the store's timeout again.
	ctx, cancel := context.WithTimeout(f.ctx, f.s.timeout)
	defer cancel()
	for {
		f.mu.Lock()
		reported, advanced := f.reported, f.advanced
		f.mu.Unlock()
		if reported >= want {
			return nil
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return fmt.Errorf("etcd store: catch up with the cluster: the watch is at revision %d, not %d: %w",
				reported, want, ErrUnavailable)
		}
	}
}

// changesRevision reads the mod revision of meta/changes (0 if it is not
// there) by a linearizable read: a Range of the one row, keys only, sent as
// it is (the same request every time) under the store's timeout, whose expiry
// is ErrUnavailable.
func (f *Follower) changesRevision() (int64, error) {
	ctx, cancel := context.WithTimeout(f.ctx, f.s.timeout)
	defer cancel()
	resp, err := f.rangeKV.Range(ctx, f.changesRange)
	if err != nil {
		return 0, unavailable(f.ctx, rpctypes.Error(err))
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}
