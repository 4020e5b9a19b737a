// Package bolt is the nkms.Store of a single server: one bbolt data file.
//
// Layout 3 (every bucket at the top level):
//
//	keys        tag → key record without its versions (store/codec)
//	versions    tag → a bucket of the key's versions:
//	            version number (8-byte BE) → version record (store/codec)
//	names       keystore (8-byte BE) ‖ nkms.NameKey(name) → tag
//	byKeystore  keystore (8-byte BE) ‖ ID (8-byte BE) → tag; newest first with a reverse cursor
//	due         due time (8-byte BE, Unix ns, sign bit flipped) ‖ tag → empty
//	accessKeys  access key id → access key record (store/codec)
//	meta        "schema" → layout version; "count" ‖ keystore → number of keys;
//	            "lastID" ‖ keystore → the last key ID given out in the keystore;
//	            "rootCheck" → a value sealed under the root key (RootCheck);
//	            "scrub" → set while deleted material may linger in free pages
//	activities, activityOldest
//	            usage logs (activity.go)
//
// A rotation adds one record to the key's versions bucket and rewrites the
// small key record, whatever the number of versions.
//
// Older layouts, which Open migrates in its first transaction (and refuses a
// version it does not know): layout 1 had, in place of activityOldest, a
// bucket activityTime (entry key → tag, one row per usage-log entry). Layouts
// 1 and 2 kept every version inside the key record (key record format 1) and
// numbered keys across the whole server (the meta bucket's sequence was the
// last ID given out): the migration to 3 moves the versions into records of
// their own and renumbers each keystore's keys 1..n in their order, so that
// list order and newest-first stay as they were (migrate.go). The activity
// buckets came after layout 1 without changing it: Open creates missing
// buckets, and drops the logs of keys that an older nkms deleted without
// knowing about them.
//
// Scrubbing: bbolt keeps the old bytes of freed pages in the file, so a deleted
// key's sealed material would stay readable in the data file. Delete therefore
// sets the "scrub" flag in its own transaction and wakes a background goroutine
// that, shortly after (coalescing a burst of deletes), rewrites the live data
// into a fresh file and renames it over the data file (see Compact). Open
// finishes a scrub that a crash interrupted, and Close runs a pending one.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/nkms/nkms"
)

// Defaults of Options.
const (
	DefaultTimeout    = time.Second
	DefaultScrubDelay = time.Second
)

// ErrInUse is returned (wrapped) by Open when another process holds the data file's lock.
var ErrInUse = errors.New("the data file is in use by another nkms process")

// ErrClosed is returned by every operation after Close.
var ErrClosed = errors.New("bolt store: closed")

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for the data file's lock (default 1s).
	Timeout time.Duration
	// ScrubDelay is how long after a delete the data file is compacted; the
	// deletes of that window share one compaction (default 1s).
	ScrubDelay time.Duration
	// Log receives errors of the background compaction; nil discards them.
	Log *slog.Logger

	hooks *hooks // tests only
}

// hooks let the package's tests control and observe scrubbing.
type hooks struct {
	noBackground bool   // Open starts no scrub goroutine
	noCloseScrub bool   // Close leaves a pending scrub, as a crash would
	beforeScrub  func() // background goroutine, after ScrubDelay, before its pass
	afterScrub   func() // background goroutine, after its pass (compacted or not)
	compacted    func() // after every compaction that replaced the data file
}

// Store is an nkms.Store on a bbolt data file. It is safe for concurrent use.
type Store struct {
	path string
	opts Options
	log  *slog.Logger

	// mu is read-held by every operation and write-held while a compaction
	// replaces db, and by Close.
	mu sync.RWMutex
	db *bbolt.DB // nil after Close

	scrubC    chan struct{} // wakes the scrub goroutine; buffered 1
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the scrub goroutine returns
	closeOnce sync.Once
	closeErr  error
}

var _ nkms.Store = (*Store)(nil)

// Bucket and meta key names.
var (
	bucketKeys       = []byte("keys")
	bucketVersions   = []byte("versions")
	bucketNames      = []byte("names")
	bucketByKeystore = []byte("byKeystore")
	bucketDue        = []byte("due")
	bucketAccessKeys = []byte("accessKeys")
	bucketMeta       = []byte("meta")
	bucketActivities = []byte("activities")
	bucketActOldest  = []byte("activityOldest")
	bucketActTime    = []byte("activityTime") // layout 1 only

	metaSchema = []byte("schema")
	metaScrub  = []byte("scrub")
	metaCount  = []byte("count")  // ‖ keystore (8-byte BE)
	metaLastID = []byte("lastID") // ‖ keystore (8-byte BE)
)

// schema is the version of the bucket layout above; schemaTimeIndex and
// schemaSharedIDs are the older ones that Open migrates.
const (
	schema          = 3
	schemaTimeIndex = 1
	schemaSharedIDs = 2
)

// Open opens or creates the data file at path (mode 0600). It fails with
// ErrInUse when another process has it open, and compacts the file first when
// a scrub was pending at the last shutdown.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ScrubDelay <= 0 {
		opts.ScrubDelay = DefaultScrubDelay
	}
	if opts.hooks == nil {
		opts.hooks = &hooks{}
	}
	db, err := openLocked(path, opts.Timeout)
	if err != nil {
		return nil, err
	}
	s := &Store{
		path: path, opts: opts, log: opts.Log, db: db,
		scrubC: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.init(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if opts.hooks.noBackground {
		close(s.done)
	} else {
		go s.scrubLoop()
	}
	return s, nil
}

// openLocked opens path with bbolt, which takes an exclusive file lock. A
// compaction in another process renames a new file over path; a lock that was
// granted on the old file (after it was replaced) is dropped and tried again,
// so that two processes never work on different files of one path.
func openLocked(path string, timeout time.Duration) (*bbolt.DB, error) {
	deadline := time.Now().Add(timeout)
	for {
		var f *os.File
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{
			Timeout: max(time.Until(deadline), time.Millisecond),
			OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
				file, err := os.OpenFile(name, flag, perm)
				if f == nil {
					f = file
				}
				return file, err
			},
		})
		if errors.Is(err, bberrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w (no file lock within %s)", path, ErrInUse, timeout)
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		same, err := isFileAt(f, path)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("open %s: %w", path, err), db.Close())
		}
		if same {
			return db, nil
		}
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("open %s: %w (no file lock within %s)", path, ErrInUse, timeout)
		}
	}
}

// isFileAt reports whether the open file f is the file now at path.
func isFileAt(f *os.File, path string) (bool, error) {
	if f == nil {
		return false, errors.New("data file handle not seen")
	}
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// init creates the buckets, checks the layout version, removes what an
// interrupted compaction left and finishes a pending scrub.
func (s *Store) init() error {
	var pending bool
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{
			bucketKeys, bucketVersions, bucketNames, bucketByKeystore, bucketDue, bucketAccessKeys, bucketMeta,
			bucketActivities, bucketActOldest,
		} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		switch v := b.meta.Get(metaSchema); {
		case v == nil:
			if err := b.meta.Put(metaSchema, be64(schema)); err != nil {
				return err
			}
		case len(v) == 8 && (beUint64(v) == schemaTimeIndex || beUint64(v) == schemaSharedIDs):
			from := beUint64(v)
			if from == schemaTimeIndex {
				if err := migrateTimeIndex(tx, b); err != nil {
					return fmt.Errorf("migrate data file layout %d to %d: %w", from, schema, err)
				}
			}
			if err := migrateKeys(tx, b); err != nil {
				return fmt.Errorf("migrate data file layout %d to %d: %w", from, schema, err)
			}
		case len(v) != 8 || beUint64(v) != schema:
			return fmt.Errorf("data file layout version %x is not one of %d, %d, %d; is it from a newer nkms?",
				v, schemaTimeIndex, schemaSharedIDs, schema)
		}
		if n, err := b.dropOrphanActivities(); err != nil {
			return fmt.Errorf("drop the activities of deleted keys: %w", err)
		} else if n > 0 {
			if err := markScrub(b); err != nil {
				return err
			}
		}
		pending = b.meta.Get(metaScrub) != nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("initialise %s: %w", s.path, err)
	}
	if err := os.Remove(s.tmpPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove leftover compaction file: %w", err)
	}
	if pending {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.compactLocked(); err != nil {
			return fmt.Errorf("finish pending scrub of %s: %w", s.path, err)
		}
	}
	return nil
}

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// update runs fn in a read-write transaction.
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.Update(fn)
}

// Close stops the scrub goroutine (waiting for a compaction in progress),
// runs a pending scrub and closes the data file. Closing twice is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		var errs []error
		if !s.opts.hooks.noCloseScrub {
			if pending, err := s.scrubPending(); err != nil {
				errs = append(errs, err)
			} else if pending {
				errs = append(errs, s.compactLocked())
			}
		}
		errs = append(errs, s.db.Close())
		s.db = nil
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// metaRootCheck is the meta key of RootCheck's value.
var metaRootCheck = []byte("rootCheck")

// RootCheck stores candidate as the data file's root-key check value when it
// has none, and returns the stored value: a value sealed under the root key
// the file was first opened with, which a later start must be able to open.
func (s *Store) RootCheck(ctx context.Context, candidate []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var stored []byte
	err := s.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(metaRootCheck); v != nil {
			stored = bytes.Clone(v)
			return nil
		}
		stored = bytes.Clone(candidate)
		return meta.Put(metaRootCheck, stored)
	})
	if err != nil {
		return nil, fmt.Errorf("root key check: %w", err)
	}
	return stored, nil
}
