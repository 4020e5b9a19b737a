// Package etcd is the nkms.Store of several servers: every key, access key
// and usage-log entry lives in etcd under one prefix, and every change is one
// etcd transaction conditioned on the revisions it read (optimistic
// concurrency), retried when another writer came first.
//
// Layout 3, under Options.Prefix (default "/nkms/"):
//
//	schema                    layout version ("3")
//	keys/<tag>                key record without its versions (store/codec)
//	vers/<tag*>/<number>      version record (store/codec), one per version
//	names/<ks>/<NameKey>      tag: the name index, one row per key
//	byks/<ks>/<inverted ID>   tag: the keystore index, newest first in key order
//	due/<time>/<tag>          "" for keys with a due time (nkms.Key.DueAt)
//	accesskeys/<id>           access key record (store/codec)
//	meta/lastID/<ks>          the last key ID given out in the keystore, decimal
//	meta/rootCheck            a value sealed under the root key (RootCheck)
//	meta/changes              what the latest write of a key or access key changed (follow.go)
//	election/<name>/…         leader election of the nodes (RunAsLeader)
//	migrate/lock/…            the lock of a layout migration (migrate.go)
//	act/<tag*>/<entry key>    usage-log entry (activity.go)
//	actkeys/<tag*>            "" while the key's log may hold entries (activity.go)
//
// <ks> is the keystore as 16 hex digits; <inverted ID> is MaxInt64-ID as 16
// hex digits, so that a plain (ascending) range read lists a keystore newest
// first and etcd never has to sort it; <number> is a version number as 16
// hex digits, so that key order is version order; <time> is 16 hex digits of
// the 8-byte time encoding of store/bolt (Unix ns with the sign bit flipped),
// so that key order is time order. <tag*> is the tag path-escaped, so that
// one tag's prefix never covers another's.
//
// Layout 1 kept every version inside the key record and numbered keys across
// the prefix (meta/lastID); Open migrates it (migrate.go). Layout 2 is layout 3
// without meta/changes: every txn that writes a key record or an access key
// puts meta/changes too (layout 3), so that the nodes' caches learn of the
// change (follow.go); a node of layout 2 would not, so layout 3 keeps it out.
//
// Transactions. Create is one txn: if the tag and the name are free and the
// keystore's meta/lastID is still at the revision read, put the record, the
// version records, the index rows and the new lastID. Get reads the record
// and the version records in one txn (one revision). Update and Delete read
// the same way, run fn on a decoded copy and commit the record (always: its
// mod revision guards the versions as well), the versions fn added or
// changed (a rotation: one) and the index rows that change in one txn if the
// record's mod revision is still the one read (and, for a rename, the new
// name is free). A failed condition comes back with the current record and
// versions or lastID in the same round trip (the txn's else branch), so a
// retry needs no extra read; after maxAttempts conflicts the operation gives
// up with ErrContention. Every txn stays far below etcd's defaults of 128
// operations and 1.5 MiB per request; usage-log batches are split
// (activity.go), and a Create or Update that would write more versions at
// once than a txn holds fails (nkms writes one at a time).
//
// Running etcd for nkms: compact periodically (for example
// --auto-compaction-mode=periodic --auto-compaction-retention=1h), as for any
// etcd. Besides bounding the history, it matters here because trimmed and
// pruned usage-log entries stay in etcd's index as tombstones until the next
// compaction, and reads from the start of a log pass over them. Keep
// --max-txn-ops at its default of 128 or more (this store puts up to 100
// operations in a txn).
//
// The client belongs to the caller: Close only makes later operations fail.
package etcd

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/nkms/nkms/internal/keylock"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
)

// DefaultPrefix is the key prefix when Options.Prefix is empty.
const DefaultPrefix = "/nkms/"

// schemaVersion is the layout above; schemaV1 and schemaV2 the older ones
// that Open migrates.
const (
	schemaVersion = "3"
	schemaV2      = "2"
	schemaV1      = "1"
)

// maxAttempts bounds the tries of one optimistic operation.
const maxAttempts = 100

// defaultMaxOps is how many operations one txn carries at most; etcd
// refuses more than --max-txn-ops (default 128).
const defaultMaxOps = 100

// maxTxnBytes bounds the keys and values of one usage-log txn; etcd refuses
// requests over --max-request-bytes (default 1.5 MiB).
const maxTxnBytes = 512 << 10

// ErrClosed is returned by every operation after Close.
var ErrClosed = errors.New("etcd store: closed")

// ErrContention is returned (wrapped) when an operation lost to other
// writers maxAttempts times in a row. It is a Conflict: the API answers 409
// and the caller may retry.
var ErrContention = &nkms.Error{Code: nkms.Conflict, Message: "too many concurrent changes to this key; retry"}

// Options configure Open.
type Options struct {
	// Client is the etcd client to use; required. The store does not close it.
	Client *clientv3.Client
	// Prefix is put before every key (default DefaultPrefix); a missing
	// final "/" is added. Stores with different prefixes share nothing.
	Prefix string
	// Log receives retries and other notes at debug level; nil discards them.
	Log *slog.Logger
	// Timeout bounds each etcd request (DefaultTimeout when zero); past it,
	// or when etcd has no leader, an operation fails with ErrUnavailable.
	Timeout time.Duration
}

// Store is an nkms.Store in etcd. It is safe for concurrent use, and any
// number of stores (in any number of processes) may share one prefix.
type Store struct {
	client  *clientv3.Client // for watches, elections and health checks (cluster.go)
	kv      clientv3.KV      // the client's, with a deadline on every request (bounded.go)
	timeout time.Duration    // of every etcd request
	prefix  string
	log     *slog.Logger
	closed  atomic.Bool
	maxOps  int // operations per txn; tests lower it
	// minChunk is the fewest entries of one key in one append that become
	// a chunk (activity_chunks.go); tests lower it.
	minChunk int

	// locks serialise this store's read-modify-writes of one key record
	// (and its Creates), so that its own goroutines queue instead of
	// failing each other's txns: conflicts come only from other stores.
	locks keylock.Locks

	// lastIDs caches each keystore's meta/lastID and its mod revision from
	// the last Create, so that a Create from the only writer needs no read
	// first.
	idMu    sync.Mutex
	lastIDs map[int64]lastID

	// Usage-log entry keys: time ‖ seq ‖ node (activity.go).
	node  [8]byte
	seqMu sync.Mutex
	seq   uint64
}

var _ nkms.Store = (*Store)(nil)

// Open returns a store on the client's cluster under opts.Prefix. It checks
// that etcd answers and that the prefix holds this layout (or nothing yet),
// and migrates a prefix of layout 1 first (migrate.go).
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := newStore(opts)
	if err != nil {
		return nil, err
	}
	prefix := s.prefix
	key := prefix + "schema"
	// The first request connects: it has ctx's time, not one request's.
	resp, err := s.client.KV.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, schemaVersion), clientv3.OpPut(s.changesKey(), "")).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcd store: open %s: %w", prefix, err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		switch {
		case len(kvs) == 1 && string(kvs[0].Value) == schemaV1:
			if err := s.migrate(ctx); err != nil {
				return nil, fmt.Errorf("etcd store: migrate %s from layout %s to %s: %w", prefix, schemaV1, schemaV2, err)
			}
			fallthrough
		case len(kvs) == 1 && string(kvs[0].Value) == schemaV2:
			if err := s.migrate3(ctx); err != nil {
				return nil, fmt.Errorf("etcd store: migrate %s from layout %s to %s: %w", prefix, schemaV2, schemaVersion, err)
			}
		case len(kvs) == 1 && string(kvs[0].Value) != schemaVersion:
			return nil, fmt.Errorf("etcd store: %s holds layout version %q, not %s; is it from a newer nkms?",
				prefix, kvs[0].Value, schemaVersion)
		}
	}
	return s, nil
}

// newStore returns a store of opts that has not looked at etcd yet.
func newStore(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("etcd store: no client")
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Store{client: opts.Client, kv: boundedKV{opts.Client.KV, timeout}, timeout: timeout, prefix: prefix,
		log: opts.Log, maxOps: defaultMaxOps, minChunk: defaultMinChunk, lastIDs: map[int64]lastID{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if _, err := rand.Read(s.node[:]); err != nil {
		return nil, err
	}
	return s, nil
}

// Close makes later operations fail; it leaves the client open. Closing
// twice is a no-op.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// check returns the error an operation starts with, if any.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// Keys of the layout.

func (s *Store) keyKey(tag string) string { return s.prefix + "keys/" + tag }

func (s *Store) namesPrefix(keystore int64) string {
	return s.prefix + "names/" + hex64(uint64(keystore)) + "/"
}

func (s *Store) byksPrefix(keystore int64) string {
	return s.prefix + "byks/" + hex64(uint64(keystore)) + "/"
}

func (s *Store) duePrefix() string { return s.prefix + "due/" }

func (s *Store) accessKeyKey(id string) string { return s.prefix + "accesskeys/" + id }

func (s *Store) lastIDKey(keystore int64) string {
	return s.prefix + "meta/lastID/" + hex64(uint64(keystore))
}

// versionsPrefix is the prefix of the version records of the key with tag.
func (s *Store) versionsPrefix(tag string) string { return s.prefix + "vers/" + escape(tag) + "/" }

// versionKey is the key of version n of the key with tag.
func (s *Store) versionKey(tag string, n int) string { return s.versionsPrefix(tag) + hex64(uint64(n)) }

// actPrefix is the prefix of the usage-log entries of the key with tag.
func (s *Store) actPrefix(tag string) string { return s.prefix + "act/" + escape(tag) + "/" }

// actMarker is the row that says the key with tag may have a usage log.
func (s *Store) actMarker(tag string) string { return s.prefix + "actkeys/" + escape(tag) }

func (s *Store) actMarkersPrefix() string { return s.prefix + "actkeys/" }

// escape makes tag a single path element: "/" and "%" are escaped, the 64
// hex digits of a real keyTag are left as they are.
func escape(tag string) string { return url.PathEscape(tag) }

func hex64(v uint64) string { return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, v)) }

// retry runs try until it reports done, at most maxAttempts times, waiting a
// short random time after the second and later conflicts. try returns
// done=false for a conflict worth another attempt; it has then taken the
// current state from the failed txn's else branch, so a retry needs no read.
func (s *Store) retry(ctx context.Context, what string, try func() (done bool, err error)) error {
	for attempt := 1; ; attempt++ {
		done, err := try()
		if done || err != nil {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("%s: %w (%d attempts)", what, ErrContention, attempt)
		}
		s.log.Debug("etcd store: conflict, retrying", "op", what, "attempt", attempt)
		if attempt > 1 {
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return err
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// backoff is a random wait after the attempt-th conflict in a row: up to
// 100µs doubling per attempt, capped at 2ms, so that stores that collided
// spread out. It stays short: a store that waits long while others keep
// writing would find its state stale every time.
func backoff(attempt int) time.Duration {
	limit := min(100*time.Microsecond<<min(attempt-2, 5), 2*time.Millisecond)
	return mrand.N(limit) + 1
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
