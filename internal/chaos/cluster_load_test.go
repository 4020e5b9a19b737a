package chaos

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nkms/nkms/client"
)

// TestCluster's load: random operations sent to the nodes in turn, each
// answer checked against the model (cluster_model_test.go) and recorded in it.

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
	return pickPreferring(rng, r.order, prefer, func(k *clKey) bool {
		return !k.gone && !k.reserved && ok(k) && !(exclusive && (k.busy || k.pending != nil))
	}, good)
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

// stateOp requests deletion, cancels it, enables or disables a key. State
// operations on one key never overlap, so the model knows the key's state
// and checks every answer against decisions.md D6, whichever node answers.
func (r *clRun) stateOp(ctx context.Context, c *client.Client, node int, rng *rand.Rand, op string) {
	r.mu.Lock()
	k := r.pick(rng, 0.85, clAny, func(k *clKey) bool {
		return k.state == stateOpPrefers[op] || (op == opDelete && k.state != stRevoke)
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
	sc, err := sendStateOp(ctx, c, op, k.tag)
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
