package etcd

// Usage logs (nkms.ActivityLog). Layout:
//
//	act/<tag*>/<entry key>    ordinary entries: a chunk of several entries
//	                          (codec.MarshalActivityChunk) under the entry key
//	                          of its oldest, or one activity record (store/codec)
//	act/<tag*>/n<entry key>:<n>  index row of a chunk of n entries (empty)
//	act/<tag*>/r<entry key>   activity record: refusals (nkms.Activity.Refused)
//	actkeys/<tag*>            "" while the key's log may hold entries
//
// A key's two logs are thus the ranges [p, p+"g") and [p+"r", p+"rg") of its
// prefix p ("g" follows every hex digit), the chunk index [p+"n", p+"o"):
// each log has its own trim limit (maxPerKey, nkms.RefusalsPerKey(maxPerKey)),
// so that refusals never push an ordinary entry out; LastActivity reads the
// ordinary log only; Activities reads both and merges them by entry key;
// Delete drops the whole prefix. Refusals are aggregated
// (activity_refusals.go). Chunks are described in activity_chunks.go: an
// append writes the ordinary entries of a key as chunks spanning less than
// chunkSpan (a run of one entry as a record, as earlier versions wrote every
// entry: both are read).
//
// An entry key is 48 hex digits: the entry's time (8 bytes, as in the due
// index) ‖ a sequence number (8 bytes) ‖ the store's node id (8 random bytes
// drawn by Open). The sequence is a hybrid clock: at least one more than the
// store's last and at least the wall clock in Unix ns, so entries of one
// store come in append order and entries of several stores roughly so; the
// node id keeps the keys of different stores apart. Entry order is time
// order, then append order, oldest first; rows are in the order of their
// oldest entries, and a chunk's entries may interleave with other rows'.
//
// Costs, with n the entries of a key's log that the call concerns and c its
// chunks (index rows):
//
//   - AppendActivities: per key one row per chunk (up to maxChunkBytes, a
//     Recorder batch of 500 is one or two) plus its index row, in one txn
//     per ~100 rows, which needs no read and never conflicts with other
//     appends: for every key of the batch a nested txn puts the rows and the
//     marker only if the key exists. With maxPerKey > 0 the same nested txn
//     counts the log's rows and reads its c index rows (keys only). A log
//     over the limit is then cut (trimChunked): reads of its oldest rows (2,
//     then 4, …) until the entries to go are known, one txn per chunk that
//     keeps some of its entries (rewritten under its new oldest entry key),
//     and one txn of two range deletes. A batch may be split into several
//     txns: entries of one key commit in order, and a batch that fails
//     half-way leaves its first part stored.
//   - Refusals of a batch: folded in memory per group, then per key one read
//     of the minute's refusals and one txn (see activity_refusals.go).
//   - Activities without keyword, when no chunk starts in [From-chunkSpan,
//     To] (one count-only read of the index): per log one range read, newest
//     first, limited to the page's end; with pageNo > 1 keys-only reads then
//     the page's values, all at the revision of the first read. etcd sorts a
//     range in descending order after reading all of it, so the server reads
//     the n entries of [From, To].
//   - Activities with keyword or chunks: the rows of [From-chunkSpan, To] of
//     the ordinary log and [From, To] of the refusals in reads of 256 rows,
//     at one revision, decoded and filtered here; O(n) like store/bolt.
//   - LastActivity: one read of the ordinary log, newest first, limit 1 (the
//     server reads the log's rows to sort them), a count of the index rows
//     of the last chunkSpan, and when there are any, a read of those rows.
//   - PruneActivities: one keys-only read per 1000 markers (the logs that may
//     hold entries; not the keys without logs, nor the entries), then per
//     ~20 keys one read of the rows of the chunkSpan below the cut-off, one
//     txn per chunk that holds entries on both sides (rewritten), and one txn
//     of three range deletes below the cut-off and a count, and one txn to
//     drop the markers of the logs left empty. The server's work is the rows
//     removed, not all rows.
//
// A marker is put with every append of entries and dropped by Delete, or by
// PruneActivities when it leaves the log empty and the marker has not been
// put again since it looked (mod revision compare), so every log that holds
// entries has a marker.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// markerChunk is how many markers one read of PruneActivities returns.
const markerChunk = 1000

// nextSeq reserves n sequence numbers and returns the first.
func (s *Store) nextSeq(n int) uint64 {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	first := max(s.seq+1, uint64(time.Now().UnixNano()))
	s.seq = first + uint64(n) - 1
	return first
}

// entryKey is the hex entry key of an entry at t with sequence number seq.
func (s *Store) entryKey(t time.Time, seq uint64) string {
	b := make([]byte, 0, 24)
	b = appendTime(b, t)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, s.node[:]...)
	return hex.EncodeToString(b)
}

// logPiece is a run of entries of one key that goes into one txn.
type logPiece struct {
	log         *keyLog
	keys, vals  []string
	last        bool // the key's last piece: it counts the log (maxPerKey > 0)
	bytes, cost int
}

// keyLog is what AppendActivities knows of one of a key's logs.
type keyLog struct {
	tag     string
	prefix  string // of the log's entries (logPrefix)
	limit   int64  // most entries it keeps; <= 0: no limit
	added   int
	gone    bool     // the key does not exist
	count   int64    // entries after the batch, from the last piece's txn
	oldest  []string // keys of the oldest entries, from the same txn
	keyRev  int64    // the key's create revision, from the same txn
	probed  bool
	chunked bool // an ordinary log: it may hold chunks (activity_chunks.go)
}

// AppendActivities stores the entries of existing keys, folds refusals
// into their groups' entries, and trims each touched key's logs to their
// newest maxPerKey ordinary entries and nkms.RefusalsPerKey(maxPerKey)
// refusals. The batch may take several txns (see the top of this file).
func (s *Store) AppendActivities(ctx context.Context, entries []nkms.Activity, maxPerKey int) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	logs := map[string]*keyLog{}
	var order []*keyLog
	byLog := map[*keyLog][]pendingEntry{}
	var refusals []nkms.Activity
	var refusalIDs []string
	seq := s.nextSeq(len(entries))
	for i := range entries {
		if entries[i].Refused {
			refusals = append(refusals, entries[i])
			refusalIDs = append(refusalIDs, s.entryKey(entries[i].Time, seq+uint64(i)))
			continue
		}
		rec, err := codec.MarshalActivity(&entries[i])
		if err != nil {
			return err
		}
		tag := entries[i].Tag
		l := logs[tag]
		if l == nil {
			l = &keyLog{tag: tag, prefix: s.logPrefix(tag, false), limit: int64(maxPerKey), chunked: true}
			logs[tag] = l
			order = append(order, l)
		}
		l.added++
		byLog[l] = append(byLog[l], pendingEntry{id: s.entryKey(entries[i].Time, seq+uint64(i)), at: entries[i].Time, a: &entries[i], rec: rec})
	}
	// Cut each log's entries into pieces that fit a txn: a piece costs a
	// nested txn, its puts, the marker and, for the last, three reads.
	maxPuts := max(s.maxOps-5, 2)
	var pieces []*logPiece
	for _, l := range order {
		var p *logPiece
		for _, w := range s.logWrites(l, byLog[l]) {
			size := w.bytes()
			if p == nil || len(p.keys)+len(w.keys) > maxPuts || p.bytes+size > maxTxnBytes/2 {
				p = &logPiece{log: l}
				pieces = append(pieces, p)
			}
			p.keys, p.vals = append(p.keys, w.keys...), append(p.vals, w.vals...)
			p.bytes += size
		}
		p.last = maxPerKey > 0
	}
	// Pack pieces into txns; pieces of one key go to different txns, as
	// etcd refuses a txn that puts one key (the marker) twice.
	for len(pieces) > 0 {
		var txn []*logPiece
		cost, size := 0, 0
		inTxn := map[*keyLog]bool{}
		rest := pieces[:0:0]
		for _, p := range pieces {
			p.cost = 2 + len(p.keys)
			if p.last {
				p.cost += 3
			}
			fits := len(txn) == 0 || cost+p.cost <= s.maxOps && size+p.bytes <= maxTxnBytes
			if !fits || inTxn[p.log] || len(rest) > 0 && rest[len(rest)-1].log == p.log {
				rest = append(rest, p)
				continue
			}
			txn = append(txn, p)
			inTxn[p.log] = true
			cost += p.cost
			size += p.bytes
		}
		if err := s.appendPieces(ctx, txn); err != nil {
			return err
		}
		pieces = rest
	}
	if len(refusals) > 0 {
		logs, err := s.appendRefusals(ctx, refusals, refusalIDs, nkms.RefusalsPerKey(maxPerKey))
		if err != nil {
			return err
		}
		order = append(order, logs...)
	}
	if maxPerKey <= 0 {
		return nil
	}
	return s.trimLogs(ctx, order)
}

// appendPieces commits one txn of pieces: per piece a nested txn that puts
// the entries and the marker if the key exists, and for a key's last piece
// counts its log and reads the keys of its oldest entries.
func (s *Store) appendPieces(ctx context.Context, pieces []*logPiece) error {
	var ops []clientv3.Op
	var live []*logPiece
	for _, p := range pieces {
		l := p.log
		if l.gone {
			continue
		}
		then := make([]clientv3.Op, 0, len(p.keys)+3)
		for i := range p.keys {
			then = append(then, clientv3.OpPut(p.keys[i], p.vals[i]))
		}
		then = append(then, clientv3.OpPut(s.actMarker(l.tag), ""))
		if p.last {
			then = append(then, s.countOps(l.tag)...)
			then = append(then, clientv3.OpGet(s.keyKey(l.tag), clientv3.WithKeysOnly()))
		}
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.keyKey(l.tag)), ">", 0)}, then, nil))
		live = append(live, p)
	}
	if len(ops) == 0 {
		return nil
	}
	resp, err := s.kv.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("etcd store: append activities: %w", err)
	}
	for i, p := range live {
		r := resp.Responses[i].GetResponseTxn()
		if !r.Succeeded {
			p.log.gone = true // the key does not exist: drop its entries
			continue
		}
		if p.last {
			l, n := p.log, len(p.keys)
			count, err := countOf(r.Responses[n+1 : n+3])
			if err != nil {
				return fmt.Errorf("etcd store: append activities of key %s: %w", l.tag, err)
			}
			l.count = count
			if kv := first(r.Responses[n+3].GetResponseRange().Kvs); kv != nil {
				l.keyRev, l.probed = kv.CreateRevision, true
			}
		}
	}
	return nil
}

// trimLogs cuts the logs over their limits to their newest entries: per
// log a range delete from the log's start to its newest entry to go, in a
// nested txn that holds only while the key is the one that was appended to.
func (s *Store) trimLogs(ctx context.Context, logs []*keyLog) error {
	var cuts []clientv3.Op
	for _, l := range logs {
		if l.gone || !l.probed || l.limit <= 0 || l.count <= l.limit {
			continue
		}
		if l.chunked {
			if err := s.trimChunked(ctx, l); err != nil {
				return err
			}
			continue
		}
		cut, err := s.trimPoint(ctx, l)
		if err != nil {
			return err
		}
		if cut == "" {
			continue
		}
		cuts = append(cuts, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.keyKey(l.tag)), "=", l.keyRev)},
			[]clientv3.Op{clientv3.OpDelete(l.prefix, clientv3.WithRange(cut+"\x00"))}, nil))
	}
	for len(cuts) > 0 {
		n := min(len(cuts), max(s.maxOps/2, 1))
		if _, err := s.kv.Txn(ctx).Then(cuts[:n]...).Commit(); err != nil {
			return fmt.Errorf("etcd store: trim activities: %w", err)
		}
		cuts = cuts[n:]
	}
	return nil
}

// trimPoint returns the key of the newest entry of l's log that goes so
// that l.limit entries stay, "" when none goes. The keys read with the append
// usually suffice; when other appends made the log longer, it reads more.
func (s *Store) trimPoint(ctx context.Context, l *keyLog) (string, error) {
	count, oldest := l.count, l.oldest
	for range 3 {
		excess := count - l.limit
		if excess <= 0 {
			return "", nil
		}
		if excess <= int64(len(oldest)) {
			return oldest[excess-1], nil
		}
		resp, err := s.kv.Get(ctx, l.prefix, clientv3.WithRange(logEnd(l.prefix)), clientv3.WithKeysOnly(), clientv3.WithLimit(excess))
		if err != nil {
			return "", fmt.Errorf("etcd store: trim activities of key %s: %w", l.tag, err)
		}
		count, oldest = resp.Count, keysOf(resp.Kvs)
	}
	return "", nil // the log keeps growing: its appenders trim it
}

func keysOf(kvs []*mvccpb.KeyValue) []string {
	keys := make([]string, len(kvs))
	for i, kv := range kvs {
		keys[i] = string(kv.Key)
	}
	return keys
}

// PruneActivities removes every entry older than before, log by log as the
// markers list them. On an error it returns the number removed by the txns
// that committed.
func (s *Store) PruneActivities(ctx context.Context, before time.Time) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	cutoff := timeHex(before) // entry keys below prefix ‖ cutoff are older than before
	markers := s.actMarkersPrefix()
	end := clientv3.GetPrefixRangeEnd(markers)
	removed := 0
	for from := markers; ; {
		resp, err := s.kv.Get(ctx, from, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(markerChunk))
		if err != nil {
			return removed, fmt.Errorf("etcd store: prune activities: %w", err)
		}
		var tags []string
		for _, kv := range resp.Kvs {
			tag, err := url.PathUnescape(string(kv.Key[len(markers):]))
			if err != nil {
				s.log.Debug("etcd store: usage-log marker of no tag", "key", string(kv.Key))
				continue
			}
			tags = append(tags, tag)
		}
		per := max(s.maxOps/5, 1)
		for len(tags) > 0 {
			n := min(len(tags), per)
			got, err := s.pruneLogs(ctx, tags[:n], before, cutoff)
			removed += got
			if err != nil {
				return removed, fmt.Errorf("etcd store: prune activities: %w", err)
			}
			tags = tags[n:]
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return removed, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// pruneLogs removes the entries below cutoff of the logs of tags (both of
// each key) and drops the markers of the logs it left empty; it returns how
// many entries it removed. It first rewrites the chunks that hold entries on
// both sides of the cut-off (one txn each, holding while the chunk is as
// read), then in one txn removes the rows and index rows below it, holding
// while no row within chunkSpan below the cut-off changed since the read;
// when one did, it starts again, up to 3 times.
func (s *Store) pruneLogs(ctx context.Context, tags []string, before time.Time, cutoff string) (int, error) {
	low := timeHex(before.Add(-chunkSpan))
	removed := 0
	for range 3 {
		reads := make([]clientv3.Op, len(tags))
		for i, tag := range tags {
			p := s.logPrefix(tag, false)
			reads[i] = clientv3.OpGet(p+low, clientv3.WithRange(p+cutoff))
		}
		rresp, err := s.kv.Txn(ctx).Then(reads...).Commit()
		if err != nil {
			return removed, err
		}
		rev := rresp.Header.Revision
		changed := false
		for i, tag := range tags {
			p := s.logPrefix(tag, false)
			for _, kv := range rresp.Responses[i].GetResponseRange().Kvs {
				if !codec.IsActivityChunk(kv.Value) {
					continue
				}
				r, err := logRow(kv, p)
				if err != nil {
					return removed, err
				}
				if !r.holdsAfter(cutoff) {
					continue
				}
				ops, _, err := rewriteOps(p, s.chunkIndexPrefix(tag), r, cutoff)
				if err != nil {
					return removed, err
				}
				resp, err := s.kv.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(r.key), "=", r.rev)).Then(ops...).Commit()
				if err != nil {
					return removed, err
				}
				if !resp.Succeeded {
					changed = true
					continue
				}
				for _, id := range r.ids {
					if id < cutoff {
						removed++
					}
				}
			}
		}
		if changed {
			continue
		}
		got, done, err := s.pruneRows(ctx, tags, low, cutoff, rev)
		removed += got
		if err != nil || done {
			return removed, err
		}
	}
	return removed, fmt.Errorf("%d usage logs kept changing", len(tags))
}

// pruneRows is the last txn of pruneLogs; done is false when a row within
// chunkSpan below the cut-off changed since rev.
func (s *Store) pruneRows(ctx context.Context, tags []string, low, cutoff string, rev int64) (removed int, done bool, err error) {
	const per = 5
	cmps := make([]clientv3.Cmp, 0, len(tags))
	ops := make([]clientv3.Op, 0, per*len(tags))
	for _, tag := range tags {
		prefix, refused, ip := s.logPrefix(tag, false), s.logPrefix(tag, true), s.chunkIndexPrefix(tag)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+low), "<", rev+1).WithRange(prefix+cutoff))
		ops = append(ops,
			clientv3.OpDelete(prefix, clientv3.WithRange(prefix+cutoff)),
			clientv3.OpDelete(refused, clientv3.WithRange(refused+cutoff)),
			clientv3.OpDelete(ip, clientv3.WithRange(ip+cutoff), clientv3.WithPrevKV()),
			clientv3.OpGet(prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()),
			clientv3.OpGet(s.actMarker(tag), clientv3.WithKeysOnly()))
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil || !resp.Succeeded {
		return 0, false, err
	}
	var drops []clientv3.Op
	for i, tag := range tags {
		rs := resp.Responses[per*i:]
		removed += int(rs[0].GetResponseDeleteRange().Deleted)
		removed += int(rs[1].GetResponseDeleteRange().Deleted)
		for _, kv := range rs[2].GetResponseDeleteRange().PrevKvs {
			c, err := indexCount(kv.Key)
			if err != nil {
				return removed, true, err
			}
			removed += int(c - 1)
		}
		if rs[3].GetResponseRange().Count > 0 {
			continue
		}
		if m := first(rs[4].GetResponseRange().Kvs); m != nil {
			// Drop the marker unless an append has put it again since.
			drops = append(drops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.actMarker(tag)), "=", m.ModRevision)},
				[]clientv3.Op{clientv3.OpDelete(s.actMarker(tag))}, nil))
		}
	}
	for len(drops) > 0 {
		n := min(len(drops), max(s.maxOps/2, 1))
		if _, err := s.kv.Txn(ctx).Then(drops[:n]...).Commit(); err != nil {
			return removed, true, err
		}
		drops = drops[n:]
	}
	return removed, true, nil
}
