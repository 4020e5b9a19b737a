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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/etcdtest"
	etcdstore "github.com/nkms/nkms/store/etcd"
)

// The plumbing of TestCluster: three nkms nodes on one etcd cluster, their
// logs (leader elections, destructions, errors), fault windows, and a model
// of what the nodes acknowledged under a mixed load sent to all of them. The
// model imitates TestCrashLoop's (crashloop_helpers_test.go) and reuses its
// names: only 2xx answers are facts; a request answered 5xx or not at all is
// uncertain, and allowed only inside a fault window.

const (
	clWindow      = 3 * time.Second        // --pending-deletion-window
	clInterval    = 200 * time.Millisecond // --scheduler-interval
	clSlack       = 2 * time.Second        // a loaded machine's delay of a scheduler pass, an etcd election
	clTakeoverMax = 10 * time.Second       // a dead leader's successor logs `etcd: leading` within this
	clGrace       = 2 * time.Second        // a fault window stays open this long after the recovery
	clWorkers     = 6
	// clEtcdReqTimeout is how long an etcd member keeps a request that its
	// raft leader's death left without an answer: 5s plus two election
	// timeouts (etcdtest runs members with --election-timeout=500).
	clEtcdReqTimeout = 6 * time.Second
	// clLostLines: a node writes its log at most 100ms late (logbuffer.go);
	// a SIGKILLed leader may take the destruction lines of the keys due in
	// this long before its death with it.
	clLostLines = 1500 * time.Millisecond
	// clOverlap is how long two nodes may both believe they lead: the old
	// one notices a lost lease only when its client's keep-alive deadline
	// passes.
	clOverlap = time.Second
)

// Log messages of the server that the checks read (store/etcd/cluster.go, scheduler.go, service.go).
const (
	msgLeading   = "etcd: leading"
	msgLost      = "etcd: leadership lost"
	msgPurged    = "key destroyed after pending-deletion window"
	msgDeleteNow = "key destroyed"
	msgRotated   = "key auto-rotated"
)

// clNode is one nkms node: a data dir that outlives its processes.
type clNode struct {
	idx int
	dir string
	cur *clProc // the running process, or the last one
	c   *client.Client
	tr  *http.Transport
	up  bool
}

// clProc is one process of a node and what its log says.
type clProc struct {
	node   int
	p      *proc
	pid    int
	killed time.Time // zero while it runs (guarded by clRun.nmu)

	mu    sync.Mutex
	off   int      // bytes of the log scanned
	lines []clLine // the lines the checks read
}

// clLine is one interesting log line.
type clLine struct {
	at    time.Time
	level string
	msg   string
	tag   string // keyTag=
	node  string // node=
	raw   string
}

var (
	clLineRE = regexp.MustCompile(`^time=(\S+) level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S*)(.*)$`)
	clTagRE  = regexp.MustCompile(` keyTag=([0-9A-Za-z]+)`)
	clNodeRE = regexp.MustCompile(` node="?([^"\s]+)`)
)

// scan reads the log lines written since the last scan and returns all
// interesting lines so far: every line but the request log and INFO lines
// other than elections and destructions.
func (cp *clProc) scan() []clLine {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	s := cp.p.stderr.String()
	end := strings.LastIndexByte(s, '\n') + 1
	if end > cp.off {
		for _, l := range strings.Split(s[cp.off:end-1], "\n") {
			if !strings.HasPrefix(l, "time=") || strings.Contains(l, " msg=request ") {
				continue
			}
			m := clLineRE.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			msg := m[3]
			if u, err := strconv.Unquote(msg); err == nil {
				msg = u
			}
			if m[2] == "INFO" && msg != msgLeading && msg != msgPurged && msg != msgDeleteNow && msg != msgRotated {
				continue
			}
			ln := clLine{at: at, level: m[2], msg: msg, raw: l}
			if t := clTagRE.FindStringSubmatch(m[4]); t != nil {
				ln.tag = strings.ToLower(t[1])
			}
			if n := clNodeRE.FindStringSubmatch(m[4]); n != nil {
				ln.node = n[1]
			}
			cp.lines = append(cp.lines, ln)
		}
		cp.off = end
	}
	return slices.Clone(cp.lines)
}

// clFault is a window in which requests may fail: from just before a fault
// until clGrace after the recovery.
type clFault struct {
	name            string
	from, to        time.Time // to is zero while the fault lasts
	requests        int       // requests of the load sent in the window
	transport, http int       // of them, answered by no one, answered 5xx
	samples         []string
}

func (f *clFault) covers(t time.Time) bool {
	return !t.Before(f.from) && (f.to.IsZero() || !t.After(f.to))
}

func (f *clFault) overlaps(sent, answered time.Time) bool {
	return !answered.Before(f.from) && (f.to.IsZero() || !sent.After(f.to))
}

// clGap is a time without a scheduler leader: from the leader's death (or
// the loss of quorum) until a successor leads.
type clGap struct{ from, to time.Time }

// clTerm is one node's leadership, from its `etcd: leading` line to its
// `etcd: leadership lost` line or its death (to is zero while it lasts).
type clTerm struct {
	cp       *clProc
	from, to time.Time
}

// clKey is what the model knows of one key of the load.
type clKey struct {
	tag, name, typ string
	lifeState
	busy           bool // a worker has a state operation in flight
	reserved       bool // a watcher polls it: the workers leave it alone
	stateOps       int  // state operations started on it
	minVer, maxVer int  // acknowledged versions; acknowledged + uncertain rotations
	arts           []artifact
	gone           bool // answered 404 once it could be destroyed
}

// dueRange returns the earliest and latest destroyDate the key may have,
// and false when it cannot be pending deletion.
func (k *clKey) dueRange() (earliest, latest time.Time, ok bool) {
	if k.state == stRevoke {
		return k.destroyAt, k.destroyAt, true
	}
	if p := k.pending; p != nil {
		if next, allowed := lifecycle(k.state, p.op); allowed && next == stRevoke {
			// The server stamps the request between sending and the failure.
			return p.sent.Truncate(time.Millisecond).Add(clWindow), p.ended.Add(clWindow), true
		}
	}
	return time.Time{}, time.Time{}, false
}

// clSnap is a key as a request found it when it was sent.
type clSnap struct {
	state     string
	steady    bool // no state operation in flight or uncertain
	ops       int
	minVer    int
	destroyAt time.Time
}

func (k *clKey) snap() clSnap {
	return clSnap{k.state, !k.busy && k.pending == nil, k.stateOps, k.minVer, k.destroyAt}
}

// still reports whether the key's state was certain and unchanged from s
// until now: then a crypto answer must match it exactly.
func (k *clKey) still(s clSnap) bool {
	return s.steady && !k.busy && k.pending == nil && k.stateOps == s.ops
}

// clExtra is a key created outside the load, by a check.
type clExtra struct {
	phase string
	gone  bool
}

// clAuto is a key with auto rotation that the test made due.
type clAuto struct {
	tag string
	due time.Time
	art artifact // a version 1 ciphertext
}

// clRun is TestCluster's state.
type clRun struct {
	t    *testing.T // the top-level test: background goroutines report here
	etcd *etcdtest.Cluster
	cli  *clientv3.Client
	st   *etcdstore.Store // the test's own view of the nodes' etcd prefix
	args []string
	seed uint64

	nmu    sync.Mutex // nodes, procs, faults, gaps, kills
	nodes  []*clNode
	procs  []*clProc
	faults []*clFault
	gaps   []*clGap
	rr     atomic.Uint64

	mu         sync.Mutex // the model and the figures
	keys       map[string]*clKey
	order      []*clKey
	extra      map[string]*clExtra
	maybe      map[string]string // name → key type of creates whose answer was lost
	names      int
	acked      map[string]int
	refused    map[string]int
	unsure     map[string]int
	checks     map[string]int
	revokes    int
	adopted    int
	watchers   sync.WaitGroup
	nWatched   int
	watchLat   []time.Duration // destroyDate → first 404 of the watched keys
	purgedDue  map[string][2]time.Time
	autos      []clAuto
	deletedNow map[string]bool
	extraArts  map[string][]artifact // acknowledged ciphertexts of extra keys
	figures    []string
}

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
		acked: map[string]int{}, refused: map[string]int{}, unsure: map[string]int{}, checks: map[string]int{},
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
	c, err := client.New(p.url, testAccessKey, testSecretKey, client.WithHTTPClient(&http.Client{
		Timeout: 20 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}))
	if err != nil {
		r.t.Fatal(err)
	}
	cp := &clProc{node: i, p: p, pid: p.cmd.Process.Pid}
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
	cp.p.cmd.Process.Signal(syscall.SIGKILL)
	<-cp.p.done
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
	return r.nodes[i].cur.p.url
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
	switch out {
	case acked:
		r.acked[op]++
	case refused:
		r.refused[op]++
	default:
		r.unsure[op]++
	}
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

// step sends one random operation to the next node.
func (r *clRun) step(ctx context.Context, rng *rand.Rand) {
	node, c := r.pickNode()
	if c == nil {
		time.Sleep(10 * time.Millisecond)
		return
	}
	r.mu.Lock()
	usable, all := 0, 0
	for _, k := range r.order {
		if k.gone {
			continue
		}
		all++
		if k.state != stRevoke {
			usable++
		}
	}
	r.mu.Unlock()
	op := pickOp(rng, loadMix(usable, all, 3, 2, 2))
	switch op {
	case opCreate:
		r.create(ctx, c, node, rng)
	case opRotate:
		r.rotate(ctx, c, node, rng)
	case opEncrypt:
		r.encrypt(ctx, c, node, rng)
	case opDecrypt:
		r.decrypt(ctx, c, node, rng)
	default:
		r.stateOp(ctx, c, node, rng, op)
	}
}

// pick returns a random key for which ok holds, preferring (with
// probability prefer) one for which good holds; nil if there is none.
// exclusive skips keys with a state operation in flight or uncertain. The
// caller holds r.mu.
func (r *clRun) pick(rng *rand.Rand, prefer float64, ok, good func(*clKey) bool, exclusive bool) *clKey {
	var all, pref []*clKey
	for _, k := range r.order {
		if k.gone || k.reserved || !ok(k) || (exclusive && (k.busy || k.pending != nil)) {
			continue
		}
		all = append(all, k)
		if good(k) {
			pref = append(pref, k)
		}
	}
	if len(pref) > 0 && rng.Float64() < prefer {
		return pref[rng.IntN(len(pref))]
	}
	if len(all) == 0 {
		return nil
	}
	return all[rng.IntN(len(all))]
}

func clAny(*clKey) bool       { return true }
func clEnabled(k *clKey) bool { return k.state == stEnable }
func clHasArts(k *clKey) bool { return len(k.arts) > 0 }

// notFound accepts a 404 for k if the key may have been destroyed by now.
// The caller holds r.mu.
func (r *clRun) notFound(k *clKey, what string, node int, now time.Time) {
	if earliest, _, ok := k.dueRange(); ok && !now.Before(earliest) {
		k.gone = true
		return
	}
	r.t.Errorf("%s on node %d: 404 for key %s at %s; the model has %s", what, node, k.tag, now.Format(time.StampMilli), k.describe())
}

// cryptoRefused checks the refusal of a rotation or a crypto request. The
// caller holds r.mu.
func (r *clRun) cryptoRefused(k *clKey, s clSnap, op string, node int, ce *client.Error, now time.Time) {
	switch {
	case isCode(ce, 422, "UNPROCESSABLE_ENTITY"):
		if k.still(s) && s.state == stEnable {
			r.t.Errorf("%s with the ENABLE key %s on node %d refused (%v) while no state operation ran: a stale state", op, k.tag, node, ce)
		}
		r.checks["crypto refusal matches the state"]++
	case isCode(ce, 404, "NOT_FOUND"):
		r.notFound(k, op, node, now)
	default:
		r.t.Errorf("%s with %s key %s on node %d: %v", op, k.typ, k.tag, node, ce)
	}
}

// cryptoAcked checks that a key could do crypto. The caller holds r.mu.
func (r *clRun) cryptoAcked(k *clKey, s clSnap, op string, node int) {
	if k.still(s) && s.state != stEnable {
		r.t.Errorf("%s with the %s key %s on node %d succeeded while no state operation ran: a stale state", op, s.state, k.tag, node)
	}
}

func (r *clRun) create(ctx context.Context, c *client.Client, node int, rng *rand.Rand) {
	typ := "AES256"
	if rng.IntN(10) == 0 {
		typ = "RSA2048"
	}
	r.mu.Lock()
	r.names++
	name := "cl" + strconv.Itoa(r.names)
	r.mu.Unlock()
	sent := time.Now()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: typ})
	out, ce := r.classify(opCreate, node, sent, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		if k.KeyName != name || k.KeyType != typ || k.Status != stEnable || len(k.KeyTag) != 64 || r.keys[k.KeyTag] != nil {
			r.t.Errorf("create %s %s on node %d answered %+v", name, typ, node, k)
			return
		}
		m := &clKey{tag: k.KeyTag, name: name, typ: typ, lifeState: lifeState{state: stEnable}, minVer: 1, maxVer: 1}
		r.keys[m.tag] = m
		r.order = append(r.order, m)
	case refused:
		r.t.Errorf("create %s %s on node %d: %v", name, typ, node, ce)
	case uncertain:
		r.maybe[name] = typ
	}
}

func (r *clRun) rotate(ctx context.Context, c *client.Client, node int, rng *rand.Rand) {
	r.mu.Lock()
	k := r.pick(rng, 0.9, clAny, clEnabled, false)
	if k == nil {
		r.mu.Unlock()
		return
	}
	s := k.snap()
	k.maxVer++ // counted before it is sent: it may land before another rotation's answer comes
	r.mu.Unlock()
	sent := time.Now()
	rot, err := c.Rotate(ctx, k.tag)
	out, ce := r.classify(opRotate, node, sent, err)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		r.cryptoAcked(k, s, opRotate, node)
		if rot.Version <= s.minVer || rot.Version > k.maxVer {
			r.t.Errorf("rotate %s on node %d answered version %d; version %d was acknowledged before it was sent, at most %d could exist",
				k.tag, node, rot.Version, s.minVer, k.maxVer)
		}
		r.checks["version after every acknowledged one"]++
		k.minVer = max(k.minVer, rot.Version)
	case refused:
		k.maxVer--
		r.cryptoRefused(k, s, opRotate, node, ce, now)
	}
}

func (r *clRun) encrypt(ctx context.Context, c *client.Client, node int, rng *rand.Rand) {
	r.mu.Lock()
	k := r.pick(rng, 0.9, clAny, clEnabled, false)
	if k == nil {
		r.mu.Unlock()
		return
	}
	s := k.snap()
	r.mu.Unlock()
	msg := make([]byte, 1+rng.IntN(48))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	sent := time.Now()
	text, err := c.Encrypt(ctx, k.tag, msg, nil)
	out, ce := r.classify(opEncrypt, node, sent, err)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		r.cryptoAcked(k, s, opEncrypt, node)
		v := versionOf(text)
		if v < s.minVer || v > k.maxVer {
			r.t.Errorf("encrypt with %s on node %d used version %d; version %d was acknowledged before it was sent, at most %d could exist",
				k.tag, node, v, s.minVer, k.maxVer)
			return
		}
		r.checks["version after every acknowledged one"]++
		k.minVer = max(k.minVer, v)
		k.arts = append(k.arts, artifact{version: v, text: text, msg: msg})
	case refused:
		r.cryptoRefused(k, s, opEncrypt, node, ce, now)
	}
}

func (r *clRun) decrypt(ctx context.Context, c *client.Client, node int, rng *rand.Rand) {
	r.mu.Lock()
	k := r.pick(rng, 0.9, clHasArts, clEnabled, false)
	if k == nil {
		r.mu.Unlock()
		return
	}
	s := k.snap()
	a := k.arts[rng.IntN(len(k.arts))]
	r.mu.Unlock()
	sent := time.Now()
	pt, err := c.Decrypt(ctx, k.tag, a.text, nil)
	out, ce := r.classify(opDecrypt, node, sent, err)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case out == acked:
		r.cryptoAcked(k, s, opDecrypt, node)
		if string(pt) != string(a.msg) {
			r.t.Errorf("decrypt of an acknowledged v%d ciphertext of %s on node %d: wrong plaintext", a.version, k.tag, node)
		}
		r.checks["acknowledged ciphertext decrypts during the load"]++
	case out == refused && ce.Status == 400:
		r.t.Errorf("decrypt of an acknowledged v%d ciphertext of %s (%s) on node %d: %v", a.version, k.tag, k.typ, node, ce)
	case out == refused:
		r.cryptoRefused(k, s, opDecrypt, node, ce, now)
	}
}

// stateOpPrefers is the state in which each state operation mostly picks its key.
var clStateOpPrefers = map[string]string{opCancel: stRevoke, opEnable: stDisable, opDisable: stEnable}

// stateOp requests deletion, cancels it, enables or disables a key. State
// operations on one key never overlap, so the model knows the key's state
// and checks every answer against decisions.md D6, whichever node answers.
func (r *clRun) stateOp(ctx context.Context, c *client.Client, node int, rng *rand.Rand, op string) {
	r.mu.Lock()
	k := r.pick(rng, 0.85, clAny, func(k *clKey) bool {
		return k.state == clStateOpPrefers[op] || (op == opDelete && k.state != stRevoke)
	}, true)
	if k == nil {
		r.mu.Unlock()
		return
	}
	k.busy = true
	k.stateOps++
	state, destroyAt := k.state, k.destroyAt
	r.mu.Unlock()
	sent := time.Now()
	var sc *client.StatusChange
	var err error
	switch op {
	case opDelete:
		sc, err = c.RequestDeletion(ctx, k.tag)
	case opCancel:
		sc, err = c.CancelDeletion(ctx, k.tag)
	case opEnable:
		sc, err = c.EnableKey(ctx, k.tag)
	case opDisable:
		sc, err = c.DisableKey(ctx, k.tag)
	}
	out, ce := r.classify(op, node, sent, err)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	k.busy = false
	next, allowed := lifecycle(state, op)
	switch out {
	case acked:
		r.checks["state operation answer (D6)"]++
		if !allowed || sc.Status != next || sc.KeyTag != k.tag {
			r.t.Errorf("%s of the %s key %s on node %d answered %+v", op, state, k.tag, node, sc)
		}
		if at := time.UnixMilli(sc.StatusDate); state != next && (at.Before(sent.Truncate(time.Millisecond)) || at.After(now)) {
			r.t.Errorf("%s of %s on node %d: statusDate %v outside [%v, %v]", op, k.tag, node, at, sent, now)
		}
		k.state = next
		if next == stRevoke && state != stRevoke {
			k.destroyAt = time.UnixMilli(sc.StatusDate).Add(clWindow)
			r.revokes++
			if r.revokes%3 == 1 && r.nWatched < 8 {
				r.nWatched++
				k.reserved = true
				r.watchers.Add(1)
				go r.watch(ctx, k, k.destroyAt)
			}
		}
	case refused:
		r.checks["state operation answer (D6)"]++
		switch {
		case isCode(ce, 422, "UNPROCESSABLE_ENTITY"):
			if allowed {
				r.t.Errorf("%s of the %s key %s on node %d refused: %v", op, state, k.tag, node, ce)
			}
		case isCode(ce, 404, "NOT_FOUND"):
			if state != stRevoke || now.Before(destroyAt) {
				r.t.Errorf("%s of the %s key %s (destroyDate %v) on node %d answered 404 at %v",
					op, state, k.tag, destroyAt.Format(time.StampMilli), node, now.Format(time.StampMilli))
			}
			k.gone = true
		default:
			r.t.Errorf("%s of the %s key %s on node %d: %v", op, state, k.tag, node, ce)
		}
	case uncertain:
		k.pending = &pendingOp{op: op, sent: sent, ended: now}
	}
}

// watch polls the key info of a key pending deletion on the running nodes
// in turn, more often near its destroyDate, until it is gone: it must not go
// before destroyAt, and must go by its deadline.
func (r *clRun) watch(ctx context.Context, k *clKey, destroyAt time.Time) {
	defer r.watchers.Done()
	for {
		node, c := r.pickNode()
		if c == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		sent := time.Now()
		_, err := c.GetKey(ctx, k.tag)
		now := time.Now()
		switch {
		case err == nil:
			r.check1("watched key present before it is gone")
			if sent.After(destroyAt.Add(2*clInterval+clSlack)) && sent.After(r.deadline(destroyAt)) {
				r.t.Errorf("watched key %s still exists on node %d %v after its destroyDate %v (deadline %v): not destroyed in time",
					k.tag, node, sent.Sub(destroyAt).Round(time.Millisecond), destroyAt.Format(time.StampMilli), r.deadline(destroyAt).Format(time.StampMilli))
				r.mu.Lock()
				k.reserved = false
				r.mu.Unlock()
				return
			}
		case isNotFound(err):
			if now.Before(destroyAt) {
				r.t.Errorf("watched key %s is gone on node %d at %v, before its destroyDate %v",
					k.tag, node, now.Format(time.StampMilli), destroyAt.Format(time.StampMilli))
			}
			r.check1("watched key gone only after its destroyDate")
			r.mu.Lock()
			k.gone, k.reserved = true, false
			r.watchLat = append(r.watchLat, now.Sub(destroyAt))
			r.mu.Unlock()
			return
		default:
			if !r.inFault(sent, now, !errors.As(err, new(*client.Error)), "key info of a watched key: "+err.Error()) {
				r.t.Errorf("key info of the watched key %s on node %d: %v, outside any fault window", k.tag, node, err)
			}
		}
		if time.Until(destroyAt) > 400*time.Millisecond {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(20 * time.Millisecond) // polling a process: there is nothing else to wait on
		}
	}
}

// addExtra notes a key created by a check, not by the load.
func (r *clRun) addExtra(tag, phase string) {
	r.mu.Lock()
	r.extra[tag] = &clExtra{phase: phase}
	r.mu.Unlock()
}

func (r *clRun) extraGone(tag string) {
	r.mu.Lock()
	if e := r.extra[tag]; e != nil {
		e.gone = true
	}
	r.mu.Unlock()
}

// purged notes a key that the scheduler must have destroyed, due in [from, to].
func (r *clRun) purged(tag string, from, to time.Time) {
	r.mu.Lock()
	r.purgedDue[tag] = [2]time.Time{from, to}
	r.mu.Unlock()
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
	for batch := range slices.Chunk(arts, 128) {
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
	line := func(title string, m map[string]int) {
		fmt.Fprintf(&b, "  %-13s", title)
		n := 0
		for _, op := range ops {
			fmt.Fprintf(&b, " %s %d,", op, m[op])
			n += m[op]
		}
		fmt.Fprintf(&b, " total %d\n", n)
	}
	line("acknowledged", r.acked)
	line("refused", r.refused)
	line("uncertain", r.unsure)
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
	n := 0
	b.WriteString("  checks:")
	for _, kind := range slices.Sorted(maps.Keys(r.checks)) {
		fmt.Fprintf(&b, " %s %d,", kind, r.checks[kind])
		n += r.checks[kind]
	}
	fmt.Fprintf(&b, " total %d", n)
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
