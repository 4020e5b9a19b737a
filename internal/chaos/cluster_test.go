package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/etcdtest"
	etcdstore "github.com/nkms/nkms/store/etcd"
)

var (
	clusterDuration = flag.Duration("cluster.duration", 0,
		"TestCluster soak mode: repeat fault cycles (the etcd raft leader, then the scheduler leader SIGKILLed and restarted) under load for this long (0: one cycle)")
	clusterSeed = flag.Uint64("cluster.seed", 0, "TestCluster: seed of the workers' random choices (0: a fresh one, logged)")
)

// TestCluster runs nkms as a cluster: three etcd members and three nkms
// nodes (--store etcd, one root key, a 3s deletion window, 200ms scheduler
// passes) on loopback, a mixed load of creates, rotations, deletion
// requests, cancels, enables, disables, encrypts and decrypts sent to the
// nodes in turn, and a model of what they acknowledged
// (cluster_model_test.go) that checks every answer, whichever node gives
// it. Under the load it SIGKILLs the etcd raft leader and restarts it, then
// SIGKILLs the nkms node that leads the scheduler while auto rotations fall
// due, measures how long the next leader takes, and restarts the node. Then,
// still under load: a change on one node (disable, version disable, deletion
// request, cancel, delete, access-key revocation, token-generator
// replacement) is seen by the very next request on another; concurrent
// creates and renames of one name on different nodes leave one winner;
// cancels racing the purge of their key keep the key whenever they are
// acknowledged. After the load, on every node: every acknowledged key is
// there (or was destroyed, and only once it was due), every acknowledged
// ciphertext decrypts, every key due is gone, every auto rotation happened
// once; the key lists agree. Then /healthz answers 503 without an etcd quorum
// and 200 again when it returns, and a key that fell due meanwhile is
// destroyed. Last, the nodes' logs: no two nodes led at once, and every
// destruction and auto rotation was logged once, by the leader of the moment.
//
// It is not parallel: six servers and the load need the machine's cores to
// keep to the deadlines. -cluster.duration=5m repeats the fault cycle. It
// skips with -short.
func TestCluster(t *testing.T) {
	skipShort(t)
	began := time.Now()
	seed := *clusterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-cluster.seed=%d repeats the workers' random choices, not their interleaving)", seed, seed)
	ec := etcdtest.Start(t, 3)
	r := newClRun(t, ec, seed)
	r.startNodes()
	defer r.monitorEtcd()()
	if lt, ok := r.waitLeader(began, nil, clTakeoverMax); ok {
		t.Logf("scheduler leader at start: node %d", lt.cp.node)
	} else {
		t.Fatal("no node logged that it leads the scheduler")
	}
	stopLoad := r.startLoad()
	defer stopLoad()

	const freshIters, nameRounds, raceKeys = 50, 8, 24
	t.Run("faults-under-load", func(t *testing.T) {
		began := time.Now()
		cycles := 0
		for cycles == 0 || time.Since(began) < *clusterDuration {
			cycles++
			r.faultCycle(t, cycles)
			if t.Failed() {
				break
			}
		}
	})
	t.Run("cross-node-freshness", func(t *testing.T) { r.freshness(t, freshIters) })
	t.Run("unique-names", func(t *testing.T) { r.uniqueNames(t, nameRounds) })
	t.Run("cancel-races-purge", func(t *testing.T) { r.cancelRace(t, raceKeys) })
	stopLoad()
	t.Run("after-the-load", r.afterLoad)
	t.Run("healthz-without-quorum", r.quorumLoss)
	t.Run("one-scheduler-and-logs", r.checkLogs)
	r.report(time.Since(began))
}

// faultCycle kills and restarts the etcd raft leader, then the nkms node
// that leads the scheduler, with the load running.
func (r *clRun) faultCycle(t *testing.T, cycle int) {
	ctx := context.Background()
	// Keys with auto rotation, made due around the leader's death below.
	var autos []clAuto
	for j := range 6 {
		c := r.nodeClient(j % 3)
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("auto%dx%d", cycle, j), KeyType: "AES256",
			IsAutoRotation: true, RotationPeriod: 1})
		if err != nil {
			t.Fatal(err)
		}
		r.addExtra(k.KeyTag, "auto-rotation")
		msg := []byte("before rotation " + k.KeyTag)
		ct, err := c.Encrypt(ctx, k.KeyTag, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		autos = append(autos, clAuto{tag: k.KeyTag, art: artifact{version: 1, text: ct, msg: msg}})
	}
	time.Sleep(1500 * time.Millisecond) // load before the fault
	m := r.etcdLeader(t)
	f := r.openFault(fmt.Sprintf("cycle %d: etcd member %d (raft leader) SIGKILLed", cycle, m))
	// A scheduler pass whose etcd request reached the dead raft leader waits
	// for etcd's request timeout: no destruction is overdue in that time.
	stall := r.openGap(time.Now())
	stopProbe := r.probe(autos[0].tag)
	time.Sleep(300 * time.Millisecond) // requests in flight when the leader dies
	r.etcd.Kill(m)
	t.Logf("cycle %d: etcd member %d (raft leader) SIGKILLed", cycle, m)
	// Two members are a quorum: every node is healthy again within seconds.
	for i := range r.nodes {
		c := r.nodeClient(i)
		t0 := time.Now()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := c.Health(ctx)
			cancel()
			if err == nil {
				r.check1("healthz 200 with one etcd member down")
				break
			}
			if time.Since(t0) > 5*time.Second {
				t.Errorf("node %d: /healthz with two etcd members of three: %v", i, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(2 * time.Second)
	ps := stopProbe()
	r.figure("cycle %d: etcd raft leader SIGKILLed: %d probe requests (one attempt each) from 300ms before to ~%v after: %d succeeded, %d answered 503; the longest took %v (%s)",
		cycle, ps.n, time.Since(f.from).Round(100*time.Millisecond), ps.ok, ps.unavailable, ps.longest.Round(time.Millisecond), ps.longestWhat)
	if ps.longest > clAnswerBound+clAnswerSlack {
		t.Errorf("cycle %d: a request in flight when the etcd leader died took %v (%s); want within %v (+%v slack)",
			cycle, ps.longest, ps.longestWhat, clAnswerBound, clAnswerSlack)
	}
	for _, b := range ps.bad {
		t.Errorf("cycle %d: with the etcd leader dead, an answer that is neither a success nor a 503: %s", cycle, b)
	}
	r.check1("requests answered within the bound when the etcd leader dies")
	if err := r.etcd.Restart(m); err != nil {
		t.Fatal(err)
	}
	r.closeFault(f)
	// A request that reached the dead raft leader fails only when etcd gives
	// up on it: its request timeout (5s + 2 election timeouts) after the kill.
	r.nmu.Lock()
	if end := f.from.Add(clEtcdReqTimeout + time.Second); f.to.Before(end) {
		f.to = end
	}
	until := f.to
	r.nmu.Unlock()
	r.closeGap(stall, stall.from.Add(clEtcdReqTimeout+time.Second))
	t.Logf("cycle %d: etcd member %d restarted", cycle, m)
	time.Sleep(time.Until(until) + 500*time.Millisecond) // the next fault window starts after this one ends

	// Auto rotations fall due from just before the leader's death to while
	// no node leads: each must happen exactly once.
	now := time.Now()
	for j := range autos {
		autos[j].due = now.Add(-600*time.Millisecond + time.Duration(j)*500*time.Millisecond)
		if err := r.makeRotationDue(autos[j].tag, autos[j].due); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	r.autos = append(r.autos, autos...)
	for _, a := range autos {
		r.extraArts[a.tag] = append(r.extraArts[a.tag], a.art)
	}
	r.mu.Unlock()

	lt := r.currentLeader(clTakeoverMax)
	if lt == nil {
		t.Fatal("no scheduler leader before the SIGKILL of a node")
	}
	old := lt.cp
	f2 := r.openFault(fmt.Sprintf("cycle %d: nkms node %d (scheduler leader) SIGKILLed", cycle, old.node))
	g := r.openGap(time.Now())
	killedAt := r.killNode(old.node)
	t.Logf("cycle %d: nkms node %d (scheduler leader, pid %d) SIGKILLed", cycle, old.node, old.pid)
	next, ok := r.waitLeader(killedAt, old, clTakeoverMax+5*time.Second)
	if !ok {
		r.closeGap(g, time.Now())
		t.Errorf("cycle %d: no node logged %q within %v of the leader's SIGKILL", cycle, msgLeading, clTakeoverMax+5*time.Second)
	} else {
		r.closeGap(g, next.from)
		took := next.from.Sub(killedAt)
		if took > clTakeoverMax {
			t.Errorf("cycle %d: node %d took over the scheduler %v after the leader's SIGKILL; want within %v", cycle, next.cp.node, took, clTakeoverMax)
		}
		r.check1("scheduler taken over after the leader's death")
		r.figure("cycle %d: scheduler leader node %d SIGKILLed; node %d logged %q %v later (lease TTL %v)",
			cycle, old.node, next.cp.node, msgLeading, took.Round(time.Millisecond), etcdstore.LeaderTTL)
	}
	time.Sleep(time.Second)
	r.startNode(old.node)
	r.closeFault(f2)
	t.Logf("cycle %d: nkms node %d restarted on its data dir", cycle, old.node)
	time.Sleep(clGrace + 500*time.Millisecond)
}

// freshness changes a key on node A and, as soon as A answers, uses it on
// node B: B's very next request must see the change. The load runs meanwhile.
func (r *clRun) freshness(t *testing.T, iters int) {
	ctx := context.Background()
	type fkey struct {
		tag string
		v1  artifact // a ciphertext of version 1; version 2 is current
	}
	keys := make([]fkey, 3)
	for j := range keys {
		c := r.nodeClient(j)
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("fresh%d", j), KeyType: "AES256"})
		if err != nil {
			t.Fatal(err)
		}
		r.addExtra(k.KeyTag, "freshness")
		msg := []byte("version one of " + k.KeyTag)
		ct, err := c.Encrypt(ctx, k.KeyTag, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Rotate(ctx, k.KeyTag); err != nil {
			t.Fatal(err)
		}
		keys[j] = fkey{k.KeyTag, artifact{version: 1, text: ct, msg: msg}}
		r.mu.Lock()
		r.extraArts[k.KeyTag] = append(r.extraArts[k.KeyTag], keys[j].v1)
		r.mu.Unlock()
	}
	refusedN, allowedN := 0, 0
	for i := range iters {
		a := i % 3
		b := (a + 1 + (i/3)%2) % 3
		third := 3 - a - b
		A, B := r.nodeClient(a), r.nodeClient(b)
		k := keys[i%3]
		fail := func(what string, err error, want string) {
			t.Errorf("iteration %d: %s (A = node %d, B = node %d): %v; want %s", i, what, a, b, err, want)
		}
		mustOK := func(what string, err error) bool {
			if err != nil {
				fail(what, err, "success")
				return false
			}
			return true
		}
		// B refuses at once what A just forbade, and allows at once what A just allowed.
		refused := func(what string, err error, status int, code string) {
			if ce := (*client.Error)(nil); !asClientError(err, &ce) || !isCode(ce, status, code) {
				fail(what, err, fmt.Sprintf("%d %s", status, code))
				return
			}
			refusedN++
		}
		msg := []byte(fmt.Sprintf("fresh %d", i))
		encryptOnB := func(what string) {
			ct, err := B.Encrypt(ctx, k.tag, msg, nil)
			if mustOK(what, err) {
				allowedN++
				r.mu.Lock()
				if len(r.extraArts[k.tag]) < 40 {
					r.extraArts[k.tag] = append(r.extraArts[k.tag], artifact{version: versionOf(ct), text: ct, msg: msg})
				}
				r.mu.Unlock()
			}
		}

		if _, err := A.DisableKey(ctx, k.tag); !mustOK("disable on A", err) {
			continue
		}
		_, err := B.Encrypt(ctx, k.tag, msg, nil)
		refused("encrypt on B right after disable on A", err, 422, "UNPROCESSABLE_ENTITY")
		if _, err := A.EnableKey(ctx, k.tag); !mustOK("enable on A", err) {
			continue
		}
		encryptOnB("encrypt on B right after enable on A")

		if _, err := A.DisableVersion(ctx, k.tag, 1); !mustOK("disable version 1 on A", err) {
			continue
		}
		_, err = B.Decrypt(ctx, k.tag, k.v1.text, nil)
		refused("decrypt of a v1 ciphertext on B right after version 1 was disabled on A", err, 422, "UNPROCESSABLE_ENTITY")
		if _, err := A.EnableVersion(ctx, k.tag, 1); !mustOK("enable version 1 on A", err) {
			continue
		}
		if pt, err := B.Decrypt(ctx, k.tag, k.v1.text, nil); mustOK("decrypt of a v1 ciphertext on B right after version 1 was enabled on A", err) {
			if string(pt) != string(k.v1.msg) {
				t.Errorf("iteration %d: v1 ciphertext decrypts on node %d to %q", i, b, pt)
			}
			allowedN++
		}

		if _, err := A.RequestDeletion(ctx, k.tag); !mustOK("request deletion on A", err) {
			continue
		}
		_, err = B.Encrypt(ctx, k.tag, msg, nil)
		refused("encrypt on B right after deletion was requested on A", err, 422, "UNPROCESSABLE_ENTITY")
		_, err = B.Rotate(ctx, k.tag)
		refused("rotate on B right after deletion was requested on A", err, 422, "UNPROCESSABLE_ENTITY")
		if sc, err := A.CancelDeletion(ctx, k.tag); !mustOK("cancel deletion on A", err) {
			continue
		} else if sc.Status != stDisable {
			t.Errorf("iteration %d: cancel deletion answered %s, want DISABLE", i, sc.Status)
		}
		if info, err := B.GetKey(ctx, k.tag); mustOK("key info on B right after cancel on A", err) && (info.Status != stDisable || info.DestroyDate != nil) {
			t.Errorf("iteration %d: key info on node %d right after cancel on node %d: %s, destroyDate %v; want DISABLE, none", i, b, a, info.Status, millis(info.DestroyDate))
		}
		if _, err := A.EnableKey(ctx, k.tag); !mustOK("enable on A after the cancel", err) {
			continue
		}
		encryptOnB("encrypt on B right after enable on A (after a cancel)")

		// Delete Key (immediate): B answers 404 at once.
		dk, err := r.nodeClient(third).CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("freshdel%d", i), KeyType: "AES256"})
		if !mustOK("create on the third node", err) {
			continue
		}
		r.addExtra(dk.KeyTag, "freshness")
		if _, err := A.RequestDeletion(ctx, dk.KeyTag); !mustOK("request deletion on A", err) {
			continue
		}
		if err := A.DeleteKey(ctx, dk.KeyTag); !mustOK("delete key on A", err) {
			continue
		}
		r.extraGone(dk.KeyTag)
		r.mu.Lock()
		r.deletedNow[dk.KeyTag] = true
		r.mu.Unlock()
		_, err = B.GetKey(ctx, dk.KeyTag)
		refused("key info on B right after delete on A", err, 404, "NOT_FOUND")
		_, err = B.Encrypt(ctx, dk.KeyTag, msg, nil)
		refused("encrypt on B right after delete on A", err, 404, "NOT_FOUND")
	}
	// An access key revoked on A, a token generator replaced on A: B refuses
	// the next request that uses them (401).
	tk, err := r.nodeClient(0).CreateKey(ctx, client.CreateKeyRequest{KeyName: "freshtok", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	r.addExtra(tk.KeyTag, "freshness")
	if err := r.nodeClient(1).CreateTokenGenerator(ctx, tk.KeyTag); err != nil {
		t.Fatal(err)
	}
	unauthorized := func(what string, err error) {
		if ce := (*client.Error)(nil); !asClientError(err, &ce) || ce.Status != 401 {
			t.Errorf("%s: %v; want 401", what, err)
			return
		}
		refusedN++
	}
	for i := range 6 {
		a := i % 3
		b := (a + 1 + (i/3)%2) % 3
		A := r.nodeClient(a)
		cred, err := A.CreateAccessKey(ctx, 1, "crypto")
		if err != nil {
			t.Errorf("create access key on node %d: %v", a, err)
			continue
		}
		cb, err := client.New(r.nodeURL(b), cred.AccessKey, cred.SecretKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cb.Encrypt(ctx, tk.KeyTag, []byte("x"), nil); err != nil {
			t.Errorf("encrypt on node %d with an access key created on node %d: %v", b, a, err)
		} else {
			allowedN++
		}
		if err := A.RevokeAccessKey(ctx, cred.AccessKey); err != nil {
			t.Errorf("revoke access key on node %d: %v", a, err)
			continue
		}
		_, err = cb.Encrypt(ctx, tk.KeyTag, []byte("x"), nil)
		unauthorized(fmt.Sprintf("encrypt on node %d right after its access key was revoked on node %d", b, a), err)

		set, err := A.CreateTokenSet(ctx, tk.KeyTag, 1, 1)
		if err != nil {
			t.Errorf("create token set on node %d: %v", a, err)
			continue
		}
		tb, err := client.NewWithToken(r.nodeURL(b), set.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tb.Encrypt(ctx, tk.KeyTag, []byte("x"), nil); err != nil {
			t.Errorf("encrypt on node %d with a token issued on node %d: %v", b, a, err)
		} else {
			allowedN++
		}
		if err := A.ReplaceTokenGenerator(ctx, tk.KeyTag); err != nil {
			t.Errorf("replace the token generator on node %d: %v", a, err)
			continue
		}
		_, err = tb.Encrypt(ctx, tk.KeyTag, []byte("x"), nil)
		unauthorized(fmt.Sprintf("encrypt on node %d with a token right after its generator was replaced on node %d", b, a), err)
	}
	r.checkN("change on node A seen by node B's next request", refusedN+allowedN)
	r.figure("cross-node freshness: %d iterations over the 6 ordered node pairs under load (disable/enable, version disable/enable, request/cancel deletion, delete now), then 6 of access-key revocation and token-generator replacement: %d refusals and %d successes on B right after A, as A's change demands",
		iters, refusedN, allowedN)
}
