package etcd

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

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
	// Chunks that start up to chunkSpan before From may hold entries of the
	// range: with chunks about, the ordinary log is read from there.
	ip := s.chunkIndexPrefix(q.Tag)
	ext := logRange{prefix: logs[0].prefix, lo: logs[0].prefix + timeHex(q.From.Add(-chunkSpan)), end: logs[0].end}
	skip := int64(math.MaxInt64 - q.PageSize)
	if int64(q.PageNo-1) <= skip/int64(q.PageSize) {
		skip = int64(q.PageNo-1) * int64(q.PageSize)
	}
	keyword := activityfilter.New(q)
	var err error
	for range 3 {
		var page []logEntry
		var total int
		chunked := !keyword.Empty()
		if !chunked {
			var resp *clientv3.GetResponse
			resp, err = s.kv.Get(ctx, ip+timeHex(q.From.Add(-chunkSpan)), clientv3.WithRange(chunkIndexEnd(ip, to)), clientv3.WithCountOnly())
			if err != nil {
				return nil, 0, fmt.Errorf("etcd store: activities of key %s: %w", q.Tag, err)
			}
			chunked = resp.Count > 0
		}
		if !chunked {
			page, total, err = s.activityPage(ctx, logs, skip, int64(q.PageSize))
			chunked = errors.Is(err, errChunked) // a chunk was appended since the count
		}
		if chunked {
			page, total, err = s.activityScan(ctx, [2]logRange{ext, logs[1]}, from, to, keyword, skip, int64(q.PageSize))
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
				if codec.IsActivityChunk(v) {
					return nil, 0, errChunked
				}
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
			if codec.IsActivityChunk(kv.Value) {
				return nil, errChunked
			}
			a, err := codec.UnmarshalActivity(kv.Value)
			if err != nil {
				return nil, err
			}
			es[i].a = a
		}
	}
	return es, nil
}

// errChunked: activityPage met a chunk (its reads count rows, not entries).
var errChunked = errors.New("usage log holds chunks")

// activityScan returns the matches skip … skip+size-1 of keyword in the
// two logs' ranges whose entry keys' times are in [from, to], merged newest
// first, and the number of matches. It reads the ranges in reads of
// scanChunk rows, at the revision of its first read, keeping the newest
// skip+size matches.
func (s *Store) activityScan(ctx context.Context, logs [2]logRange, from, to string, keyword activityfilter.Filter, skip, size int64) ([]logEntry, int, error) {
	keep := int(min(skip+size, math.MaxInt/4))
	var rev int64
	var kept []logEntry
	newestFirst := func() {
		slices.SortFunc(kept, func(a, b logEntry) int { return strings.Compare(b.id, a.id) })
	}
	total := 0
	for i, l := range logs {
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
				es, err := logEntries(kv, l.prefix)
				if err != nil {
					return nil, 0, err
				}
				for j := range es {
					e := &es[j]
					if t := e.ID[:16]; t < from || t > to || !keyword.Match(&e.Activity) {
						continue
					}
					total++
					kept = append(kept, logEntry{log: i, key: string(kv.Key), id: e.ID, a: &e.Activity})
				}
				if len(kept) > 2*keep+1024 {
					newestFirst()
					kept = kept[:keep]
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				break
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	newestFirst()
	if skip >= int64(len(kept)) {
		return []logEntry{}, total, nil
	}
	return kept[skip:min(int64(len(kept)), skip+size)], total, nil
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
	// Chunks that start up to chunkSpan before the newest row may hold
	// newer entries: with any, read the rows from there.
	kvs := resp.Kvs
	newest := string(kvs[0].Key[len(prefix):])
	b, err := hex.DecodeString(newest[:min(16, len(newest))])
	if err != nil || len(b) != 8 {
		return nil, fmt.Errorf("etcd store: last activity of key %s: row %s", tag, kvs[0].Key)
	}
	since := binary.BigEndian.Uint64(b) - min(binary.BigEndian.Uint64(b), uint64(chunkSpan))
	lo := hex.EncodeToString(binary.BigEndian.AppendUint64(nil, since))
	ip := s.chunkIndexPrefix(tag)
	chunks, err := s.kv.Get(ctx, ip+lo, clientv3.WithRange(ip+"\xff"), clientv3.WithCountOnly(), clientv3.WithRev(resp.Header.Revision))
	if err != nil {
		return nil, fmt.Errorf("etcd store: last activity of key %s: %w", tag, err)
	}
	if chunks.Count > 0 {
		all, err := s.kv.Get(ctx, prefix+lo, clientv3.WithRange(logEnd(prefix)), clientv3.WithRev(resp.Header.Revision))
		if err != nil {
			return nil, fmt.Errorf("etcd store: last activity of key %s: %w", tag, err)
		}
		kvs = all.Kvs
	}
	var last *codec.ChunkEntry
	for _, kv := range kvs {
		es, err := logEntries(kv, prefix)
		if err != nil {
			return nil, fmt.Errorf("etcd store: last activity of key %s: %w", tag, err)
		}
		for i := range es {
			if last == nil || es[i].ID > last.ID {
				last = &es[i]
			}
		}
	}
	return &last.Activity, nil
}
