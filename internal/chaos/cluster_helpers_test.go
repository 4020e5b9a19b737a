package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/etcdtest"
	etcdstore "github.com/nkms/nkms/store/etcd"
)

// TestCluster's run: starting and killing nodes, fault windows, scheduler
// leaders from the logs, etcd's leader, and the report.

func newClRun(t *testing.T, ec *etcdtest.Cluster, seed uint64) *clRun {
	cli, err := clientv3.New(clientv3.Config{Endpoints: ec.Endpoints(), DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	st, err := etcdstore.Open(context.Background(), etcdstore.Options{Client: cli, Prefix: etcdstore.DefaultPrefix})
	if err != nil {
		t.Fatal(err)
	}
	return &clRun{
		t: t, etcd: ec, cli: cli, st: st, seed: seed,
		args: []string{"--store", "etcd", "--etcd-endpoints", strings.Join(ec.Endpoints(), ","),
			"--pending-deletion-window", clWindow.String(), "--scheduler-interval", clInterval.String()},
		keys: map[string]*clKey{}, extra: map[string]*clExtra{}, maybe: map[string]string{},
		tally: newTally(), checks: map[string]int{},
		purgedDue: map[string][2]time.Time{}, deletedNow: map[string]bool{}, extraArts: map[string][]artifact{},
	}
}

func (r *clRun) check1(kind string) { r.checkN(kind, 1) }

func (r *clRun) checkN(kind string, n int) {
	r.mu.Lock()
	r.checks[kind] += n
	r.mu.Unlock()
}

func (r *clRun) figure(format string, args ...any) {
	r.mu.Lock()
	r.figures = append(r.figures, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// startNodes starts node 0, gives its root key file to the data dirs of
// nodes 1 and 2 (mode 0600), and starts them.
func (r *clRun) startNodes() {
	base := r.t.TempDir()
	for i := range 3 {
		r.nodes = append(r.nodes, &clNode{idx: i, dir: filepath.Join(base, fmt.Sprintf("node%d", i))})
	}
	r.startNode(0)
	root, err := os.ReadFile(filepath.Join(r.nodes[0].dir, "root.key"))
	if err != nil {
		r.t.Fatal(err)
	}
	for _, n := range r.nodes[1:] {
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dir, "root.key"), root, 0o600); err != nil {
			r.t.Fatal(err)
		}
		r.startNode(n.idx)
	}
}

// startNode starts (or restarts) node i on its data dir. The process is
// killed when the whole test ends.
func (r *clRun) startNode(i int) {
	n := r.nodes[i]
	p := start(r.t, n.dir, credEnv, r.args...)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	c := adminClient(r.t, p, client.WithHTTPClient(&http.Client{
		Timeout: 20 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}))
	cp := &clProc{node: i, p: p, pid: p.Cmd.Process.Pid}
	r.nmu.Lock()
	n.cur, n.c, n.tr, n.up = cp, c, tr, true
	r.procs = append(r.procs, cp)
	r.nmu.Unlock()
}

// killNode SIGKILLs node i; the load stops sending to it first.
func (r *clRun) killNode(i int) time.Time {
	r.nmu.Lock()
	n := r.nodes[i]
	n.up = false
	cp := n.cur
	cp.killed = time.Now()
	at := cp.killed
	r.nmu.Unlock()
	cp.p.Kill()
	n.tr.CloseIdleConnections()
	return at
}

// pickNode returns the next running node in turn (skipping not), or -1.
func (r *clRun) pickNode(not ...int) (int, *client.Client) {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	for range len(r.nodes) {
		i := int(r.rr.Add(1) % uint64(len(r.nodes)))
		if n := r.nodes[i]; n.up && !slices.Contains(not, i) {
			return i, n.c
		}
	}
	return -1, nil
}

func (r *clRun) nodeURL(i int) string {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	return r.nodes[i].cur.p.URL
}

// makeRotationDue moves the rotation base of an auto-rotating key in etcd so
// that its rotation falls due at due (periods are whole days: a test cannot
// wait for one).
func (r *clRun) makeRotationDue(tag string, due time.Time) error {
	_, err := r.st.Update(context.Background(), tag, func(k *nkms.Key) error {
		if !k.AutoRotation {
			return fmt.Errorf("key %s has no auto rotation", tag)
		}
		k.RotationBase = due.Add(-time.Duration(k.RotationPeriod) * 24 * time.Hour)
		return nil
	})
	return err
}

func (r *clRun) nodeClient(i int) *client.Client {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	return r.nodes[i].c
}

func (r *clRun) allProcs() []*clProc {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	return slices.Clone(r.procs)
}

func (r *clRun) openFault(name string) *clFault {
	f := &clFault{name: name, from: time.Now()}
	r.nmu.Lock()
	r.faults = append(r.faults, f)
	r.nmu.Unlock()
	return f
}

func (r *clRun) closeFault(f *clFault) {
	r.nmu.Lock()
	f.to = time.Now().Add(clGrace)
	r.nmu.Unlock()
}

func (r *clRun) openGap(from time.Time) *clGap {
	g := &clGap{from: from}
	r.nmu.Lock()
	r.gaps = append(r.gaps, g)
	r.nmu.Unlock()
	return g
}

func (r *clRun) closeGap(g *clGap, to time.Time) {
	r.nmu.Lock()
	g.to = to
	r.nmu.Unlock()
}

// deadline is when a key due at due must be gone: two scheduler intervals
// and some slack after it is due, or after the end of a time without a
// leader that began before then.
func (r *clRun) deadline(due time.Time) time.Time {
	from := due
	for _, g := range r.allGaps() {
		to := g.to
		if to.IsZero() { // no leader yet: not overdue before one comes
			to = time.Now().Add(clTakeoverMax)
		}
		if g.from.Before(from.Add(2*clInterval+clSlack)) && to.After(from) {
			from = to
		}
	}
	return from.Add(2*clInterval + clSlack)
}

// allGaps returns the times without a working scheduler, in order: those
// the test caused (a leader's death, the loss of quorum) and those the
// nodes' logs show (no term open).
func (r *clRun) allGaps() []clGap {
	r.nmu.Lock()
	var gaps []clGap
	for _, g := range r.gaps {
		gaps = append(gaps, *g)
	}
	r.nmu.Unlock()
	terms := r.terms()
	if len(terms) > 0 {
		covered := terms[0].from
		for _, tm := range terms {
			if tm.from.After(covered) {
				gaps = append(gaps, clGap{covered, tm.from})
			}
			if tm.to.IsZero() {
				covered = time.Time{}
				break
			}
			if tm.to.After(covered) {
				covered = tm.to
			}
		}
		if !covered.IsZero() {
			gaps = append(gaps, clGap{from: covered}) // open: no node leads now
		}
	}
	slices.SortFunc(gaps, func(a, b clGap) int { return a.from.Compare(b.from) })
	return gaps
}

// inFault reports whether a failed request overlaps a fault window, and
// counts it there.
func (r *clRun) inFault(sent, answered time.Time, transport bool, what string) bool {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	in := false
	for _, f := range r.faults {
		if !f.overlaps(sent, answered) {
			continue
		}
		in = true
		if transport {
			f.transport++
		} else {
			f.http++
		}
		if len(f.samples) < 3 {
			f.samples = append(f.samples, what)
		}
	}
	return in
}

func (r *clRun) countRequest(sent time.Time) {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	for _, f := range r.faults {
		if f.covers(sent) {
			f.requests++
		}
	}
}

// classify counts one answer of the load. A 5xx or no answer is uncertain
// for the model, and an error of the test outside a fault window.
func (r *clRun) classify(op string, node int, sent time.Time, err error) (outcome, *client.Error) {
	now := time.Now()
	r.countRequest(sent)
	var ce *client.Error
	out := acked
	switch {
	case err == nil:
	case errors.As(err, &ce) && ce.Status >= 500:
		out = uncertain
	case ce != nil:
		out = refused
	default:
		out = uncertain
	}
	if out == uncertain {
		what := fmt.Sprintf("%s on node %d at %s: %v", op, node, sent.Format(time.StampMilli), err)
		if !r.inFault(sent, now, ce == nil, what) {
			r.t.Errorf("%s, outside any fault window", what)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count(op, out)
	return out, ce
}

// terms returns every node's leadership terms, in order of their start.
func (r *clRun) terms() []clTerm {
	var out []clTerm
	for _, cp := range r.allProcs() {
		r.nmu.Lock()
		killed := cp.killed
		r.nmu.Unlock()
		var open *clTerm
		for _, l := range cp.scan() {
			switch l.msg {
			case msgLeading:
				if open != nil { // checkLogs reports it
					open.to = l.at
					out = append(out, *open)
				}
				open = &clTerm{cp: cp, from: l.at}
			case msgLost:
				if open != nil {
					open.to = l.at
					out = append(out, *open)
					open = nil
				}
			}
		}
		if open != nil {
			open.to = killed
			out = append(out, *open)
		}
	}
	slices.SortFunc(out, func(a, b clTerm) int { return a.from.Compare(b.from) })
	return out
}

// leader returns the current term: the latest one still open, nil if none.
func (r *clRun) leader() *clTerm {
	ts := r.terms()
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].to.IsZero() {
			return &ts[i]
		}
	}
	return nil
}

// currentLeader waits up to timeout for an open term and returns it.
func (r *clRun) currentLeader(timeout time.Duration) *clTerm {
	deadline := time.Now().Add(timeout)
	for {
		if lt := r.leader(); lt != nil || time.Now().After(deadline) {
			return lt
		}
		time.Sleep(100 * time.Millisecond) // a log line of another process: nothing else to wait on
	}
}

// waitLeader waits for a term begun at or after since by a process other
// than not.
func (r *clRun) waitLeader(since time.Time, not *clProc, timeout time.Duration) (*clTerm, bool) {
	deadline := time.Now().Add(timeout)
	for {
		ts := r.terms()
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].cp != not && !ts[i].from.Before(since.Truncate(time.Millisecond)) {
				return &ts[i], true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(100 * time.Millisecond) // a log line of another process: nothing else to wait on
	}
}

// etcdLeader returns the index of the etcd member that leads the raft group.
func (r *clRun) etcdLeader(t *testing.T) int {
	cli := r.cli
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, ep := range r.etcd.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err == nil && st.Header.MemberId == st.Leader {
			return i
		}
	}
	t.Log("no etcd member says it leads; killing member 0")
	return 0
}

// monitorEtcd watches the raft term of the etcd cluster until stop is
// called: an election that the test did not cause (a loaded machine can miss
// heartbeats) opens a fault window, since the requests it interrupts may fail.
func (r *clRun) monitorEtcd() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var term uint64
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var now uint64
			for _, ep := range r.etcd.Endpoints() {
				if st, err := r.cli.Status(ctx, ep); err == nil && st.RaftTerm > now {
					now = st.RaftTerm
				}
			}
			cancel()
			at := time.Now()
			if term != 0 && now > term {
				r.nmu.Lock()
				caused := false
				for _, f := range r.faults {
					if f.covers(last) || f.covers(at) {
						caused = true
					}
				}
				if !caused {
					r.faults = append(r.faults, &clFault{name: fmt.Sprintf("etcd election the test did not cause (raft term %d → %d)", term, now),
						from: last, to: at.Add(clEtcdReqTimeout + time.Second)})
				}
				r.nmu.Unlock()
			}
			term = max(term, now)
			last = at
		}
	})
	return func() { close(done); wg.Wait() }
}

// ---- The load ----

// startLoad runs the workers until the returned stop is called.
func (r *clRun) startLoad() (stop func()) {
	ctx := context.Background()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range clWorkers {
		rng := rand.New(rand.NewPCG(r.seed, uint64(w+1)))
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				r.step(ctx, rng)
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			r.watchers.Wait()
		})
	}
}

// listAll reads every page of the key list on one node.
func (r *clRun) listAll(t *testing.T, c *client.Client, node int) map[string]client.KeySummary {
	out := map[string]client.KeySummary{}
	for page := 1; ; page++ {
		l, err := c.ListKeys(context.Background(), page, 200)
		if err != nil {
			t.Errorf("key list page %d on node %d: %v", page, node, err)
			return out
		}
		for _, s := range l.KeyList {
			if _, dup := out[s.KeyTag]; dup {
				t.Errorf("key %s listed twice on node %d", s.KeyTag, node)
			}
			out[s.KeyTag] = s
		}
		if page >= l.TotalPageNo {
			return out
		}
	}
}

// decryptAll decrypts arts of key tag on node c in batches and checks the
// plaintexts; it returns how many were checked.
func (r *clRun) decryptAll(t *testing.T, c *client.Client, node int, tag string, arts []artifact) int {
	n := 0
	for batch := range slices.Chunk(arts, nkms.MaxItems) {
		cts := make([]string, len(batch))
		for i, a := range batch {
			cts[i] = a.text
		}
		pts, err := c.DecryptMany(context.Background(), tag, cts, nil)
		if err != nil {
			vs := map[int]bool{}
			for _, a := range batch {
				vs[a.version] = true
			}
			t.Errorf("acknowledged ciphertexts of %s (versions %v) do not decrypt on node %d: %v", tag, slices.Sorted(maps.Keys(vs)), node, err)
			continue
		}
		for i, a := range batch {
			if string(pts[i]) != string(a.msg) {
				t.Errorf("acknowledged v%d ciphertext of %s decrypts on node %d to %x, want %x", a.version, tag, node, pts[i], a.msg)
			}
			n++
		}
	}
	return n
}

// report logs the figures of the run.
func (r *clRun) report(took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	ops := []string{opCreate, opRotate, opDelete, opCancel, opEnable, opDisable, opEncrypt, opDecrypt}
	fmt.Fprintf(&b, "cluster: 3 etcd members, 3 nkms nodes, %d workers, seed %d; %v in all\n", clWorkers, r.seed, took.Round(100*time.Millisecond))
	r.tally.write(&b, ops)
	r.nmu.Lock()
	for _, f := range r.faults {
		fmt.Fprintf(&b, "  fault %q, window %v: %d requests of the load sent, %d failed (%d without an answer, %d HTTP 5xx)",
			f.name, f.to.Sub(f.from).Round(10*time.Millisecond), f.requests, f.transport+f.http, f.transport, f.http)
		if len(f.samples) > 0 {
			fmt.Fprintf(&b, "; e.g. %s", strings.Join(f.samples, " | "))
		}
		b.WriteString("\n")
	}
	r.nmu.Unlock()
	if len(r.watchLat) > 0 {
		lat := slices.Sorted(slices.Values(r.watchLat))
		fmt.Fprintf(&b, "  watched keys (%d): gone %v to %v after their destroyDate\n", len(lat), lat[0].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "  uncertain creates found later %d, never found %d\n", r.adopted, len(r.maybe))
	for _, f := range r.figures {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	writeChecks(&b, r.checks)
	r.t.Log(b.String())
}

func asClientError(err error, ce **client.Error) bool { return errors.As(err, ce) }

// millis formats a nullable Unix-milliseconds time.
func millis(p *int64) string {
	if p == nil {
		return "null"
	}
	return time.UnixMilli(*p).Format(time.StampMilli)
}
