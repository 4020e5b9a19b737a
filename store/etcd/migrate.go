package etcd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

// migrateTTL is the lease of the migration lock: if the node that migrates
// dies, another one may take over this long after.
const migrateTTL = 10 * time.Second

// errMigrationRace is returned when a key changed while it was migrated,
// which only a node of an older nkms can do.
var errMigrationRace = errors.New("a key changed during the migration: stop every nkms older than this one on this prefix, then start again")

// migrate moves a prefix of layout 1 to layout 2: every key record of format
// 1 gives its versions records of their own, and each keystore's keys are
// renumbered 1..n in the order of their old, prefix-wide IDs, so that list
// order is kept. etcd takes at most 128 operations in a txn, so a whole
// migration cannot be one; it is made safe for nodes that start at once,
// and for a node that dies half-way, like this:
//
//   - One node migrates at a time: each holds an etcd lock (a lease of
//     migrateTTL) and reads the layout version again once it has it; the
//     others wait in Open, and find layout 2 when they get the lock.
//   - Each key moves in one txn (record, versions, keystore row, the
//     keystore's lastID), if its record is still at the revision read. A key
//     with more versions than a txn holds has them written first, each batch
//     under the same condition; version records without a record of format 2
//     are not read by anyone, and are written again by a retry.
//   - Keys move in ascending order of their old IDs, each keystore's taking
//     the IDs 1, 2, …: a key's new ID is never above its old one, so its new
//     keystore row is free (the keys that had lower rows moved before it).
//     A migration that starts again counts the keys already moved (format 2:
//     their IDs are 1..m, below every old ID left) and goes on from m+1.
//   - The layout version becomes 2 last, in a txn that also removes the
//     prefix-wide meta/lastID, if the version is still the one read.
//
// A node of an older nkms must not run on the prefix meanwhile or after: it
// would not read the new records. Stop them all first.
func (s *Store) migrate(ctx context.Context) error {
	sess, err := concurrency.NewSession(s.client, concurrency.WithTTL(int(migrateTTL/time.Second)), concurrency.WithContext(ctx))
	if err != nil {
		return err
	}
	defer sess.Close()
	lock := concurrency.NewMutex(sess, s.prefix+"migrate/lock")
	if err := lock.Lock(ctx); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		lock.Unlock(ctx) //nolint:errcheck // closing the session releases it anyway
	}()
	schemaKey := s.prefix + "schema"
	resp, err := s.kv.Get(ctx, schemaKey)
	if err != nil {
		return err
	}
	kv := first(resp.Kvs)
	switch {
	case kv != nil && (string(kv.Value) == schemaV2 || string(kv.Value) == schemaVersion):
		return nil // another node did it while this one waited
	case kv == nil || string(kv.Value) != schemaV1:
		return fmt.Errorf("layout version changed during the migration")
	}
	s.log.Info("etcd store: migrating the key layout", "prefix", s.prefix, "from", schemaV1, "to", schemaV2)
	keystores, err := s.oldKeystoreRows(ctx)
	if err != nil {
		return err
	}
	moved := 0
	for _, rows := range keystores {
		n, err := s.migrateKeystore(ctx, rows)
		if err != nil {
			return err
		}
		moved += n
	}
	done, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(schemaKey), "=", kv.ModRevision)).
		Then(clientv3.OpPut(schemaKey, schemaV2), clientv3.OpDelete(s.prefix+"meta/lastID")).
		Commit()
	if err != nil {
		return err
	}
	if !done.Succeeded {
		return fmt.Errorf("layout version changed during the migration")
	}
	s.log.Info("etcd store: key layout migrated", "prefix", s.prefix, "keys", moved)
	return nil
}

// indexRow is a row of the keystore index: its key and the key's tag.
type indexRow struct{ key, tag string }

// oldKeystoreRows reads the keystore index and returns each keystore's rows
// in ascending order of ID.
func (s *Store) oldKeystoreRows(ctx context.Context) ([][]indexRow, error) {
	prefix := s.prefix + "byks/"
	var keystores [][]indexRow
	ks, from := "", prefix
	for {
		resp, err := s.kv.Get(ctx, from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(1000))
		if err != nil {
			return nil, fmt.Errorf("read the keystore index: %w", err)
		}
		for _, kv := range resp.Kvs {
			// prefix ‖ 16 hex digits ‖ "/" ‖ 16 hex digits
			key := string(kv.Key)
			if len(key) != len(prefix)+33 {
				return nil, fmt.Errorf("keystore index row %q", key)
			}
			if k := key[len(prefix) : len(prefix)+16]; k != ks || len(keystores) == 0 {
				ks = k
				keystores = append(keystores, nil)
			}
			rows := &keystores[len(keystores)-1]
			*rows = append(*rows, indexRow{key, string(kv.Value)})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	for _, rows := range keystores { // newest first in the index: turn to oldest first
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	return keystores, nil
}

// migrateKeystore moves the keys of one keystore, oldest first, and returns
// how many it moved.
func (s *Store) migrateKeystore(ctx context.Context, rows []indexRow) (int, error) {
	var id int64 // the keystore's IDs given so far
	moved := 0
	for _, row := range rows {
		resp, err := s.kv.Get(ctx, s.keyKey(row.tag))
		if err != nil {
			return moved, err
		}
		rec := first(resp.Kvs)
		if rec == nil {
			return moved, fmt.Errorf("keystore index row %s: key %s: %w", row.key, row.tag, nkms.ErrKeyNotFound)
		}
		format, err := codec.KeyRecordFormat(rec.Value)
		if err != nil {
			return moved, fmt.Errorf("key %s: %w", row.tag, err)
		}
		id++
		if format == codec.KeyFormat { // moved by a migration that did not finish
			k, _, err := codec.UnmarshalKey(rec.Value)
			if err != nil {
				return moved, fmt.Errorf("key %s: %w", row.tag, err)
			}
			if k.ID != id {
				return moved, fmt.Errorf("key %s was moved with ID %d, but it is number %d of its keystore", row.tag, k.ID, id)
			}
			continue
		}
		k, err := codec.UnmarshalKeyV1(rec.Value)
		if err != nil {
			return moved, fmt.Errorf("key %s: %w", row.tag, err)
		}
		if err := s.migrateKey(ctx, k, id, rec.ModRevision, row.key); err != nil {
			return moved, fmt.Errorf("key %s: %w", row.tag, err)
		}
		moved++
	}
	return moved, nil
}

// migrateKey moves the key k, read from a record of format 1 at revision
// rev with the keystore row oldRow, to layout 2 with the given ID.
func (s *Store) migrateKey(ctx context.Context, k *nkms.Key, id, rev int64, oldRow string) error {
	if id > k.ID || id <= 0 {
		return fmt.Errorf("new ID %d is above the old one, %d", id, k.ID)
	}
	k.ID = id
	vops, err := s.versionOps(k.Tag, nil, k.Versions)
	if err != nil {
		return err
	}
	recKey := s.keyKey(k.Tag)
	unchanged := clientv3.Compare(clientv3.ModRevision(recKey), "=", rev)
	newRow := s.rowsOf(k).byks
	rec, err := codec.MarshalKey(k)
	if err != nil {
		return err
	}
	last := []clientv3.Op{
		clientv3.OpPut(recKey, string(rec)),
		clientv3.OpPut(s.lastIDKey(k.Keystore), strconv.FormatInt(id, 10)),
		// What an interrupted earlier try may have left past the last version.
		clientv3.OpDelete(s.versionKey(k.Tag, len(k.Versions)+1),
			clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.versionsPrefix(k.Tag)))),
	}
	cmps := []clientv3.Cmp{unchanged}
	if newRow != oldRow {
		last = move(last, oldRow, newRow, k.Tag)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(newRow), "=", 0))
	}
	// The version records go in the last txn if they fit beside its own
	// operations, and in batches before it as far as they do not.
	room := max(s.maxOps-len(last), 0)
	for {
		if fitting(vops, room) == len(vops) {
			last = append(last, vops...)
			break
		}
		n := max(fitting(vops, s.maxOps), 1)
		resp, err := s.kv.Txn(ctx).If(unchanged).Then(vops[:n]...).Commit()
		if err != nil {
			return err
		}
		if !resp.Succeeded {
			return errMigrationRace
		}
		vops = vops[n:]
	}
	resp, err := s.kv.Txn(ctx).If(cmps...).Then(last...).Else(clientv3.OpGet(recKey)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		if now := first(resp.Responses[0].GetResponseRange().Kvs); now != nil && now.ModRevision == rev {
			return fmt.Errorf("its new keystore row %s is taken", newRow)
		}
		return errMigrationRace
	}
	return nil
}

// fitting returns how many of the first ops fit in n operations and half a
// txn's bytes.
func fitting(ops []clientv3.Op, n int) int {
	size := 0
	for i, op := range ops {
		size += len(op.KeyBytes()) + len(op.ValueBytes())
		if i >= n || size > maxTxnBytes/2 {
			return i
		}
	}
	return len(ops)
}

// migrate3 moves a prefix of layout 2 to layout 3: one txn puts
// meta/changes and the layout version, if the version is still 2. A node of
// layout 2 refuses layout 3, so it cannot write keys that the caches of the
// nodes of layout 3 would not learn of; one that is running already still
// could: stop them all first.
func (s *Store) migrate3(ctx context.Context) error {
	schemaKey := s.prefix + "schema"
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(schemaKey), "=", schemaV2)).
		Then(clientv3.OpPut(schemaKey, schemaVersion), clientv3.OpPut(s.changesKey(), "")).
		Else(clientv3.OpGet(schemaKey)).
		Commit()
	if err != nil {
		return err
	}
	if resp.Succeeded {
		s.log.Info("etcd store: key layout migrated", "prefix", s.prefix, "from", schemaV2, "to", schemaVersion)
		return nil
	}
	if kv := first(resp.Responses[0].GetResponseRange().Kvs); kv == nil || string(kv.Value) != schemaVersion {
		return fmt.Errorf("layout version changed during the migration")
	}
	return nil // another node did it
}
