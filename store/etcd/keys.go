package etcd

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// rows are the index rows of one key; "" for a row the key does not have.
type rows struct {
	name, byks, due string
}

// rowsOf returns the index rows of k, none for nil.
func (s *Store) rowsOf(k *nkms.Key) rows {
	if k == nil {
		return rows{}
	}
	r := rows{
		name: s.namesPrefix(k.Keystore) + nkms.NameKey(k.Name),
		byks: s.byksPrefix(k.Keystore) + hex64(uint64(math.MaxInt64-k.ID)),
	}
	if at, ok := k.DueAt(); ok {
		r.due = s.duePrefix() + timeHex(at) + "/" + k.Tag
	}
	return r
}

// move appends to ops what moves an index row from old to new (either may
// be "" for none) with value v; nothing when the row stays. etcd refuses a
// txn that deletes and puts one key.
func move(ops []clientv3.Op, old, new, v string) []clientv3.Op {
	if old == new {
		return ops
	}
	if old != "" {
		ops = append(ops, clientv3.OpDelete(old))
	}
	if new != "" {
		ops = append(ops, clientv3.OpPut(new, v))
	}
	return ops
}

var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// appendTime appends t as 8 bytes: Unix nanoseconds, big-endian, sign bit
// flipped so that byte order is time order (store/bolt's encoding). Times
// that nanoseconds cannot hold, the zero time among them, are clamped.
func appendTime(dst []byte, t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minNanos):
		n = math.MinInt64
	case t.After(maxNanos):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(dst, uint64(n)^1<<63)
}

// timeHex is appendTime as 16 hex digits.
func timeHex(t time.Time) string { return hex.EncodeToString(appendTime(nil, t)) }

// Create stores a new key with the next ID of its keystore and returns the
// stored copy: one txn with the key record, its version records, its index
// rows and the keystore's new last ID.
func (s *Store) Create(ctx context.Context, k *nkms.Key) (*nkms.Key, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if k.Tag == "" {
		return nil, nkms.Errorf(nkms.Invalid, "key tag is empty")
	}
	c := k.Clone()
	vops, err := s.versionOps(c.Tag, nil, c.Versions)
	if err != nil {
		return nil, fmt.Errorf("etcd store: create key %s: %w", c.Tag, err)
	}
	recKey, idKey := s.keyKey(c.Tag), s.lastIDKey(c.Keystore)
	unlock, err := s.locks.Lock(ctx, idKey)
	if err != nil {
		return nil, err
	}
	defer unlock()
	last, lastRev, known := s.cachedLastID(c.Keystore)
	if !known {
		resp, err := s.kv.Get(ctx, idKey)
		if err != nil {
			return nil, fmt.Errorf("etcd store: create key %s: read last id: %w", c.Tag, err)
		}
		if last, lastRev, err = lastIDOf(first(resp.Kvs)); err != nil {
			return nil, err
		}
	}
	err = s.retry(ctx, "create key "+c.Tag, func() (bool, error) {
		c.ID = last + 1
		rec, err := codec.MarshalKey(c)
		if err != nil {
			return false, err
		}
		r := s.rowsOf(c)
		then := []clientv3.Op{
			clientv3.OpPut(recKey, string(rec)),
			clientv3.OpPut(r.name, c.Tag),
			clientv3.OpPut(r.byks, c.Tag),
			clientv3.OpPut(idKey, strconv.FormatInt(c.ID, 10)),
			s.keyChanged(c.Tag),
		}
		then = move(then, "", r.due, "")
		then = append(then, vops...)
		if err := s.fits(then); err != nil {
			return false, fmt.Errorf("etcd store: create key %s: %w", c.Tag, err)
		}
		resp, err := s.kv.Txn(ctx).If(
			clientv3.Compare(clientv3.CreateRevision(recKey), "=", 0),
			clientv3.Compare(clientv3.CreateRevision(r.name), "=", 0),
			clientv3.Compare(clientv3.ModRevision(idKey), "=", lastRev),
		).Then(then...).Else(
			clientv3.OpGet(recKey, clientv3.WithCountOnly()),
			clientv3.OpGet(r.name, clientv3.WithCountOnly()),
			clientv3.OpGet(idKey),
		).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd store: create key %s: %w", c.Tag, err)
		}
		if resp.Succeeded {
			s.setLastID(c.Keystore, c.ID, resp.Header.Revision)
			return true, nil
		}
		switch {
		case resp.Responses[0].GetResponseRange().Count > 0:
			return false, nkms.ErrKeyExists
		case resp.Responses[1].GetResponseRange().Count > 0:
			return false, nkms.ErrNameConflict
		}
		if last, lastRev, err = lastIDOf(first(resp.Responses[2].GetResponseRange().Kvs)); err != nil {
			return false, err
		}
		s.setLastID(c.Keystore, last, lastRev)
		return false, nil // another Create took the ID
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// lastIDOf reads a keystore's last ID: the ID and its mod revision, both 0
// when there is none yet (kv is nil).
func lastIDOf(kv *mvccpb.KeyValue) (id, rev int64, err error) {
	if kv == nil {
		return 0, 0, nil
	}
	id, err = strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil || id < 0 {
		return 0, 0, fmt.Errorf("etcd store: %s is %q, not a key ID", kv.Key, kv.Value)
	}
	return id, kv.ModRevision, nil
}

// first returns the first of kvs, nil for none.
func first(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}

// lastID is what the store knows of a keystore's meta/lastID.
type lastID struct{ id, rev int64 }

// cachedLastID returns the cached last ID of a keystore and its revision.
func (s *Store) cachedLastID(keystore int64) (id, rev int64, known bool) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	l, known := s.lastIDs[keystore]
	return l.id, l.rev, known
}

// setLastID caches a keystore's last ID, unless the cache holds a newer one.
func (s *Store) setLastID(keystore, id, rev int64) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if l, ok := s.lastIDs[keystore]; !ok || rev > l.rev {
		s.lastIDs[keystore] = lastID{id, rev}
	}
}

// Get returns the key with the given tag: one txn reads its record and its
// versions.
func (s *Store) Get(ctx context.Context, tag string) (*nkms.Key, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	st, err := s.readKey(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("etcd store: get key %s: %w", tag, err)
	}
	return st.decode(tag)
}

// List returns one page of a keystore's keys, newest first, and the number
// of keys in the keystore. One range read of the keystore index (whose key
// order is newest first) gives the total and the tags up to the page's end;
// one txn of gets then reads the page's records. A key deleted between the
// two reads makes List start again.
func (s *Store) List(ctx context.Context, keystore int64, pageNo, pageSize int) ([]*nkms.Key, int, error) {
	if err := s.check(ctx); err != nil {
		return nil, 0, err
	}
	if pageNo < 1 || pageSize < 1 {
		return nil, 0, nkms.Errorf(nkms.Invalid, "pageNo and pageSize must be at least 1")
	}
	skip := int64(math.MaxInt64 - pageSize) // past any end, and skip+pageSize does not overflow
	if int64(pageNo-1) <= skip/int64(pageSize) {
		skip = int64(pageNo-1) * int64(pageSize)
	}
	for range 3 {
		resp, err := s.kv.Get(ctx, s.byksPrefix(keystore), clientv3.WithPrefix(), clientv3.WithLimit(skip+int64(pageSize)))
		if err != nil {
			return nil, 0, fmt.Errorf("etcd store: list keystore %d: %w", keystore, err)
		}
		total := int(resp.Count)
		keys := []*nkms.Key{}
		if skip >= int64(len(resp.Kvs)) {
			return keys, total, nil
		}
		var tags []string
		for _, kv := range resp.Kvs[skip:] {
			tags = append(tags, string(kv.Value))
		}
		page, err := s.getAll(ctx, tags)
		if err != nil {
			return nil, 0, fmt.Errorf("etcd store: list keystore %d: %w", keystore, err)
		}
		if page == nil {
			continue // a key went away meanwhile
		}
		return append(keys, page...), total, nil
	}
	return nil, 0, fmt.Errorf("etcd store: list keystore %d: %w (keys kept going away)", keystore, ErrContention)
}

// getAll reads the keys with tags, each with its versions at one revision,
// in txns of at most maxOps gets; nil when one of them does not exist.
func (s *Store) getAll(ctx context.Context, tags []string) ([]*nkms.Key, error) {
	keys := make([]*nkms.Key, 0, len(tags))
	per := max(s.maxOps/2, 1)
	for len(tags) > 0 {
		n := min(len(tags), per)
		var ops []clientv3.Op
		for _, tag := range tags[:n] {
			ops = append(ops, s.readKeyOps(tag)...)
		}
		resp, err := s.kv.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for i, tag := range tags[:n] {
			st := storedFrom(resp.Responses[2*i:])
			if st.rec == nil {
				return nil, nil
			}
			k, err := st.decode(tag)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		tags = tags[n:]
	}
	return keys, nil
}

// Update runs fn on a copy of the stored key and commits the result if the
// key has not changed since it was read; otherwise it runs fn again on the
// key as it is now. The txn writes the key record (whose mod revision guards
// the key's versions too), the index rows that change and the versions fn
// added or changed. An error from fn is returned as it is.
func (s *Store) Update(ctx context.Context, tag string, fn func(*nkms.Key) error) (*nkms.Key, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	recKey := s.keyKey(tag)
	unlock, err := s.locks.Lock(ctx, recKey)
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.readKey(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("etcd store: update key %s: %w", tag, err)
	}
	var out *nkms.Key
	err = s.retry(ctx, "update key "+tag, func() (bool, error) {
		old, err := cur.decode(tag)
		if err != nil {
			return false, err
		}
		k := old.Clone()
		if err := fn(k); err != nil {
			return false, err
		}
		if k.Tag != old.Tag || k.ID != old.ID {
			return false, nkms.Errorf(nkms.Internal, "update must not change the key tag or id")
		}
		vops, err := s.versionOps(tag, old.Versions, k.Versions)
		if err != nil {
			return false, fmt.Errorf("etcd store: update key %s: %w", tag, err)
		}
		rec, err := codec.MarshalKey(k)
		if err != nil {
			return false, err
		}
		ro, rn := s.rowsOf(old), s.rowsOf(k)
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(recKey), "=", cur.rec.ModRevision)}
		if rn.name != ro.name {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(rn.name), "=", 0))
		}
		ops := []clientv3.Op{clientv3.OpPut(recKey, string(rec)), s.keyChanged(tag)}
		ops = move(ops, ro.name, rn.name, tag)
		ops = move(ops, ro.byks, rn.byks, tag)
		ops = move(ops, ro.due, rn.due, "")
		ops = append(ops, vops...)
		if err := s.fits(ops); err != nil {
			return false, fmt.Errorf("etcd store: update key %s: %w", tag, err)
		}
		resp, err := s.kv.Txn(ctx).If(cmps...).Then(ops...).Else(s.readKeyOps(tag)...).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd store: update key %s: %w", tag, err)
		}
		if resp.Succeeded {
			out = k
			return true, nil
		}
		now := storedFrom(resp.Responses)
		if now.rec != nil && now.rec.ModRevision == cur.rec.ModRevision {
			return false, nkms.ErrNameConflict // the key is as read: the new name is taken
		}
		cur = now
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes the key, its versions, its index rows and its usage log in
// one txn if fn (nil: no check) returns nil for the key as stored.
func (s *Store) Delete(ctx context.Context, tag string, fn func(*nkms.Key) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	recKey := s.keyKey(tag)
	unlock, err := s.locks.Lock(ctx, recKey)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.readKey(ctx, tag)
	if err != nil {
		return fmt.Errorf("etcd store: delete key %s: %w", tag, err)
	}
	return s.retry(ctx, "delete key "+tag, func() (bool, error) {
		k, err := cur.decode(tag)
		if err != nil {
			return false, err
		}
		if fn != nil {
			if err := fn(k); err != nil {
				return false, err
			}
		}
		r := s.rowsOf(k)
		ops := []clientv3.Op{
			clientv3.OpDelete(recKey), clientv3.OpDelete(s.versionsPrefix(tag), clientv3.WithPrefix()),
			clientv3.OpDelete(r.name), clientv3.OpDelete(r.byks), s.keyChanged(tag),
		}
		ops = move(ops, r.due, "", "")
		ops = append(ops,
			clientv3.OpDelete(s.actPrefix(tag), clientv3.WithPrefix()),
			clientv3.OpDelete(s.actMarker(tag)))
		resp, err := s.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(recKey), "=", cur.rec.ModRevision)).
			Then(ops...).Else(s.readKeyOps(tag)...).Commit()
		if err != nil {
			return false, fmt.Errorf("etcd store: delete key %s: %w", tag, err)
		}
		if resp.Succeeded {
			return true, nil
		}
		cur = storedFrom(resp.Responses)
		return false, nil
	})
}

// Due returns the tags of at most limit keys due at or before now, earliest
// first (ties by tag): one range read of the due index.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	tags := []string{}
	if limit <= 0 {
		return tags, nil // etcd reads a limit of 0 as no limit
	}
	prefix := s.duePrefix()
	end := clientv3.GetPrefixRangeEnd(prefix + timeHex(now) + "/")
	resp, err := s.kv.Get(ctx, prefix, clientv3.WithRange(end), clientv3.WithLimit(int64(limit)), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("etcd store: due keys: %w", err)
	}
	for _, kv := range resp.Kvs {
		// prefix ‖ 16 hex digits ‖ "/" ‖ tag
		if k := string(kv.Key); len(k) > len(prefix)+17 {
			tags = append(tags, k[len(prefix)+17:])
		}
	}
	return tags, nil
}
