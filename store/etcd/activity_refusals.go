package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// Refusals (nkms.Activity.Refused) live in a log of their own under each
// key's prefix (see the top of activity.go). AppendActivities folds a
// batch's refusals of one group (nkms.RefusalGroup) into one entry, then,
// per key, reads the refusals of the minutes concerned and, in one txn,
// rewrites the entry of each group that has one and puts the others as new
// entries, on the condition that no refusal of those minutes was put since
// the read (a range compare of mod revisions) and that no entry it rewrites
// was removed. When another store's append came first (this store's appends
// to one key's refusals queue on a lock),
// it reads and tries again, up to refusalRetries times, and then stores the
// rest as new entries: no call is lost, and a group has one entry per minute
// unless appends kept racing for it that long.

// refusedMark follows a key's prefix in the keys of its refusals.
const refusedMark = "r"

// refusalRetries is how many times appendRefusals reads again after a
// conflicting append.
const refusalRetries = 10

// logPrefix is the prefix of the entries of the log of the key with tag
// that holds refusals (refused) or ordinary entries.
func (s *Store) logPrefix(tag string, refused bool) string {
	if refused {
		return s.actPrefix(tag) + refusedMark
	}
	return s.actPrefix(tag)
}

// logEnd is the end of the range of the log whose entries' keys start with
// p: "g" follows every hex digit of an entry key.
func logEnd(p string) string { return p + "g" }

// pendingRefusal is a refusal entry of a batch, with the entry key it gets
// if its group has no entry yet.
type pendingRefusal struct {
	a  nkms.Activity
	id string
}

// appendRefusals stores refusals (of any keys; ids are their entry keys)
// as described at the top of this file, and returns the refusal logs it
// wrote to, each to be trimmed to limit entries (<= 0: no limit).
func (s *Store) appendRefusals(ctx context.Context, refusals []nkms.Activity, ids []string, limit int) ([]*keyLog, error) {
	byGroup := map[nkms.RefusalGroup]*pendingRefusal{}
	byTag := map[string][]*pendingRefusal{}
	var tags []string
	for i := range refusals {
		g := refusals[i].RefusalGroup()
		if p := byGroup[g]; p != nil {
			p.a.AddRefusals(&refusals[i])
			continue
		}
		p := &pendingRefusal{refusals[i], ids[i]}
		byGroup[g] = p
		tag := refusals[i].Tag
		if byTag[tag] == nil {
			tags = append(tags, tag)
		}
		byTag[tag] = append(byTag[tag], p)
	}
	// A txn carries up to two compares (one per minute, one per entry
	// rewritten) and one put per entry, and one more compare, the marker
	// and two reads.
	chunk := max((s.maxOps-3)/2, 1)
	logs := make([]*keyLog, 0, len(tags))
	for _, tag := range tags {
		l := &keyLog{tag: tag, prefix: s.logPrefix(tag, true), limit: int64(limit)}
		for ps := byTag[tag]; len(ps) > 0 && !l.gone; {
			n := min(len(ps), chunk)
			if err := s.putRefusals(ctx, l, ps[:n]); err != nil {
				return nil, fmt.Errorf("etcd store: append refusals of key %s: %w", tag, err)
			}
			ps = ps[n:]
		}
		logs = append(logs, l)
	}
	return logs, nil
}

// putRefusals stores ps, refusals of l's key of distinct groups, in one
// txn: added to their groups' entries where these exist, as new entries
// otherwise. It sets what trimLogs needs to know of l, or l.gone.
func (s *Store) putRefusals(ctx context.Context, l *keyLog, ps []*pendingRefusal) error {
	// This store's appends to one refusal log queue here, so that only other
	// stores' appends can make the txn fail.
	unlock, err := s.locks.Lock(ctx, l.prefix)
	if err != nil {
		return err
	}
	defer unlock()
	keyKey := s.keyKey(l.tag)
	for attempt := 0; ; attempt++ {
		var found map[nkms.RefusalGroup]*storedRefusal
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(keyKey), ">", 0)}
		if attempt < refusalRetries {
			var unchanged []clientv3.Cmp
			var err error
			if found, unchanged, err = s.readRefusals(ctx, l.prefix, ps); err != nil {
				return err
			}
			cmps = append(cmps, unchanged...)
		}
		var then []clientv3.Op
		added := 0
		for _, p := range ps {
			key, a := l.prefix+p.id, &p.a
			if f := found[p.a.RefusalGroup()]; f != nil {
				merged := f.a
				merged.AddRefusals(&p.a)
				key, a = f.key, &merged
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(f.key), "=", f.rev))
			} else {
				added++
			}
			rec, err := codec.MarshalActivity(a)
			if err != nil {
				return err
			}
			then = append(then, clientv3.OpPut(key, string(rec)))
		}
		then = append(then, clientv3.OpPut(s.actMarker(l.tag), ""),
			clientv3.OpGet(l.prefix, clientv3.WithRange(logEnd(l.prefix)), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(max(added, 1)))),
			clientv3.OpGet(keyKey, clientv3.WithKeysOnly()))
		resp, err := s.kv.Txn(ctx).If(cmps...).Then(then...).Else(clientv3.OpGet(keyKey, clientv3.WithKeysOnly())).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			n := len(ps)
			rr := resp.Responses[n+1].GetResponseRange()
			l.count, l.oldest = rr.Count, keysOf(rr.Kvs)
			if kv := first(resp.Responses[n+2].GetResponseRange().Kvs); kv != nil {
				l.keyRev, l.probed = kv.CreateRevision, true
			}
			l.added += added
			return nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			l.gone = true // the key does not exist: drop its entries
			return nil
		}
		// Another append put a refusal of our minutes since the read: again.
	}
}

// storedRefusal is a refusal entry as read, with its key and revision.
type storedRefusal struct {
	key string
	rev int64
	a   nkms.Activity
}

// readRefusals returns the entries, by group, of the refusal log with
// prefix in the minutes of ps, and per minute the compare that holds while
// no refusal of that minute was put since. Of two entries of one group
// (appends that raced until refusalRetries ran out), the older one takes
// the new calls.
func (s *Store) readRefusals(ctx context.Context, prefix string, ps []*pendingRefusal) (map[nkms.RefusalGroup]*storedRefusal, []clientv3.Cmp, error) {
	found := map[nkms.RefusalGroup]*storedRefusal{}
	var unchanged []clientv3.Cmp
	read := map[int64]bool{}
	for _, p := range ps {
		minute := nkms.RefusalMinute(p.a.Time)
		if read[minute.Unix()] {
			continue
		}
		read[minute.Unix()] = true
		from, end := prefix+timeHex(minute), prefix+timeHex(minute.Add(time.Minute))
		resp, err := s.kv.Get(ctx, from, clientv3.WithRange(end))
		if err != nil {
			return nil, nil, err
		}
		unchanged = append(unchanged, clientv3.Compare(clientv3.ModRevision(from), "<", resp.Header.Revision+1).WithRange(end))
		for _, kv := range resp.Kvs {
			a, err := codec.UnmarshalActivity(kv.Value)
			if err != nil {
				return nil, nil, err
			}
			if g := a.RefusalGroup(); a.Refused && found[g] == nil {
				found[g] = &storedRefusal{key: string(kv.Key), rev: kv.ModRevision, a: *a}
			}
		}
	}
	return found, unchanged, nil
}
