package etcd

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// Chunks of ordinary usage-log entries (the layout is at the top of
// activity.go). An append writes the ordinary entries of a key as chunks:
// one value (codec.MarshalActivityChunk) of several entries, under the
// entry key of its oldest entry, the entries in entry-key order, each with
// its entry key. Beside each chunk an index row
//
//	act/<tag*>/n<entry key>:<entries>
//
// (empty value) names it and its number of entries, so that a log's
// entries are counted from its number of rows and the index, without
// reading chunks; Delete drops it with the prefix. A chunk spans less than
// chunkSpan of entry times, so the entries of [From, To] are in the rows of
// [From-chunkSpan, To]. A run of fewer than Store.minChunk entries is
// stored one entry per row, as earlier versions stored every entry, and is
// read alike: under light load a log has no chunks, and counting it stays
// one count-only read; under load its chunks are few (a 10,000-entry log
// of chunks of defaultMinChunk entries or more has at most 312 index rows,
// which every append reads).

const (
	chunkSpan       = time.Minute
	defaultMinChunk = 32
	chunkIndexMark  = "n"
	maxChunkBytes   = maxTxnBytes / 4
	trimPage        = 64 // most rows per read of trimChunked; the first reads 2, the next ones twice as many
)

// pendingEntry is an ordinary entry of a batch, encoded.
type pendingEntry struct {
	id  string
	at  time.Time
	a   *nkms.Activity
	rec []byte
}

// logWrite is the puts of one row of a log: a chunk and its index row, or
// one entry.
type logWrite struct{ keys, vals []string }

func (w logWrite) bytes() int {
	n := 0
	for i := range w.keys {
		n += len(w.keys[i]) + len(w.vals[i])
	}
	return n
}

// chunkIndexPrefix is the prefix of the index rows of the chunks of tag's
// ordinary log.
func (s *Store) chunkIndexPrefix(tag string) string { return s.actPrefix(tag) + chunkIndexMark }

func chunkIndexKey(ip, id string, n int) string { return ip + id + ":" + strconv.Itoa(n) }

// chunkIndexEnd ends the index rows of the chunks whose entry key is at
// most id (a whole entry key) or starts with less (a time prefix).
func chunkIndexEnd(ip, id string) string { return ip + id + "\xff" }

// idTime is the time part of an entry key as an ordered number.
func idTime(id string) uint64 {
	b, err := hex.DecodeString(id[:16])
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// logWrites turns a log's entries of a batch into rows: sorted by entry
// key, runs spanning less than chunkSpan and maxChunkBytes become chunks.
func (s *Store) logWrites(l *keyLog, es []pendingEntry) []logWrite {
	slices.SortFunc(es, func(a, b pendingEntry) int { return strings.Compare(a.id, b.id) })
	ip := s.chunkIndexPrefix(l.tag)
	var out []logWrite
	flush := func(run []pendingEntry) {
		if len(run) < s.minChunk {
			for _, e := range run {
				out = append(out, logWrite{[]string{l.prefix + e.id}, []string{string(e.rec)}})
			}
			return
		}
		ces := make([]codec.ChunkEntry, len(run))
		recs := make([][]byte, len(run))
		for i, e := range run {
			ces[i], recs[i] = codec.ChunkEntry{ID: e.id}, e.rec
		}
		v, _ := codec.AppendActivityChunk(nil, ces, recs) // cannot fail: 1 <= len(run), equal lengths
		out = append(out, logWrite{
			[]string{l.prefix + run[0].id, chunkIndexKey(ip, run[0].id, len(run))},
			[]string{string(v), ""}})
	}
	start, size := 0, 0
	for i, e := range es {
		esize := len(e.id) + len(e.rec) + 8
		if i > start && (idTime(e.id)-idTime(es[start].id) >= uint64(chunkSpan) || size+esize > maxChunkBytes) {
			flush(es[start:i])
			start, size = i, 0
		}
		size += esize
	}
	if len(es) > start {
		flush(es[start:])
	}
	return out
}

// countOps are the reads of a txn that count the entries of tag's ordinary
// log (countOf): its rows, and its chunks' index rows.
func (s *Store) countOps(tag string) []clientv3.Op {
	p := s.logPrefix(tag, false)
	return []clientv3.Op{
		clientv3.OpGet(p, clientv3.WithRange(logEnd(p)), clientv3.WithCountOnly()),
		clientv3.OpGet(s.chunkIndexPrefix(tag), clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	}
}

// countOf is the number of entries from the responses of countOps.
func countOf(rs []*pb.ResponseOp) (int64, error) {
	n := rs[0].GetResponseRange().Count
	for _, kv := range rs[1].GetResponseRange().Kvs {
		c, err := indexCount(kv.Key)
		if err != nil {
			return 0, err
		}
		n += c - 1
	}
	return n, nil
}

// indexCount is the number of entries an index row names.
func indexCount(key []byte) (int64, error) {
	k := string(key)
	i := strings.LastIndexByte(k, ':')
	c, err := strconv.ParseInt(k[i+1:], 10, 64)
	if i < 0 || err != nil || c < 1 {
		return 0, fmt.Errorf("usage-log chunk index row %q of no count", k)
	}
	return c, nil
}

// logEntries decodes a row of the log with prefix: a chunk's entries, or
// the one entry of an entry row.
func logEntries(kv *mvccpb.KeyValue, prefix string) ([]codec.ChunkEntry, error) {
	if codec.IsActivityChunk(kv.Value) {
		es, err := codec.UnmarshalActivityChunk(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("row %s: %w", kv.Key, err)
		}
		for _, e := range es {
			if len(e.ID) != 48 {
				return nil, fmt.Errorf("row %s: entry key %q", kv.Key, e.ID)
			}
		}
		return es, nil
	}
	a, err := codec.UnmarshalActivity(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("row %s: %w", kv.Key, err)
	}
	return []codec.ChunkEntry{{ID: string(kv.Key[len(prefix):]), Activity: *a}}, nil
}

// readRow is a row read by a trim or a prune: its entries' ids and records,
// split but not decoded.
type readRow struct {
	key   string
	rev   int64
	chunk bool
	ids   []string
	recs  [][]byte
}

// logRow splits a row of the log with prefix: a chunk's entries, or the one
// entry of an entry row.
func logRow(kv *mvccpb.KeyValue, prefix string) (*readRow, error) {
	r := &readRow{key: string(kv.Key), rev: kv.ModRevision, chunk: codec.IsActivityChunk(kv.Value)}
	if !r.chunk {
		r.ids, r.recs = []string{string(kv.Key[len(prefix):])}, [][]byte{kv.Value}
		return r, nil
	}
	var err error
	if r.ids, r.recs, err = codec.SplitActivityChunk(kv.Value); err != nil {
		return nil, fmt.Errorf("row %s: %w", kv.Key, err)
	}
	for _, id := range r.ids {
		if len(id) != 48 {
			return nil, fmt.Errorf("row %s: entry key %q", kv.Key, id)
		}
	}
	return r, nil
}

// holdsAfter reports whether r holds an entry after cut.
func (r *readRow) holdsAfter(cut string) bool {
	return slices.ContainsFunc(r.ids, func(id string) bool { return id > cut })
}

// rewriteOps are the ops that replace row r of the log with prefix (index
// rows under ip) by a chunk of its entries after cut, and the bytes put. The
// kept records are copied as they are.
func rewriteOps(prefix, ip string, r *readRow, cut string) ([]clientv3.Op, int, error) {
	var kept []codec.ChunkEntry
	var recs [][]byte
	for i, id := range r.ids {
		if id > cut {
			kept, recs = append(kept, codec.ChunkEntry{ID: id}), append(recs, r.recs[i])
		}
	}
	ops := []clientv3.Op{clientv3.OpDelete(r.key)}
	if id := r.key[len(prefix):]; r.chunk {
		ops = append(ops, clientv3.OpDelete(chunkIndexKey(ip, id, len(r.ids))))
	}
	if len(kept) == 0 {
		return ops, 0, nil
	}
	v, err := codec.AppendActivityChunk(nil, kept, recs)
	if err != nil {
		return nil, 0, err
	}
	k := prefix + kept[0].ID
	ops = append(ops, clientv3.OpPut(k, string(v)), clientv3.OpPut(chunkIndexKey(ip, kept[0].ID, len(kept)), ""))
	return ops, len(k) + len(v), nil
}

// errLogChanged: a log changed between the read and the write of a trim or
// prune, which reads again.
var errLogChanged = errors.New("usage log changed")

// trimChunked cuts l's ordinary log to its newest l.limit entries: it
// counts the log and reads its oldest rows at one revision until it knows
// the entries to go, rewrites the chunks that also hold entries to stay
// (each in a txn that holds while the chunk is as read), then deletes the
// rows and index rows up to the newest entry to go in a txn that holds while
// no row of that range changed since the read and the key is the one
// appended to. Counting at the revision of the rows read matters: a count
// from before another store's trim would make this one cut too much. When
// the log changed it tries again, up to 3 times; a log that keeps changing
// is trimmed by its appenders.
func (s *Store) trimChunked(ctx context.Context, l *keyLog) error {
	if l.count <= l.limit {
		return nil
	}
	for range 3 {
		err := s.trimOnce(ctx, l)
		if !errors.Is(err, errLogChanged) {
			if err != nil {
				return fmt.Errorf("etcd store: trim activities of key %s: %w", l.tag, err)
			}
			return nil
		}
	}
	return nil
}

func (s *Store) trimOnce(ctx context.Context, l *keyLog) error {
	counted, err := s.kv.Txn(ctx).Then(s.countOps(l.tag)...).Commit()
	if err != nil {
		return err
	}
	count, err := countOf(counted.Responses)
	if err != nil {
		return err
	}
	excess := count - l.limit
	if excess <= 0 {
		return nil // trimmed by another store meanwhile
	}
	type ref struct {
		id  string
		row *readRow
	}
	var pending []ref
	var gone int64
	var cut string
	var rows []*readRow
	rev := counted.Header.Revision
	for from, page := l.prefix, int64(2); ; page = min(2*page, trimPage) {
		resp, err := s.kv.Get(ctx, from, clientv3.WithRange(logEnd(l.prefix)), clientv3.WithLimit(page), clientv3.WithRev(rev))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			r, err := logRow(kv, l.prefix)
			if err != nil {
				return err
			}
			rows = append(rows, r)
			for _, id := range r.ids {
				pending = append(pending, ref{id, r})
			}
		}
		more := resp.More && len(resp.Kvs) > 0
		// Every entry up to the last row's key is known: rows hold no
		// entry older than their key.
		bound := ""
		if more {
			bound = string(resp.Kvs[len(resp.Kvs)-1].Key[len(l.prefix):])
		}
		slices.SortFunc(pending, func(a, b ref) int { return strings.Compare(a.id, b.id) })
		for len(pending) > 0 && gone < excess && (!more || pending[0].id <= bound) {
			cut, pending, gone = pending[0].id, pending[1:], gone+1
		}
		if gone == excess || !more {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if gone < excess {
		return errLogChanged // fewer entries than counted
	}
	ip := s.chunkIndexPrefix(l.tag)
	keyCmp := clientv3.Compare(clientv3.CreateRevision(s.keyKey(l.tag)), "=", l.keyRev)
	// Rewrite the rows up to cut that hold entries after it.
	var ops []clientv3.Op
	var cmps []clientv3.Cmp
	size := 0
	commit := func() error {
		if len(ops) == 0 {
			return nil
		}
		resp, err := s.kv.Txn(ctx).If(append(cmps, keyCmp)...).Then(ops...).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return errLogChanged
		}
		ops, cmps, size = nil, nil, 0
		return nil
	}
	for _, r := range rows {
		if r.key[len(l.prefix):] > cut || !r.holdsAfter(cut) {
			continue // after the cut, or wholly before it
		}
		rops, n, err := rewriteOps(l.prefix, ip, r, cut)
		if err != nil {
			return err
		}
		if len(ops) > 0 && (len(ops)+len(rops)+len(cmps)+2 > s.maxOps || size+n > maxTxnBytes) {
			if err := commit(); err != nil {
				return err
			}
		}
		ops, size = append(ops, rops...), size+n
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.key), "=", r.rev))
	}
	if err := commit(); err != nil {
		return err
	}
	end := l.prefix + cut + "\x00"
	cmps = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(l.prefix), "<", rev+1).WithRange(end)}
	ops = []clientv3.Op{clientv3.OpDelete(l.prefix, clientv3.WithRange(end)), clientv3.OpDelete(ip, clientv3.WithRange(chunkIndexEnd(ip, cut)))}
	return commit()
}
