package chaos

import (
	"context"
	"flag"
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
// (cluster_helpers_test.go) that checks every answer, whichever node gives
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

// uniqueNames sends creates of one name (in different cases) from three
// goroutines per node at once, and renames of three keys to one name from
// the three nodes at once: exactly one of each group succeeds.
func (r *clRun) uniqueNames(t *testing.T, rounds int) {
	ctx := context.Background()
	type result struct {
		node int
		name string
		key  *client.Key
		err  error
	}
	conflict := func(err error) bool {
		var ce *client.Error
		return asClientError(err, &ce) && isCode(ce, 409, "CONFLICT") && strings.Contains(ce.Message, "already exists")
	}
	creates, renames := 0, 0
	for round := range rounds {
		base := fmt.Sprintf("dup%02dname", round)
		variants := []string{base, strings.ToUpper(base), "Dup" + base[3:]}
		const goroutines = 9
		results := make([]result, goroutines)
		startGate := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			node, name := g%3, variants[g/3]
			c := r.nodeClient(node)
			wg.Go(func() {
				<-startGate
				k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: name, KeyType: "AES256"})
				results[g] = result{node, name, k, err}
			})
		}
		close(startGate)
		wg.Wait()
		var winners []result
		for _, res := range results {
			switch {
			case res.err == nil:
				winners = append(winners, res)
				r.addExtra(res.key.KeyTag, "unique-names")
			case !conflict(res.err):
				t.Errorf("round %d: create %q on node %d: %v; want success or 409 CONFLICT", round, res.name, res.node, res.err)
			}
		}
		creates += goroutines
		if len(winners) != 1 {
			t.Errorf("round %d: %d of %d concurrent creates of %q (any case) on 3 nodes succeeded, want 1", round, len(winners), goroutines, base)
			continue
		}
		for i := range r.nodes {
			info, err := r.nodeClient(i).GetKey(ctx, winners[0].key.KeyTag)
			if err != nil || info.KeyName != winners[0].name {
				t.Errorf("round %d: the winner %s on node %d: %+v %v", round, winners[0].key.KeyTag, i, info, err)
			}
		}
		r.check1("one of concurrent creates of a name succeeds")
	}
	for round := range max(rounds/2, 1) {
		target := fmt.Sprintf("Ren%02dName", round)
		tags := make([]string, 3)
		for j := range tags {
			k, err := r.nodeClient(j).CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("ren%02dfrom%d", round, j), KeyType: "AES256"})
			if err != nil {
				t.Fatal(err)
			}
			tags[j] = k.KeyTag
			r.addExtra(k.KeyTag, "unique-names")
		}
		errs := make([]error, 3)
		startGate := make(chan struct{})
		var wg sync.WaitGroup
		for j := range tags {
			c := r.nodeClient(j)
			name := target
			if j == 1 {
				name = strings.ToLower(target)
			}
			wg.Go(func() {
				<-startGate
				_, errs[j] = c.UpdateName(ctx, tags[j], name)
			})
		}
		close(startGate)
		wg.Wait()
		won := 0
		for j, err := range errs {
			switch {
			case err == nil:
				won++
			case !conflict(err):
				t.Errorf("round %d: rename on node %d: %v; want success or 409 CONFLICT", round, j, err)
			}
		}
		renames += 3
		named := 0
		for j, tag := range tags {
			info, err := r.nodeClient((j+1)%3).GetKey(ctx, tag)
			if err != nil {
				t.Errorf("round %d: key info of %s: %v", round, tag, err)
				continue
			}
			if strings.EqualFold(info.KeyName, target) {
				named++
			}
		}
		if won != 1 || named != 1 {
			t.Errorf("round %d: %d of 3 concurrent renames to %q succeeded and %d keys bear the name; want 1 and 1", round, won, target, named)
		}
		r.check1("one of concurrent renames to a name succeeds")
	}
	r.figure("unique names: %d concurrent creates of %d names (3 nodes, mixed case) and %d concurrent renames to %d names: one success each, the rest 409 CONFLICT",
		creates, rounds, renames, max(rounds/2, 1))
}

// cancelRace requests deletion of n keys and cancels each on a node that
// does not lead the scheduler, around its destroyDate (from 60ms before to
// 260ms after; passes run every 200ms): every acknowledged cancel must keep
// its key, and a cancel may find its key gone only after it was due.
func (r *clRun) cancelRace(t *testing.T, n int) {
	ctx := context.Background()
	lt := r.currentLeader(clTakeoverMax)
	if lt == nil {
		t.Fatal("no scheduler leader")
	}
	var others []int
	for i := range r.nodes {
		if i != lt.cp.node {
			others = append(others, i)
		}
	}
	type rkey struct {
		tag            string
		art            artifact
		destroyAt      time.Time
		offset         time.Duration
		node           int
		sent, answered time.Time
		sc             *client.StatusChange
		err            error
	}
	keys := make([]*rkey, n)
	for j := range keys {
		c := r.nodeClient(j % 3)
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: fmt.Sprintf("race%d", j), KeyType: "AES256"})
		if err != nil {
			t.Fatal(err)
		}
		r.addExtra(k.KeyTag, "cancel-race")
		msg := []byte("race " + k.KeyTag)
		ct, err := c.Encrypt(ctx, k.KeyTag, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[j] = &rkey{tag: k.KeyTag, art: artifact{version: 1, text: ct, msg: msg},
			offset: -60*time.Millisecond + time.Duration(j)*320*time.Millisecond/time.Duration(n), node: others[j%len(others)]}
	}
	for j, k := range keys {
		sc, err := r.nodeClient(j%3).RequestDeletion(ctx, k.tag)
		if err != nil {
			t.Fatal(err)
		}
		k.destroyAt = time.UnixMilli(sc.StatusDate).Add(clWindow)
		time.Sleep(25 * time.Millisecond) // spread the due times over a few scheduler passes
	}
	var wg sync.WaitGroup
	for _, k := range keys {
		c := r.nodeClient(k.node)
		wg.Go(func() {
			time.Sleep(time.Until(k.destroyAt.Add(k.offset)))
			k.sent = time.Now()
			k.sc, k.err = c.CancelDeletion(ctx, k.tag)
			k.answered = time.Now()
		})
	}
	wg.Wait()
	time.Sleep(2*clInterval + 500*time.Millisecond) // a purge that would wrongly follow an acknowledged cancel has run by now
	won, kept, lost, wonAfterDue := 0, 0, 0, 0
	var lostOffsets, wonOffsets []time.Duration
	for _, k := range keys {
		switch {
		case k.err == nil:
			won++
			wonOffsets = append(wonOffsets, k.sent.Sub(k.destroyAt))
			if k.sent.After(k.destroyAt) {
				wonAfterDue++
			}
			if k.sc.Status != stDisable {
				t.Errorf("cancel of %s on node %d answered %s, want DISABLE", k.tag, k.node, k.sc.Status)
			}
			ok := true
			for i := range r.nodes {
				info, err := r.nodeClient(i).GetKey(ctx, k.tag)
				if err != nil {
					t.Errorf("key %s, whose cancel node %d acknowledged %v after its destroyDate, on node %d: %v",
						k.tag, k.node, k.sent.Sub(k.destroyAt).Round(time.Millisecond), i, err)
					ok = false
					continue
				}
				if info.Status != stDisable || info.DestroyDate != nil {
					t.Errorf("key %s after an acknowledged cancel, on node %d: %s, destroyDate %v; want DISABLE, none", k.tag, i, info.Status, millis(info.DestroyDate))
					ok = false
				}
				r.check1("acknowledged cancel kept its key")
			}
			if !ok {
				r.extraGone(k.tag) // reported; the later checks need not repeat it
				continue
			}
			kept++
			if _, err := r.nodeClient(k.node).EnableKey(ctx, k.tag); err != nil {
				t.Errorf("enable %s after its cancel: %v", k.tag, err)
				continue
			}
			r.mu.Lock()
			r.extraArts[k.tag] = append(r.extraArts[k.tag], k.art)
			r.mu.Unlock()
		case isNotFound(k.err):
			lost++
			lostOffsets = append(lostOffsets, k.sent.Sub(k.destroyAt))
			if k.answered.Before(k.destroyAt) {
				t.Errorf("cancel of %s on node %d answered 404 at %v, before the destroyDate %v",
					k.tag, k.node, k.answered.Format(time.StampMilli), k.destroyAt.Format(time.StampMilli))
			}
			for i := range r.nodes {
				if _, err := r.nodeClient(i).GetKey(ctx, k.tag); !isNotFound(err) {
					t.Errorf("key %s, destroyed before its cancel, on node %d: %v; want 404", k.tag, i, err)
				}
			}
			r.check1("cancel that lost the race found the key gone everywhere")
			r.extraGone(k.tag)
			r.purged(k.tag, k.destroyAt, k.destroyAt)
		default:
			t.Errorf("cancel of %s on node %d, %v after its destroyDate: %v; want success or 404",
				k.tag, k.node, k.sent.Sub(k.destroyAt).Round(time.Millisecond), k.err)
		}
	}
	span := func(ds []time.Duration) string {
		if len(ds) == 0 {
			return "none"
		}
		slices.Sort(ds)
		return fmt.Sprintf("sent %v..%v after destroyDate", ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	r.figure("cancel racing the purge on a non-leader node: %d keys; %d cancels acknowledged (%s; %d after the destroyDate), %d of their keys kept; %d found the key destroyed (%s)",
		n, won, span(wonOffsets), wonAfterDue, kept, lost, span(lostOffsets))
	if won == 0 || lost == 0 {
		t.Logf("the race had a single outcome this time (%d won, %d lost)", won, lost)
	}
}

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
		out := cp.p.stderr.String()
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
