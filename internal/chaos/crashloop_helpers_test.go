package chaos

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

// The model of TestCrashLoop. It holds only what the server acknowledged
// (a 2xx answer received) and, apart from that, what may have happened: a
// request whose answer was lost (the process was killed, or it answered 5xx)
// is "uncertain" and the model allows both outcomes until the next restart
// resolves it from what the server shows.

// Operation names, as counted in the report.
const (
	opCreate  = "create"
	opRotate  = "rotate"
	opDelete  = "request-deletion"
	opCancel  = "cancel-deletion"
	opEnable  = "enable"
	opDisable = "disable"
	opEncrypt = "encrypt"
	opSign    = "sign"
	opDecrypt = "decrypt"
	opVerify  = "verify"
)

var crashOps = []string{opCreate, opRotate, opDelete, opCancel, opEnable, opDisable, opEncrypt, opSign, opDecrypt, opVerify}

// Key states (decisions.md D6).
const (
	stEnable  = "ENABLE"
	stDisable = "DISABLE"
	stRevoke  = "REVOKE"
)

// lifecycle applies a state operation to state as D6 does: the new state and
// whether the operation is allowed (a refused one leaves the state as it is).
func lifecycle(state, op string) (string, bool) {
	switch op {
	case opDelete:
		if state != stRevoke {
			return stRevoke, true
		}
	case opCancel:
		if state == stRevoke {
			return stDisable, true
		}
	case opEnable:
		if state != stRevoke {
			return stEnable, true
		}
	case opDisable:
		if state != stRevoke {
			return stDisable, true
		}
	}
	return state, false
}

// artifact is an acknowledged ciphertext (AES256, RSA2048) or signature (ECDSA).
type artifact struct {
	version int
	text    string // ncpkms:v<N>:...
	msg     []byte // the plaintext, or the signed message
}

// pendingOp is a state operation whose answer was lost.
type pendingOp struct {
	op          string
	sent, ended time.Time // ended: when the request gave up (the cluster test's windows)
}

// lifeState is what a test's model knows of a key's state: the state of the
// last certain answer, and a state operation whose answer was lost.
type lifeState struct {
	state     string     // ENABLE, DISABLE or REVOKE as of the last certain answer
	destroyAt time.Time  // destroyDate, when state is REVOKE
	pending   *pendingOp // a state operation whose answer was lost
}

// keepChecked is how many checked artifacts a key keeps for the checks after
// later crashes (a random sample over its versions).
const keepChecked = 8

// mkey is what the model knows of one key.
type mkey struct {
	tag, name, typ string
	lifeState
	busy           bool       // a worker has a state operation in flight
	minVer, maxVer int        // bounds of the version count: acknowledged; acknowledged + uncertain rotations
	saw404         bool       // a request answered 404 during the load
	fresh          []artifact // acknowledged, not yet checked on an ENABLE key
	kept           []artifact // checked, kept for the checks after later crashes
}

// possible returns the states the key may be in.
func (k *lifeState) possible() []string {
	s := []string{k.state}
	if p := k.pending; p != nil {
		if next, ok := lifecycle(k.state, p.op); ok && next != k.state {
			s = append(s, next)
		}
	}
	return s
}

// describe tells what the model knows of the key's state, for failures.
func (k *lifeState) describe() string {
	s := k.state
	if k.state == stRevoke {
		s += " until " + k.destroyAt.Format(time.StampMilli)
	}
	if p := k.pending; p != nil {
		s += fmt.Sprintf(", then an uncertain %s sent at %s", p.op, p.sent.Format(time.StampMilli))
	}
	return s
}

// earliestDestroy returns the earliest time at which the scheduler may have
// destroyed the key, and false when the key may not be destroyed at all.
func (k *mkey) earliestDestroy() (time.Time, bool) {
	if k.state == stRevoke {
		return k.destroyAt, true
	}
	if p := k.pending; p != nil {
		if next, ok := lifecycle(k.state, p.op); ok && next == stRevoke {
			// The server stamped the request at or after it was sent.
			return p.sent.Truncate(time.Millisecond).Add(crashWindow), true
		}
	}
	return time.Time{}, false
}

func (k *mkey) artifacts() []artifact { return slices.Concat(k.fresh, k.kept) }

// crashRun is one run of TestCrashLoop: the model, the counters and the
// running server.
type crashRun struct {
	t   *testing.T
	rng *rand.Rand // main goroutine only

	mu      sync.Mutex
	tally   // requests by op and outcome
	keys    map[string]*mkey
	order   []*mkey           // keys of the model, in the order they became known
	gone    map[string]bool   // tags of keys seen destroyed
	maybe   map[string]string // name → key type of creates whose answer was lost
	names   int               // key names handed out
	checks  map[string]int
	adopted int // uncertain creates found after a restart

	cycle      int
	started    time.Time     // when the running server began serving
	killed     time.Time     // when the last SIGKILL ended a server
	maxStart   time.Duration // longest start-up (exec to serving)
	dbSize     int64         // size of the data file at the end
	earlyKills int           // servers killed while they started
	procs      []*testkit.Proc
}

func newCrashRun(t *testing.T, seed uint64) *crashRun {
	return &crashRun{
		t: t, rng: rand.New(rand.NewPCG(seed, 0)),
		keys: map[string]*mkey{}, gone: map[string]bool{}, maybe: map[string]string{},
		tally: newTally(), checks: map[string]int{},
	}
}

func (r *crashRun) errorf(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("cycle %d: "+format, append([]any{r.cycleNo()}, args...)...)
}

func (r *crashRun) cycleNo() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cycle
}

func (r *crashRun) check1(kind string) {
	r.mu.Lock()
	r.checks[kind]++
	r.mu.Unlock()
}

// outcome of one request.
type outcome int

const (
	acked     outcome = iota // 2xx: it happened
	refused                  // 4xx: it did not happen
	uncertain                // no answer, or 5xx: it may have happened
)

// classify counts the answer of one request of op. A 5xx is an error of the
// test (no input may produce one) and, for the model, uncertain. transport
// is true when no answer came at all (the server is gone).
func (r *crashRun) classify(op string, err error) (out outcome, ce *client.Error, transport bool) {
	switch {
	case err == nil:
		out = acked
	case errors.As(err, &ce) && ce.Status >= 500:
		r.errorf("%s: the server answered %v", op, err)
		out = uncertain
	case ce != nil:
		out = refused
	default:
		out, transport = uncertain, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count(op, out)
	return out, ce, transport
}

func isCode(ce *client.Error, status int, code string) bool {
	return ce != nil && ce.Status == status && ce.Code == code
}

// versionOf returns N of "ncpkms:v<N>:...", or 0.
func versionOf(text string) int {
	rest, ok := strings.CutPrefix(text, "ncpkms:v")
	if !ok {
		return 0
	}
	n, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(n)
	if err != nil {
		return 0
	}
	return v
}

// deadline is when a REVOKE key due at destroyAt must be gone: the next
// scheduler pass (the first one runs at start-up) plus one more interval and
// some slack for a loaded machine.
func (r *crashRun) deadline(destroyAt time.Time) time.Time {
	from := destroyAt
	if r.started.After(from) {
		from = r.started
	}
	return from.Add(2*crashInterval + crashSlack)
}

// check runs after every restart: it compares the server with the model,
// resolves what was uncertain, and checks that the acknowledged artifacts
// still decrypt or verify.
func (r *crashRun) check(ctx context.Context, c *client.Client) {
	present := map[string]bool{}
	for _, k := range slices.Clone(r.order) {
		r.checkKey(ctx, c, k, present)
	}
	r.checkList(ctx, c, present)
	for _, k := range slices.Clone(r.order) {
		r.checkArtifacts(ctx, c, k)
	}
}

// forget removes a destroyed key from the model.
func (r *crashRun) forget(k *mkey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, k.tag)
	r.order = slices.DeleteFunc(r.order, func(o *mkey) bool { return o == k })
	r.gone[k.tag] = true
}

// destroyedNow accepts that the key, just seen gone, was destroyed by the
// scheduler, if it may have been: it forgets the key and reports true.
func (r *crashRun) destroyedNow(k *mkey) bool {
	if at, ok := k.earliestDestroy(); ok && !time.Now().Before(at) {
		r.check1("key gone only once due")
		if at.After(r.killed) && !at.After(r.started) {
			r.check1("key due while down destroyed at start-up")
		}
		r.forget(k)
		return true
	}
	return false
}

func (r *crashRun) checkKey(ctx context.Context, c *client.Client, k *mkey, present map[string]bool) {
	info, err := c.GetKey(ctx, k.tag)
	now := time.Now()
	if err != nil {
		if !isNotFound(err) {
			r.errorf("key info of %s: %v", k.tag, err)
			return
		}
		if r.destroyedNow(k) {
			return
		}
		r.errorf("key %s (%s, %s) is gone; the model has %s", k.tag, k.name, k.typ, k.describe())
		r.forget(k)
		return
	}
	r.check1("acknowledged key present")
	if k.saw404 {
		r.errorf("key %s answered 404 during the load, and exists after the restart", k.tag)
	}
	if info.KeyName != k.name || info.KeyType != k.typ || info.KeyTag != k.tag {
		r.errorf("key %s is %s %s %s, want %s %s", k.tag, info.KeyTag, info.KeyName, info.KeyType, k.name, k.typ)
	}
	if !slices.Contains(k.possible(), info.Status) {
		r.errorf("key %s is %s; the model has %s", k.tag, info.Status, k.describe())
	}
	r.check1("state")
	if info.CurrentVersion < k.minVer || info.CurrentVersion > k.maxVer {
		r.errorf("key %s has %d versions; acknowledged %d, at most %d could exist", k.tag, info.CurrentVersion, k.minVer, k.maxVer)
	}
	r.check1("version count")
	switch {
	case info.Status != stRevoke:
		if info.DestroyDate != nil {
			r.errorf("key %s is %s with destroyDate %d", k.tag, info.Status, *info.DestroyDate)
		}
	case info.DestroyDate == nil:
		r.errorf("key %s is REVOKE without a destroyDate", k.tag)
	default:
		got := time.UnixMilli(*info.DestroyDate)
		if k.state == stRevoke {
			if !got.Equal(k.destroyAt) {
				r.errorf("key %s: destroyDate %v, acknowledged %v", k.tag, got, k.destroyAt)
			}
		} else if earliest, _ := k.earliestDestroy(); got.Before(earliest) {
			r.errorf("key %s: destroyDate %v is before its deletion request was sent + the window (%v)", k.tag, got, earliest)
		}
		r.check1("destroyDate")
		k.destroyAt = got
		if !got.After(r.started) {
			// Due when this server started: its start-up pass destroys it.
			if r.waitGone(ctx, c, k) {
				return
			}
		} else if d := r.deadline(got); now.After(d) {
			r.overdue(k, now)
		}
		r.check1("REVOKE key not overdue")
	}
	present[k.tag] = true
	k.state, k.pending = info.Status, nil
	k.minVer, k.maxVer = info.CurrentVersion, info.CurrentVersion
}

// overdue reports a REVOKE key that the scheduler should have destroyed by now.
func (r *crashRun) overdue(k *mkey, now time.Time) {
	r.errorf("key %s is still REVOKE %v after its destroyDate %v (server up since %v): the scheduler did not destroy it",
		k.tag, now.Sub(k.destroyAt).Round(time.Millisecond), k.destroyAt.Format(time.StampMilli), r.started.Format(time.StampMilli))
}

// waitGone waits until a key that was due when the server started is gone,
// and reports whether it went before its deadline.
func (r *crashRun) waitGone(ctx context.Context, c *client.Client, k *mkey) bool {
	for {
		_, err := c.GetKey(ctx, k.tag)
		now := time.Now()
		switch {
		case isNotFound(err):
			if !r.destroyedNow(k) {
				r.errorf("key %s is gone before its destroyDate %v", k.tag, k.destroyAt)
			}
			return true
		case err != nil:
			r.errorf("key info of %s: %v", k.tag, err)
			return false
		case now.After(r.deadline(k.destroyAt)):
			r.overdue(k, now)
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling a process: there is nothing else to wait on
	}
}

// listAll reads every page of the key list.
func (r *crashRun) listAll(ctx context.Context, c *client.Client) map[string]client.KeySummary {
	out := map[string]client.KeySummary{}
	for page := 1; ; page++ {
		l, err := c.ListKeys(ctx, page, 200)
		if err != nil {
			r.errorf("key list page %d: %v", page, err)
			return out
		}
		for _, s := range l.KeyList {
			if _, dup := out[s.KeyTag]; dup {
				r.errorf("key %s listed twice", s.KeyTag)
			}
			out[s.KeyTag] = s
		}
		if page >= l.TotalPageNo {
			return out
		}
	}
}

// checkList checks that every listed key is one the model knows or one whose
// create answer was lost (adopted then), and that every present key is listed.
func (r *crashRun) checkList(ctx context.Context, c *client.Client, present map[string]bool) {
	listed := r.listAll(ctx, c)
	// A key destroyed between two pages shifts the later ones: list again
	// before calling a present key missing.
	for try := 0; try < 3; try++ {
		missing := false
		for tag := range present {
			if _, ok := listed[tag]; !ok {
				missing = true
			}
		}
		if !missing {
			break
		}
		for tag, s := range r.listAll(ctx, c) {
			listed[tag] = s
		}
	}
	for tag := range present {
		if _, ok := listed[tag]; !ok {
			// Destroyed since its key info was read?
			if _, err := c.GetKey(ctx, tag); !isNotFound(err) || r.keys[tag] == nil || !r.destroyedNow(r.keys[tag]) {
				r.errorf("key %s exists (key info: %v) but is not in the key list", tag, err)
			}
		}
	}
	for _, tag := range slices.Sorted(maps.Keys(listed)) {
		s := listed[tag]
		r.check1("listed key known")
		if k := r.keys[tag]; k != nil {
			if s.KeyName != k.name || s.KeyType != k.typ || s.Status != k.state {
				r.errorf("listed key %s is %s %s %s; key info said %s %s %s", tag, s.KeyName, s.KeyType, s.Status, k.name, k.typ, k.state)
			}
			continue
		}
		if r.gone[tag] {
			r.errorf("destroyed key %s (%s) is listed again", tag, s.KeyName)
			continue
		}
		typ, ok := r.maybe[s.KeyName]
		if !ok {
			r.errorf("unknown key %s (%s, %s, %s) is listed: nobody created it", tag, s.KeyName, s.KeyType, s.Status)
			continue
		}
		info, err := c.GetKey(ctx, tag)
		if err != nil {
			r.errorf("key info of the listed key %s: %v", tag, err)
			continue
		}
		if info.KeyType != typ || info.Status != stEnable || info.CurrentVersion != 1 {
			r.errorf("key %s, whose create answer was lost, is %s %s with %d versions; want %s ENABLE with 1",
				tag, info.KeyType, info.Status, info.CurrentVersion, typ)
		}
		r.check1("uncertain create adopted")
		delete(r.maybe, s.KeyName)
		r.adopted++
		k := &mkey{tag: tag, name: s.KeyName, typ: typ, lifeState: lifeState{state: info.Status}, minVer: info.CurrentVersion,
			maxVer: info.CurrentVersion}
		r.keys[tag] = k
		r.order = append(r.order, k)
	}
}

// checkArtifacts decrypts or verifies every acknowledged artifact of an
// ENABLE key (those checked before: a few per version), and checks that a key
// in another state refuses crypto.
func (r *crashRun) checkArtifacts(ctx context.Context, c *client.Client, k *mkey) {
	all := k.artifacts()
	if len(all) == 0 {
		return
	}
	if k.state != stEnable {
		a := all[r.rng.IntN(len(all))]
		var err error
		if k.typ == "ECDSA" {
			_, err = c.Verify(ctx, k.tag, a.msg, a.text)
		} else {
			_, err = c.Decrypt(ctx, k.tag, a.text, nil)
		}
		var ce *client.Error
		if isNotFound(err) && r.destroyedNow(k) {
			return
		}
		if !errors.As(err, &ce) || !isCode(ce, 422, "UNPROCESSABLE_ENTITY") {
			r.errorf("crypto with the %s key %s after a restart: %v, want 422", k.state, k.tag, err)
		}
		r.check1("crypto refused by state")
		return
	}
	if k.typ == "ECDSA" {
		for _, a := range all {
			ok, err := c.Verify(ctx, k.tag, a.msg, a.text)
			if err != nil || !ok {
				r.errorf("acknowledged v%d signature of %s does not verify after the restart: %v %v", a.version, k.tag, ok, err)
			}
			r.check1("acknowledged signature verifies")
		}
	} else {
		for batch := range slices.Chunk(all, 32) {
			cts := make([]string, len(batch))
			for i, a := range batch {
				cts[i] = a.text
			}
			pts, err := c.DecryptMany(ctx, k.tag, cts, nil)
			if err != nil {
				vs := make([]int, len(batch))
				for i, a := range batch {
					vs[i] = a.version
				}
				r.errorf("acknowledged ciphertexts of %s (%s, versions %v) do not decrypt after the restart: %v", k.tag, k.typ, vs, err)
				continue
			}
			for i, a := range batch {
				if string(pts[i]) != string(a.msg) {
					r.errorf("acknowledged v%d ciphertext of %s decrypts to %x, want %x", a.version, k.tag, pts[i], a.msg)
				}
				r.check1("acknowledged ciphertext decrypts")
			}
		}
	}
	for _, a := range k.fresh {
		if len(k.kept) < keepChecked {
			k.kept = append(k.kept, a)
		} else if r.rng.IntN(4) == 0 {
			k.kept[r.rng.IntN(len(k.kept))] = a
		}
	}
	k.fresh = nil
}

// report logs what the run did.
func (r *crashRun) report(cycles int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	total := 0
	for _, op := range crashOps {
		total += r.acked[op]
	}
	fmt.Fprintf(&b, "crash loop: %d cycles in %v, %d SIGKILLs under load and %d during a start; %d operations acknowledged\n",
		cycles, took.Round(time.Millisecond), cycles, r.earlyKills, total)
	r.tally.write(&b, crashOps)
	fmt.Fprintf(&b, "  longest start-up %v; data file %.1f MiB at the end\n", r.maxStart.Round(time.Millisecond), float64(r.dbSize)/(1<<20))
	fmt.Fprintf(&b, "  uncertain creates found after a restart %d, never found %d; keys destroyed %d; keys left %d\n",
		r.adopted, len(r.maybe), len(r.gone), len(r.keys))
	writeChecks(&b, r.checks)
	r.t.Log(b.String())
}

// weightedOp is an operation of the random load and its weight.
type weightedOp struct {
	op string
	w  int
}

// loadMix is the random load of the crash-loop and cluster tests: mostly
// crypto, some lifecycle changes; it keeps about thirty usable keys (not
// pending deletion, not gone) and at most about a quarter of all pending
// deletion. del, cancel and disable weigh those operations.
func loadMix(usable, all, del, cancel, disable int) []weightedOp {
	create := 4
	if usable < 8 {
		create = 30
	} else if usable >= 30 {
		create = 0
	}
	if 4*(all-usable) > all {
		del = 0
	}
	return []weightedOp{{opCreate, create}, {opRotate, 3}, {opDelete, del}, {opCancel, cancel}, {opEnable, 4},
		{opDisable, disable}, {opEncrypt, 35}, {opDecrypt, 20}}
}

// pickOp draws one operation of ops, with probability proportional to its weight.
func pickOp(rng *rand.Rand, ops []weightedOp) string {
	total := 0
	for _, o := range ops {
		total += o.w
	}
	n := rng.IntN(total)
	for _, o := range ops {
		if n < o.w {
			return o.op
		}
		n -= o.w
	}
	return ops[0].op
}
