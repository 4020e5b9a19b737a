package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	etcdstore "github.com/nkms/nkms/store/etcd"
)

// TestCluster's checks after the load: every node against the model, /healthz
// without an etcd quorum, and the nodes' logs.

// afterLoad waits until every key that may be pending deletion is gone or
// overdue, then compares every node with the model: keys, states, versions,
// ciphertexts, and the key list.
func (r *clRun) afterLoad(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	time.Sleep(500 * time.Millisecond) // a write whose answer was lost has landed or never will
	r.mu.Lock()
	order := slices.Clone(r.order)
	r.mu.Unlock()

	// Wait for the keys that may be pending deletion.
	for _, k := range order {
		r.mu.Lock()
		_, latest, ok := k.dueRange()
		gone := k.gone
		r.mu.Unlock()
		if !ok || gone {
			continue
		}
		dl := r.deadline(latest)
		for time.Now().Before(dl) {
			_, c := r.pickNode()
			if _, err := c.GetKey(ctx, k.tag); isNotFound(err) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling a process: there is nothing else to wait on
		}
	}

	waited := time.Since(t0)
	t1 := time.Now()
	// Every acknowledged key, on every node.
	destroyed := 0
	for _, k := range order {
		var infos [3]*client.Key
		var errs [3]error
		for i := range r.nodes {
			infos[i], errs[i] = r.nodeClient(i).GetKey(ctx, k.tag)
		}
		now := time.Now()
		found, missing := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				found++
			case isNotFound(err):
				missing++
			default:
				t.Errorf("key info of %s on node %d: %v", k.tag, i, err)
			}
		}
		r.mu.Lock()
		switch {
		case found > 0 && missing > 0:
			t.Errorf("key %s: %d nodes show it and %d answer 404", k.tag, found, missing)
		case missing == len(r.nodes):
			earliest, latest, ok := k.dueRange()
			if !ok || now.Before(earliest) {
				t.Errorf("acknowledged key %s (%s, %s) is gone; the model has %s", k.tag, k.name, k.typ, k.describe())
				break
			}
			k.gone = true
			destroyed++
			r.purgedDue[k.tag] = [2]time.Time{earliest, latest}
			r.checks["destroyed key was due"]++
		case found == len(r.nodes):
			info := infos[0]
			for i := 1; i < len(infos); i++ {
				o := infos[i]
				if o.Status != info.Status || o.CurrentVersion != info.CurrentVersion || o.KeyName != info.KeyName ||
					(o.DestroyDate == nil) != (info.DestroyDate == nil) {
					t.Errorf("key %s: node 0 shows %s v%d %q, node %d shows %s v%d %q", k.tag, info.Status, info.CurrentVersion,
						info.KeyName, i, o.Status, o.CurrentVersion, o.KeyName)
				}
			}
			r.checks["every node shows the same key"]++
			if k.gone {
				t.Errorf("key %s answered 404 during the load, and exists now", k.tag)
			}
			if info.KeyName != k.name || info.KeyType != k.typ {
				t.Errorf("key %s is %s %s, want %s %s", k.tag, info.KeyName, info.KeyType, k.name, k.typ)
			}
			if !slices.Contains(k.possible(), info.Status) {
				t.Errorf("key %s is %s; the model has %s", k.tag, info.Status, k.describe())
			}
			if info.CurrentVersion < k.minVer || info.CurrentVersion > k.maxVer {
				t.Errorf("key %s has %d versions; acknowledged %d, at most %d could exist", k.tag, info.CurrentVersion, k.minVer, k.maxVer)
			}
			if info.Status == stRevoke {
				t.Errorf("key %s is still REVOKE at %v, destroyDate %s: not destroyed in time", k.tag, now.Format(time.StampMilli), millis(info.DestroyDate))
			}
			r.checks["acknowledged key present, state and versions as acknowledged"]++
			k.state, k.pending = info.Status, nil
			k.minVer, k.maxVer = info.CurrentVersion, info.CurrentVersion
		}
		r.mu.Unlock()
	}

	// Every auto rotation made due happened exactly once, when due, on every node's view.
	r.mu.Lock()
	autos := slices.Clone(r.autos)
	r.mu.Unlock()
	for _, a := range autos {
		dl := r.deadline(a.due)
		time.Sleep(time.Until(dl)) // normally long past
		for i := range r.nodes {
			info, err := r.nodeClient(i).GetKey(ctx, a.tag)
			if err != nil {
				t.Errorf("key info of the auto-rotating key %s on node %d: %v", a.tag, i, err)
				continue
			}
			if info.CurrentVersion != 2 {
				t.Errorf("key %s, auto rotation due %v: %d versions on node %d; want 2 (rotated exactly once)",
					a.tag, a.due.Format(time.StampMilli), info.CurrentVersion, i)
			}
			if info.NextRotationDate == nil {
				t.Errorf("key %s on node %d: auto rotation on, nextRotationDate null", a.tag, i)
				continue
			}
			at := time.UnixMilli(*info.NextRotationDate).Add(-24 * time.Hour)
			if at.Before(a.due.Truncate(time.Millisecond)) || at.After(dl) {
				t.Errorf("key %s on node %d auto-rotated at %v; due %v, deadline %v", a.tag, i,
					at.Format(time.StampMilli), a.due.Format(time.StampMilli), dl.Format(time.StampMilli))
			}
		}
		r.check1("auto rotation happened once, when due")
	}

	tKeys := time.Since(t1)
	t2 := time.Now()
	// Every acknowledged ciphertext decrypts on every node (a key left
	// DISABLE is enabled first); a destroyed key's answer 404 everywhere.
	cts, gone := 0, 0
	check := func(tag string, arts []artifact) {
		ns := make([]int, len(r.nodes))
		var wg sync.WaitGroup
		for i := range r.nodes {
			wg.Go(func() { ns[i] = r.decryptAll(t, r.nodeClient(i), i, tag, arts) })
		}
		wg.Wait()
		for _, n := range ns {
			cts += n
			r.checkN("acknowledged ciphertext decrypts on every node", n)
		}
	}
	for j, k := range order {
		r.mu.Lock()
		arts, state, isGone := slices.Clone(k.arts), k.state, k.gone
		r.mu.Unlock()
		if len(arts) == 0 {
			continue
		}
		if isGone {
			for i := range r.nodes {
				if _, err := r.nodeClient(i).Decrypt(ctx, k.tag, arts[0].text, nil); !isNotFound(err) {
					t.Errorf("decrypt with the destroyed key %s on node %d: %v; want 404", k.tag, i, err)
				}
				gone++
			}
			r.checkN("destroyed key's ciphertext answers 404 on every node", len(r.nodes))
			continue
		}
		if state != stEnable {
			if _, err := r.nodeClient(j%3).EnableKey(ctx, k.tag); err != nil {
				t.Errorf("enable the %s key %s: %v", state, k.tag, err)
				continue
			}
			r.mu.Lock()
			k.state = stEnable
			r.mu.Unlock()
		}
		check(k.tag, arts)
	}
	r.mu.Lock()
	extraArts := maps.Clone(r.extraArts)
	r.mu.Unlock()
	for _, tag := range slices.Sorted(maps.Keys(extraArts)) {
		check(tag, extraArts[tag])
	}

	tDecrypt := time.Since(t2)
	// The key list: the same on every node, and only keys someone created.
	var lists [3]map[string]client.KeySummary
	for i := range r.nodes {
		lists[i] = r.listAll(t, r.nodeClient(i), i)
	}
	for i := 1; i < len(lists); i++ {
		if !maps.EqualFunc(lists[0], lists[i], func(a, b client.KeySummary) bool { return a.Status == b.Status && a.KeyName == b.KeyName }) {
			t.Errorf("node 0 lists %d keys, node %d lists %d keys, or they differ in name or state", len(lists[0]), i, len(lists[i]))
		}
	}
	ids := map[int64]string{}
	for tag, s := range lists[0] {
		if other, dup := ids[s.KeyID]; dup {
			t.Errorf("keys %s and %s have the same keyId %d", tag, other, s.KeyID)
		}
		ids[s.KeyID] = tag
	}
	r.checkN("keyId unique", len(ids))
	r.mu.Lock()
	for _, tag := range slices.Sorted(maps.Keys(lists[0])) {
		s := lists[0][tag]
		r.checks["listed key known"]++
		if k := r.keys[tag]; k != nil {
			if k.gone {
				t.Errorf("destroyed key %s (%s) is listed", tag, s.KeyName)
			} else if s.KeyName != k.name || s.Status != k.state {
				t.Errorf("listed key %s is %s %s, the key info said %s %s", tag, s.KeyName, s.Status, k.name, k.state)
			}
			continue
		}
		if e := r.extra[tag]; e != nil {
			if e.gone {
				t.Errorf("destroyed key %s (%s, of the %s check) is listed", tag, s.KeyName, e.phase)
			}
			continue
		}
		typ, ok := r.maybe[s.KeyName]
		if !ok {
			t.Errorf("unknown key %s (%s, %s, %s) is listed: nobody created it", tag, s.KeyName, s.KeyType, s.Status)
			continue
		}
		if s.KeyType != typ || s.Status != stEnable {
			t.Errorf("key %s, whose create answer was lost, is %s %s; want %s ENABLE", tag, s.KeyType, s.Status, typ)
		}
		delete(r.maybe, s.KeyName)
		r.adopted++
	}
	for tag, k := range r.keys {
		if _, listed := lists[0][tag]; !k.gone && !listed {
			t.Errorf("key %s (%s) exists but is not listed", tag, k.name)
		}
	}
	for tag, e := range r.extra {
		if _, listed := lists[0][tag]; !e.gone && !listed {
			t.Errorf("key %s of the %s check exists but is not listed", tag, e.phase)
		}
	}
	keys := len(r.keys)
	r.mu.Unlock()
	r.figure("after the load: %d keys of the load checked on 3 nodes, %d destroyed by the scheduler; %d ciphertext decryptions checked (3 nodes), %d answered 404 for destroyed keys; %d keys listed (waited %v for due keys, keys %v, decryptions %v)",
		keys, destroyed, cts, gone, len(lists[0]), waited.Round(time.Millisecond), tKeys.Round(time.Millisecond), tDecrypt.Round(time.Millisecond))
}

// quorumLoss kills two etcd members of three: every node's /healthz turns
// 503; restarted, 200 again, and a key that fell due meanwhile is destroyed.
func (r *clRun) quorumLoss(t *testing.T) {
	ctx := context.Background()
	c0 := r.nodeClient(0)
	k, err := c0.CreateKey(ctx, client.CreateKeyRequest{KeyName: "doomed", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	r.addExtra(k.KeyTag, "healthz")
	sc, err := r.nodeClient(1).RequestDeletion(ctx, k.KeyTag)
	if err != nil {
		t.Fatal(err)
	}
	destroyAt := time.UnixMilli(sc.StatusDate).Add(clWindow)

	f := r.openFault("etcd quorum lost: members 1 and 2 SIGKILLed")
	g := r.openGap(time.Now())
	killedAt := time.Now()
	r.etcd.Kill(1)
	r.etcd.Kill(2)
	health := func(i int) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return r.nodeClient(i).Health(ctx)
	}
	// Each node is probed on its own: a probe takes up to the 1s of the check.
	probe := func(from time.Time, limit time.Duration, ok func(error) bool, what string) []time.Duration {
		took := make([]time.Duration, len(r.nodes))
		var wg sync.WaitGroup
		for i := range r.nodes {
			wg.Go(func() {
				for {
					err := health(i)
					if ok(err) {
						took[i] = time.Since(from)
						r.check1(what)
						return
					}
					if time.Since(from) > limit {
						t.Errorf("node %d: /healthz %v after %s: %v", i, time.Since(from).Round(time.Millisecond), what, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		return took
	}
	to503 := probe(killedAt, 5*time.Second, func(err error) bool {
		var ce *client.Error
		return asClientError(err, &ce) && ce.Status == 503
	}, "healthz 503 without quorum")
	for _, m := range []int{1, 2} {
		if err := r.etcd.Restart(m); err != nil {
			t.Fatal(err)
		}
	}
	restored := time.Now()
	to200 := probe(restored, 15*time.Second, func(err error) bool { return err == nil }, "healthz 200 with the quorum back")
	// The scheduler may stop until the old leader's lease expires (LeaderTTL after the quorum is back).
	r.closeGap(g, restored.Add(etcdstore.LeaderTTL+time.Second))
	r.nmu.Lock()
	f.to = restored.Add(etcdstore.LeaderTTL + clGrace)
	r.nmu.Unlock()

	dl := r.deadline(destroyAt)
	var goneAfter time.Duration
	for {
		_, c := r.pickNode()
		_, err := c.GetKey(ctx, k.KeyTag)
		now := time.Now()
		if isNotFound(err) {
			if now.Before(destroyAt) {
				t.Errorf("key %s is gone at %v, before its destroyDate %v", k.KeyTag, now.Format(time.StampMilli), destroyAt.Format(time.StampMilli))
			}
			from := destroyAt
			if restored.After(from) {
				from = restored
			}
			goneAfter = now.Sub(from)
			r.check1("key due without quorum destroyed once it returned")
			break
		}
		if now.After(dl) {
			t.Errorf("key %s, due %v, still there %v after the quorum came back (%v): %v",
				k.KeyTag, destroyAt.Format(time.StampMilli), now.Sub(restored).Round(time.Millisecond), restored.Format(time.StampMilli), err)
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a process: there is nothing else to wait on
	}
	r.extraGone(k.KeyTag)
	r.purged(k.KeyTag, destroyAt, destroyAt)
	for i := range r.nodes {
		if _, err := r.nodeClient(i).CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("back%d", i), KeyType: "AES256"}); err != nil {
			t.Errorf("create on node %d after the quorum came back: %v", i, err)
		} else {
			r.check1("node writes again with the quorum back")
		}
	}
	leader := "none"
	if lt := r.leader(); lt != nil {
		leader = fmt.Sprintf("node %d (since %v after the quorum came back)", lt.cp.node, lt.from.Sub(restored).Round(time.Millisecond))
	}
	r.figure("quorum loss: /healthz 503 on the 3 nodes %v after 2 of 3 etcd members died; 200 again %v after they were restarted; a key due during the loss destroyed %v after max(due, restore); scheduler leader then: %s",
		roundAll(to503), roundAll(to200), goneAfter.Round(time.Millisecond), leader)
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(10 * time.Millisecond)
	}
	return out
}

// checkLogs reads all nodes' logs: no two nodes led the scheduler at once;
// every destruction by the scheduler was logged once, by the node leading
// then; every immediate delete was logged once; no error was logged outside
// a fault window; nothing panicked.
func (r *clRun) checkLogs(t *testing.T) {
	time.Sleep(200 * time.Millisecond) // the servers write their log within 100ms
	terms := r.terms()
	var maxOverlap time.Duration
	var end time.Time
	var endBy *clProc
	for i, tm := range terms {
		if i > 0 && end.After(tm.from) {
			ov := end.Sub(tm.from)
			maxOverlap = max(maxOverlap, ov)
			if ov > clOverlap || endBy == tm.cp {
				t.Errorf("node %d (pid %d) led the scheduler from %v while node %d (pid %d) led until %v",
					tm.cp.node, tm.cp.pid, tm.from.Format(time.StampMilli), endBy.node, endBy.pid, end.Format(time.StampMilli))
			}
		}
		to := tm.to
		if to.IsZero() {
			to = time.Now().Add(time.Hour)
		}
		if to.After(end) {
			end, endBy = to, tm.cp
		}
	}
	r.check1("scheduler terms do not overlap")
	inTerm := func(cp *clProc, at time.Time) bool {
		for _, tm := range terms {
			if tm.cp == cp && !at.Before(tm.from) && (tm.to.IsZero() || !at.After(tm.to.Add(clOverlap))) {
				return true
			}
		}
		return false
	}

	for _, cp := range r.allProcs() {
		leading := false
		for _, l := range cp.scan() {
			switch l.msg {
			case msgLeading:
				if !strings.HasSuffix(l.node, "/"+strconv.Itoa(cp.pid)) {
					t.Errorf("node %d (pid %d) logged %q as %q", cp.node, cp.pid, msgLeading, l.node)
				}
				if leading {
					t.Errorf("node %d (pid %d) logged %q again without %q between: %s", cp.node, cp.pid, msgLeading, msgLost, l.raw)
				}
				leading = true
			case msgLost:
				leading = false
			}
		}
	}
	purgedLines := map[string]int{}
	rotatedLines := map[string]int{}
	deletedLines := map[string]int{}
	errorsOutside, warns := 0, map[string]int{}
	var errorSamples []string
	for _, cp := range r.allProcs() {
		out := cp.p.Stderr.String()
		if strings.Contains(out, "panic:") || strings.Contains(out, "fatal error:") {
			t.Errorf("node %d (pid %d) panicked:\n%s", cp.node, cp.pid, out)
		}
		for _, l := range cp.scan() {
			switch {
			case l.msg == msgPurged:
				purgedLines[l.tag]++
				if !inTerm(cp, l.at) {
					t.Errorf("node %d (pid %d) destroyed %s at %v while it did not lead the scheduler", cp.node, cp.pid, l.tag, l.at.Format(time.StampMilli))
				}
				r.check1("destruction by the leader of the moment")
			case l.msg == msgRotated:
				rotatedLines[l.tag]++
				if !inTerm(cp, l.at) {
					t.Errorf("node %d (pid %d) auto-rotated %s at %v while it did not lead the scheduler", cp.node, cp.pid, l.tag, l.at.Format(time.StampMilli))
				}
				r.check1("auto rotation by the leader of the moment")
			case l.msg == msgDeleteNow:
				deletedLines[l.tag]++
			case l.level == "ERROR":
				inFault := false
				r.nmu.Lock()
				for _, f := range r.faults {
					if f.covers(l.at) {
						inFault = true
					}
				}
				r.nmu.Unlock()
				if !inFault {
					errorsOutside++
					r.nmu.Lock()
					var ws []string
					for _, f := range r.faults {
						ws = append(ws, fmt.Sprintf("%s [%s, %s]", f.name, f.from.Format(time.StampMilli), f.to.Format(time.StampMilli)))
					}
					r.nmu.Unlock()
					t.Errorf("node %d (pid %d) logged an error outside any fault window (%s): %s", cp.node, cp.pid, strings.Join(ws, "; "), l.raw)
				}
				if warns["ERROR "+l.msg] == 0 {
					errorSamples = append(errorSamples, fmt.Sprintf("node %d: %.400s", cp.node, l.raw))
				}
				warns["ERROR "+l.msg]++
			case l.level == "WARN":
				warns["WARN "+l.msg]++
			}
		}
	}

	// Kills of a leader: the lines of the keys due just before may have died with it.
	var leaderKills []time.Time
	for _, tm := range terms {
		r.nmu.Lock()
		if !tm.cp.killed.IsZero() && tm.to.Equal(tm.cp.killed) {
			leaderKills = append(leaderKills, tm.cp.killed)
		}
		r.nmu.Unlock()
	}
	r.mu.Lock()
	purged := maps.Clone(r.purgedDue)
	deleted := maps.Clone(r.deletedNow)
	r.mu.Unlock()
	// exactlyOnce checks that each key of due has one msg line, or none when
	// a leader died just after the key fell due.
	exactlyOnce := func(due map[string][2]time.Time, lines map[string]int, msg string) (once, lost int) {
		for _, tag := range slices.Sorted(maps.Keys(due)) {
			d := due[tag]
			switch n := lines[tag]; {
			case n == 1:
				once++
			case n == 0:
				excused := slices.ContainsFunc(leaderKills, func(k time.Time) bool {
					return !k.Before(d[0]) && !k.After(d[1].Add(clLostLines))
				})
				if excused {
					lost++
				} else {
					t.Errorf("key %s (due %v) has no %q line in any node's log", tag, d[0].Format(time.StampMilli), msg)
				}
			default:
				t.Errorf("key %s: %d %q lines, want 1", tag, n, msg)
			}
		}
		for tag, n := range lines {
			if _, ok := due[tag]; !ok {
				t.Errorf("%d %q lines for key %s, which the checks did not expect", n, msg, tag)
			}
		}
		return once, lost
	}
	once, lostWithLeader := exactlyOnce(purged, purgedLines, msgPurged)
	rotDue := map[string][2]time.Time{}
	r.mu.Lock()
	for _, a := range r.autos {
		rotDue[a.tag] = [2]time.Time{a.due, a.due}
	}
	r.mu.Unlock()
	rotOnce, rotLost := exactlyOnce(rotDue, rotatedLines, msgRotated)
	for tag := range deleted {
		if n := deletedLines[tag]; n != 1 {
			t.Errorf("key %s deleted at once: %d %q lines, want 1", tag, n, msgDeleteNow)
		}
	}
	for tag, n := range deletedLines {
		if !deleted[tag] {
			t.Errorf("%d %q lines for key %s, which no one deleted", n, msgDeleteNow, tag)
		}
	}
	r.checkN("destruction logged once", once+len(deleted))
	r.checkN("auto rotation logged once", rotOnce)
	var ws []string
	for _, m := range slices.Sorted(maps.Keys(warns)) {
		ws = append(ws, fmt.Sprintf("%s ×%d", m, warns[m]))
	}
	r.figure("logs: %d scheduler terms (longest overlap %v); %d keys destroyed by the scheduler: %d logged once, %d unlogged because their leader was SIGKILLed within %v of their due time; %d auto rotations: %d logged once, %d unlogged likewise; %d immediate deletes logged once; errors outside fault windows %d; warnings and errors: %s",
		len(terms), maxOverlap, len(purged), once, lostWithLeader, clLostLines, len(rotDue), rotOnce, rotLost, len(deleted), errorsOutside, strings.Join(ws, ", "))
	for _, e := range errorSamples {
		r.figure("  error logged in a fault window: %s", e)
	}
}
