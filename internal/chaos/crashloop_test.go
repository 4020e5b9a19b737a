package chaos

import (
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/testkit"
)

var (
	crashLoopDuration = flag.Duration("crashloop.duration", 0,
		"TestCrashLoop soak mode: run kill/restart cycles for this long (0: about 15s of cycles)")
	crashLoopSeed = flag.Uint64("crashloop.seed", 0, "TestCrashLoop: seed of the random choices (0: a fresh one, logged)")
)

const (
	crashWindow   = 2 * time.Second         // --pending-deletion-window
	crashInterval = 200 * time.Millisecond  // --scheduler-interval
	crashSlack    = 1500 * time.Millisecond // a loaded machine's delay of a scheduler pass
	crashWorkers  = 6
	crashBudget   = 15 * time.Second // default time spent in cycles
	crashMinLoad  = 100 * time.Millisecond
	crashMaxLoad  = 800 * time.Millisecond
)

// TestCrashLoop repeats: start the server on one data dir, run a random mix of
// creates, rotations, deletion requests, cancels, enables, disables, encrypts,
// signs, decrypts and verifies from several workers, SIGKILL the process at a
// random moment, sometimes stay down a while or kill the next server within
// milliseconds of its start, restart it and compare it with a model of what
// was acknowledged (crashloop_helpers_test.go): every acknowledged key,
// version and state is there (a request whose answer was lost may have
// happened or not), every acknowledged ciphertext decrypts and signature
// verifies, nothing was destroyed before it was due or after a cancel, nothing
// due survived the next scheduler passes (with a 2s window and 200ms passes,
// destruction happens during the test), and nothing unknown is listed. The
// default run spends about 15s in cycles; -crashloop.duration=10m makes it
// a soak, -crashloop.seed repeats a run's random choices. It skips with
// -short.
func TestCrashLoop(t *testing.T) {
	skipShort(t)
	t.Parallel()
	seed := *crashLoopSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-crashloop.seed=%d repeats the random choices; the interleaving of the workers still varies)", seed, seed)
	budget := crashBudget
	if *crashLoopDuration > 0 {
		budget = *crashLoopDuration
	}
	ctx := context.Background()
	r := newCrashRun(t, seed)
	dir := t.TempDir()
	args := []string{"--pending-deletion-window", crashWindow.String(), "--scheduler-interval", crashInterval.String(),
		"--log-level", "warn"}
	began := time.Now()
	p := r.start(dir, args)
	cycles := 0
	for {
		r.check(ctx, adminClient(t, p)) // the first time on an empty data dir; then after each SIGKILL
		if t.Failed() || time.Since(began) >= budget {
			break
		}
		cycles++
		r.setCycle(cycles)
		r.load(ctx, p, seed)
		if r.rng.IntN(4) == 0 {
			// Stay down a while, so that deletion windows end with no server
			// running: the start-up pass must destroy those keys.
			down := 500*time.Millisecond + time.Duration(r.rng.Int64N(int64(time.Second)))
			t.Logf("cycle %d: down for %v", cycles, down.Round(time.Millisecond))
			time.Sleep(down)
		}
		if r.rng.IntN(5) == 0 {
			r.killEarly(dir, args)
		}
		p = r.start(dir, args)
	}
	if !t.Failed() {
		// Wait for every key still pending deletion to be due, and check again.
		var last time.Time
		for _, k := range r.order {
			if d := r.deadline(k.destroyAt); k.state == stRevoke && d.After(last) {
				last = d
			}
		}
		time.Sleep(time.Until(last))    // a deadline across the process boundary: nothing to wait on
		r.check(ctx, adminClient(t, p)) // every key still REVOKE is overdue now
	}
	if err := p.Terminate(); err != nil {
		t.Errorf("SIGTERM after the crash loop: exit %v\n%s", err, p.Stderr)
	}
	r.checkLogs()
	if fi, err := os.Stat(filepath.Join(dir, "nkms.db")); err == nil {
		r.dbSize = fi.Size()
	}
	r.report(cycles, time.Since(began))
}

// totals returns the numbers of acknowledged and uncertain operations so far.
func (r *crashRun) totals() (acked, unsure int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range crashOps {
		acked += r.acked[op]
		unsure += r.unsure[op]
	}
	return acked, unsure
}

func (r *crashRun) setCycle(n int) {
	r.mu.Lock()
	r.cycle = n
	r.mu.Unlock()
}

// start starts the server on dir and notes when it began serving.
func (r *crashRun) start(dir string, args []string) *testkit.Proc {
	t0 := time.Now()
	p := start(r.t, dir, credEnv, args...)
	r.started = time.Now()
	r.maxStart = max(r.maxStart, r.started.Sub(t0))
	r.procs = append(r.procs, p)
	return p
}

// killEarly starts a server on dir and SIGKILLs it within a few
// milliseconds: while it opens (and maybe compacts) the data file or runs its
// first scheduler pass, a crash during recovery.
func (r *crashRun) killEarly(dir string, args []string) {
	after := time.Duration(r.rng.Int64N(int64(10 * time.Millisecond)))
	cmd := testkit.ServerCommand(binary, dir, credEnv, args...)
	out := &testkit.Buffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	time.Sleep(after)
	cmd.Process.Kill()
	cmd.Wait()
	r.killed = time.Now()
	r.earlyKills++
	if s := out.String(); strings.Contains(s, "level=ERROR") || strings.Contains(s, "panic:") {
		r.errorf("server killed %v after it was started logged an error:\n%s", after, s)
	}
	r.t.Logf("cycle %d: SIGKILL %v after a start", r.cycle, after.Round(100*time.Microsecond))
}

// checkLogs checks that no server logged an error or panicked.
func (r *crashRun) checkLogs() {
	for i, p := range r.procs {
		out := p.Stderr.String()
		if strings.Contains(out, "level=ERROR") || strings.Contains(out, "panic:") {
			r.t.Errorf("server %d of the crash loop logged an error:\n%s", i+1, out)
		}
		r.check1("server log clean")
	}
}

// load runs the workers against p and SIGKILLs p after a random delay.
func (r *crashRun) load(ctx context.Context, p *testkit.Proc, seed uint64) {
	c := adminClient(r.t, p)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	cycle := r.cycleNo()
	for w := range crashWorkers {
		rng := rand.New(rand.NewPCG(seed, uint64(cycle)<<8|uint64(w+1)))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !r.step(ctx, c, rng) {
					return // no answer: the server is gone
				}
			}
		})
	}
	delay := crashMinLoad + time.Duration(r.rng.Int64N(int64(crashMaxLoad-crashMinLoad)))
	acked0, unsure0 := r.totals()
	time.Sleep(delay) // the load runs for this long; the kill lands wherever the workers are
	p.Kill()
	r.killed = time.Now()
	close(stop)
	wg.Wait()
	acked1, unsure1 := r.totals()
	r.t.Logf("cycle %d: SIGKILL after %v of load: %d operations acknowledged, %d uncertain",
		cycle, delay.Round(time.Millisecond), acked1-acked0, unsure1-unsure0)
}

// step runs one random operation; it returns false when the server did not answer.
func (r *crashRun) step(ctx context.Context, c *client.Client, rng *rand.Rand) bool {
	r.mu.Lock()
	usable := 0 // keys not pending deletion
	for _, k := range r.order {
		if k.state != stRevoke && !k.saw404 {
			usable++
		}
	}
	all := len(r.order)
	r.mu.Unlock()
	op := pickOp(rng, loadMix(usable, all, 2, 1, 1))
	switch op {
	case opCreate:
		return r.create(ctx, c, rng)
	case opRotate:
		return r.rotate(ctx, c, rng)
	case opEncrypt:
		return r.seal(ctx, c, rng)
	case opDecrypt:
		return r.open(ctx, c, rng)
	default:
		return r.stateOp(ctx, c, rng, op)
	}
}

// pick returns a random key of the model for which ok holds, one for which
// good also holds with probability prefer; nil if there is none. With
// exclusive, keys with a state operation in flight or uncertain are skipped.
// The caller holds r.mu.
func (r *crashRun) pick(rng *rand.Rand, prefer float64, ok, good func(*mkey) bool, exclusive bool) *mkey {
	return pickPreferring(rng, r.order, prefer, func(k *mkey) bool {
		return !k.saw404 && ok(k) && !(exclusive && (k.busy || k.pending != nil))
	}, good)
}

func anyKey(*mkey) bool      { return true }
func enabled(k *mkey) bool   { return k.state == stEnable }
func hasOutput(k *mkey) bool { return len(k.fresh) > 0 || len(k.kept) > 0 }

// cryptoRefused accepts the refusal of a rotation or crypto request: the key's
// state is not certain while state operations run beside it, so 422 is fine;
// a 404 is checked at the next restart. The caller holds r.mu.
func (r *crashRun) cryptoRefused(k *mkey, op string, ce *client.Error) {
	switch {
	case isCode(ce, 422, "UNPROCESSABLE_ENTITY"):
	case isCode(ce, 404, "NOT_FOUND"):
		k.saw404 = true
	default:
		r.t.Errorf("cycle %d: %s with %s key %s: %v", r.cycle, op, k.typ, k.tag, ce)
	}
}

func (r *crashRun) create(ctx context.Context, c *client.Client, rng *rand.Rand) bool {
	typ := "AES256"
	switch n := rng.IntN(20); {
	case n == 0:
		typ = "RSA2048"
	case n <= 2:
		typ = "ECDSA"
	}
	r.mu.Lock()
	r.names++
	name := "crash" + strconv.Itoa(r.names)
	r.mu.Unlock()
	k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: typ})
	out, ce, transport := r.classify(opCreate, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		if k.KeyName != name || k.KeyType != typ || k.Status != stEnable || len(k.KeyTag) != 64 || r.keys[k.KeyTag] != nil {
			r.t.Errorf("cycle %d: create %s %s answered %+v", r.cycle, name, typ, k)
			return true
		}
		m := &mkey{tag: k.KeyTag, name: name, typ: typ, lifeState: lifeState{state: stEnable}, minVer: 1, maxVer: 1}
		r.keys[m.tag] = m
		r.order = append(r.order, m)
	case refused:
		r.t.Errorf("cycle %d: create %s %s: %v", r.cycle, name, typ, ce)
	case uncertain:
		r.maybe[name] = typ
	}
	return !transport
}

func (r *crashRun) rotate(ctx context.Context, c *client.Client, rng *rand.Rand) bool {
	r.mu.Lock()
	k := r.pick(rng, 0.9, anyKey, enabled, false)
	if k == nil {
		r.mu.Unlock()
		return true
	}
	k.maxVer++ // counted before it is sent: it may land before another rotation's answer comes
	r.mu.Unlock()
	rot, err := c.Rotate(ctx, k.tag)
	out, ce, transport := r.classify(opRotate, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		if rot.Version < 2 || rot.Version > k.maxVer {
			r.t.Errorf("cycle %d: rotate %s answered version %d; at most %d could exist", r.cycle, k.tag, rot.Version, k.maxVer)
		}
		k.minVer = max(k.minVer, rot.Version)
	case refused:
		k.maxVer--
		r.cryptoRefused(k, opRotate, ce)
	}
	return !transport
}

// seal encrypts (AES256, RSA2048) or signs (ECDSA) a random message.
func (r *crashRun) seal(ctx context.Context, c *client.Client, rng *rand.Rand) bool {
	r.mu.Lock()
	k := r.pick(rng, 0.9, anyKey, enabled, false)
	r.mu.Unlock()
	if k == nil {
		return true
	}
	msg := make([]byte, 1+rng.IntN(64))
	for i := range msg {
		msg[i] = byte(rng.Uint32())
	}
	var text string
	var err error
	op := opEncrypt
	if k.typ == "ECDSA" {
		op = opSign
		text, err = c.Sign(ctx, k.tag, msg)
	} else {
		text, err = c.Encrypt(ctx, k.tag, msg, nil)
	}
	out, ce, transport := r.classify(op, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch out {
	case acked:
		v := versionOf(text)
		if v < 1 || v > k.maxVer {
			r.t.Errorf("cycle %d: %s with %s answered %.20q…; at most %d versions could exist", r.cycle, op, k.tag, text, k.maxVer)
			return true
		}
		k.minVer = max(k.minVer, v)
		k.fresh = append(k.fresh, artifact{version: v, text: text, msg: msg})
	case refused:
		r.cryptoRefused(k, op, ce)
	}
	return !transport
}

// open decrypts or verifies an acknowledged artifact.
func (r *crashRun) open(ctx context.Context, c *client.Client, rng *rand.Rand) bool {
	r.mu.Lock()
	k := r.pick(rng, 0.9, hasOutput, enabled, false)
	var a artifact
	if k != nil {
		all := k.artifacts()
		a = all[rng.IntN(len(all))]
	}
	r.mu.Unlock()
	if k == nil {
		return true
	}
	op := opDecrypt
	var good bool
	var err error
	if k.typ == "ECDSA" {
		op = opVerify
		good, err = c.Verify(ctx, k.tag, a.msg, a.text)
	} else {
		var pt []byte
		pt, err = c.Decrypt(ctx, k.tag, a.text, nil)
		good = string(pt) == string(a.msg)
	}
	out, ce, transport := r.classify(op, err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case out == acked:
		if !good {
			r.t.Errorf("cycle %d: %s of an acknowledged v%d artifact of %s: wrong result", r.cycle, op, a.version, k.tag)
		}
		r.checks["acknowledged artifact opens during load"]++
	case out == refused && ce.Status == 400:
		r.t.Errorf("cycle %d: %s of an acknowledged v%d artifact of %s (%s): %v", r.cycle, op, a.version, k.tag, k.typ, ce)
	case out == refused:
		r.cryptoRefused(k, op, ce)
	}
	return !transport
}

// stateOpPrefers is the state in which each state operation mostly picks its
// key; the other picks exercise the refusals of D6 (request deletion prefers
// any key not in REVOKE).
var stateOpPrefers = map[string]string{opCancel: stRevoke, opEnable: stDisable, opDisable: stEnable}

// stateOp requests deletion, cancels it, enables or disables a key. State
// operations on one key never overlap, so the model knows the key's state and
// checks the answer against decisions.md D6.
func (r *crashRun) stateOp(ctx context.Context, c *client.Client, rng *rand.Rand, op string) bool {
	r.mu.Lock()
	k := r.pick(rng, 0.85, anyKey, func(k *mkey) bool { return k.state == stateOpPrefers[op] || (op == opDelete && k.state != stRevoke) }, true)
	if k == nil {
		r.mu.Unlock()
		return true
	}
	k.busy = true
	state, destroyAt := k.state, k.destroyAt
	r.mu.Unlock()
	sent := time.Now()
	sc, err := sendStateOp(ctx, c, op, k.tag)
	out, ce, transport := r.classify(op, err)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	k.busy = false
	next, allowed := lifecycle(state, op)
	switch out {
	case acked:
		r.checks["state operation answer"]++
		if !allowed || sc.Status != next || sc.KeyTag != k.tag {
			r.t.Errorf("cycle %d: %s of %s key %s answered %+v", r.cycle, op, state, k.tag, sc)
		}
		if at := time.UnixMilli(sc.StatusDate); state != next && (at.Before(sent.Truncate(time.Millisecond)) || at.After(now)) {
			r.t.Errorf("cycle %d: %s of %s: statusDate %v outside [%v, %v]", r.cycle, op, k.tag, at, sent, now)
		}
		k.state = next
		if next == stRevoke && state != stRevoke {
			k.destroyAt = time.UnixMilli(sc.StatusDate).Add(crashWindow)
		}
	case refused:
		r.checks["state operation answer"]++
		switch {
		case isCode(ce, 422, "UNPROCESSABLE_ENTITY"):
			if allowed {
				r.t.Errorf("cycle %d: %s of %s key %s refused: %v", r.cycle, op, state, k.tag, ce)
			}
		case isCode(ce, 404, "NOT_FOUND"):
			if state != stRevoke || now.Before(destroyAt) {
				r.t.Errorf("cycle %d: %s of %s key %s (destroyDate %v) answered 404 at %v",
					r.cycle, op, state, k.tag, destroyAt, now)
			}
			k.saw404 = true
		default:
			r.t.Errorf("cycle %d: %s of %s key %s: %v", r.cycle, op, state, k.tag, ce)
		}
	case uncertain:
		k.pending = &pendingOp{op: op, sent: sent}
	}
	return !transport
}
