package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
	"github.com/nkms/nkms/store/internal/activityfilter"
)

// Reading usage logs (the layout is at the top of activity.go).

// scanChunk is how many entries one read of a keyword search returns.
const scanChunk = 256

// logEntry is an entry read from one of a key's logs.
type logEntry struct {
	log int            // which of the key's logs holds it (an index of logRange's)
	key string         // its etcd key
	id  string         // its entry key (time ‖ seq ‖ node): the order of entries across a key's logs
	a   *nkms.Activity // nil when read without its value
}

// logRange is the part of one of a key's logs that a query covers.
type logRange struct {
	prefix, lo, end string
}

// mergeNewest merges two lists of entries, each newest first, into one,
// newest first, of at most n entries.
func mergeNewest(x, y []logEntry, n int) []logEntry {
	out := make([]logEntry, 0, min(n, len(x)+len(y)))
	for len(out) < n && (len(x) > 0 || len(y) > 0) {
		if len(y) == 0 || len(x) > 0 && x[0].id > y[0].id {
			out, x = append(out, x[0]), x[1:]
		} else {
			out, y = append(out, y[0]), y[1:]
		}
	}
	return out
}

// Activities returns one page of a key's entries that match q, newest
// first, and the number of all matching entries.
func (s *Store) Activities(ctx context.Context, q nkms.ActivityQuery) ([]nkms.Activity, int, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	if q.PageNo < 1 || q.PageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	from, to := timeHex(q.From), timeHex(q.To)
	if from > to {
		return []nkms.Activity{}, 0, nil
	}
	var logs [2]logRange
	for i, refused := range []bool{false, true} {
		p := s.logPrefix(q.Tag, refused)
		logs[i] = logRange{prefix: p, lo: p + from, end: logEnd(p + to)}
	}
	skip := int64(math.MaxInt64 - q.PageSize)
	if int64(q.PageNo-1) <= skip/int64(q.PageSize) {
		skip = int64(q.PageNo-1) * int64(q.PageSize)
	}
	keyword := activityfilter.New(q)
	var err error
	for range 3 {
		var page []logEntry
		var total int
		if keyword.Empty() {
			page, total, err = s.activityPage(ctx, logs, skip, int64(q.PageSize))
		} else {
			page, total, err = s.activitySearch(ctx, logs, keyword, skip, int64(q.PageSize))
		}
		if !errors.Is(err, rpctypes.ErrCompacted) {
			if err != nil {
				return nil, 0, fmt.Errorf("etcd store: activities of key %s: %w", q.Tag, err)
			}
			as := make([]nkms.Activity, len(page))
			for i, e := range page {
				as[i] = *e.a
			}
			return as, total, nil
		}
		// etcd compacted the revision of the first read away: start again.
	}
	return nil, 0, fmt.Errorf("etcd store: activities of key %s: %w", q.Tag, err)
}

// activityPage returns the entries skip … skip+size-1 of the two logs'
// ranges, merged newest first, and the number of entries in the ranges.
// Every read is at the revision of the first.
func (s *Store) activityPage(ctx context.Context, logs [2]logRange, skip, size int64) ([]logEntry, int, error) {
	newestFirst := clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)
	var rev int64
	read := func(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.kv.Get(ctx, key, opts...)
		if err == nil && rev == 0 {
			rev = resp.Header.Revision
		}
		return resp, err
	}
	var lists [2][]logEntry
	total := 0
	for i, l := range logs {
		opts := []clientv3.OpOption{clientv3.WithRange(l.end), newestFirst, clientv3.WithLimit(skip + size)}
		if skip > 0 {
			opts = append(opts, clientv3.WithKeysOnly())
		}
		resp, err := read(l.lo, opts...)
		if err != nil {
			return nil, 0, err
		}
		total += int(resp.Count)
		if lists[i], err = entriesOf(resp.Kvs, i, l.prefix, skip == 0); err != nil {
			return nil, 0, err
		}
	}
	merged := mergeNewest(lists[0], lists[1], int(skip+size))
	if skip >= int64(len(merged)) {
		return []logEntry{}, total, nil
	}
	page := merged[skip:]
	if skip == 0 {
		return page, total, nil
	}
	// The page's entries of each log are a run of its keys: read their values.
	for i := range logs {
		var newest, oldest string
		for _, e := range page {
			if e.log == i {
				oldest = e.key
				if newest == "" {
					newest = e.key
				}
			}
		}
		if newest == "" {
			continue
		}
		resp, err := read(oldest, clientv3.WithRange(newest+"\x00"))
		if err != nil {
			return nil, 0, err
		}
		vals := map[string][]byte{}
		for _, kv := range resp.Kvs {
			vals[string(kv.Key)] = kv.Value
		}
		for i := range page {
			if v, ok := vals[page[i].key]; ok {
				if page[i].a, err = codec.UnmarshalActivity(v); err != nil {
					return nil, 0, err
				}
			}
		}
	}
	for _, e := range page {
		if e.a == nil {
			return nil, 0, fmt.Errorf("entry %s vanished at revision %d", e.key, rev)
		}
	}
	return page, total, nil
}

// entriesOf returns the entries of kvs, keys of log with prefix, decoded
// if values.
func entriesOf(kvs []*mvccpb.KeyValue, log int, prefix string, values bool) ([]logEntry, error) {
	es := make([]logEntry, len(kvs))
	for i, kv := range kvs {
		es[i] = logEntry{log: log, key: string(kv.Key), id: string(kv.Key[len(prefix):])}
		if values {
			a, err := codec.UnmarshalActivity(kv.Value)
			if err != nil {
				return nil, err
			}
			es[i].a = a
		}
	}
	return es, nil
}

// activitySearch returns the matches skip … skip+size-1 of keyword in the
// two logs' ranges, merged newest first, and the number of matches. It
// reads the ranges oldest first, at the revision of its first read, keeping
// the newest skip+size matches of each.
func (s *Store) activitySearch(ctx context.Context, logs [2]logRange, keyword activityfilter.Filter, skip, size int64) ([]logEntry, int, error) {
	keep := skip + size
	var rev int64
	var lists [2][]logEntry
	total := 0
	for i, l := range logs {
		var ring []logEntry // the newest matches, oldest at next once full
		next := 0
		for key := l.lo; ; {
			opts := []clientv3.OpOption{clientv3.WithRange(l.end), clientv3.WithLimit(scanChunk)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := s.kv.Get(ctx, key, opts...)
			if err != nil {
				return nil, 0, err
			}
			rev = resp.Header.Revision
			for _, kv := range resp.Kvs {
				if !keyword.MayMatch(kv.Value) {
					continue
				}
				a, err := codec.UnmarshalActivity(kv.Value)
				if err != nil {
					return nil, 0, err
				}
				if !keyword.Match(a) {
					continue
				}
				total++
				e := logEntry{log: i, key: string(kv.Key), id: string(kv.Key[len(l.prefix):]), a: a}
				if int64(len(ring)) < keep {
					ring = append(ring, e)
				} else {
					ring[next] = e
					next = (next + 1) % len(ring)
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
		lists[i] = slices.Concat(ring[next:], ring[:next])
		slices.Reverse(lists[i])
	}
	merged := mergeNewest(lists[0], lists[1], int(min(keep, math.MaxInt)))
	if skip >= int64(len(merged)) {
		return []logEntry{}, total, nil
	}
	return merged[skip:], total, nil
}

// LastActivity returns the key's newest entry that is not a refusal (the
// newest of its ordinary log); nkms.ErrNoActivity when it has none or does
// not exist.
func (s *Store) LastActivity(ctx context.Context, tag string) (*nkms.Activity, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	prefix := s.logPrefix(tag, false)
	resp, err := s.kv.Get(ctx, prefix, clientv3.WithRange(logEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return nil, fmt.Errorf("etcd store: last activity of key %s: %w", tag, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nkms.ErrNoActivity
	}
	a, err := codec.UnmarshalActivity(resp.Kvs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("etcd store: last activity of key %s: %w", tag, err)
	}
	return a, nil
}
