package chaos

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/etcdtest"
	"github.com/nkms/nkms/internal/testkit"
	etcdstore "github.com/nkms/nkms/store/etcd"
)

// The model of TestCluster: three nkms nodes on one etcd cluster, their
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
	// clLostLines: a node writes its log at most 100ms late (internal/server/logbuffer.go);
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
	p      *testkit.Proc
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
	s := cp.p.Stderr.String()
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
	tally                 // requests by op and outcome
	keys       map[string]*clKey
	order      []*clKey
	extra      map[string]*clExtra
	maybe      map[string]string // name → key type of creates whose answer was lost
	names      int
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
