package chaos

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/client"
)

// TestCluster's races under load: creates and renames of one name on
// different nodes at once, and cancels racing the purge of their key.

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
