package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/store/codec"
)

var _ nkms.Snapshotter = (*Store)(nil)

// Snapshot calls fn with a consistent copy of the whole data file: the file
// as one read transaction sees it (bbolt's Tx.WriteTo), so writes may go on
// while it is taken. Key material in it is sealed, as in the data file; the
// root key is not in it.
//
// A pending scrub is done first, so that the copy carries no deleted key's
// material in its free pages. The copy is then spooled into an unlinked
// temporary file next to the data file, and fn streams it from there: a slow
// reader of the snapshot never holds the store's lock, which a compaction
// (and so every operation after it) would otherwise wait for.
func (s *Store) Snapshot(ctx context.Context, fn func(nkms.Snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.scrubIfPending(); err != nil {
		return fmt.Errorf("snapshot: scrub first: %w", err)
	}
	spool, err := os.CreateTemp(filepath.Dir(s.path), ".nkms-snapshot-*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	os.Remove(spool.Name()) // unlinked at once where the OS allows: nothing is left after a crash
	var size int64
	err = s.view(func(tx *bbolt.Tx) error {
		n, err := tx.WriteTo(ctxWriter{ctx, spool})
		size = n
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return fn(&spooled{f: spool, size: size})
}

// spooled is a snapshot kept in a temporary file.
type spooled struct {
	f    *os.File
	size int64
}

func (s *spooled) Size() int64 { return s.size }

func (s *spooled) FileName() string { return FileName }

func (s *spooled) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, io.NewSectionReader(s.f, 0, s.size))
}

// ctxWriter fails its writes once ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// FileInfo describes a data file that CheckFile found complete and
// consistent.
type FileInfo struct {
	Size       int64  // bytes
	Schema     uint64 // layout version
	Keys       int    // keys, in every keystore
	AccessKeys int
	// RootCheck is the value sealed under the root key the file's keys were
	// sealed with (see Store.RootCheck); nil if the file has none yet.
	RootCheck []byte
}

// ErrNotDataFile is returned (wrapped) by CheckFile for a file that is not a
// complete nkms data file: garbage, truncated, or another bbolt database.
var ErrNotDataFile = errors.New("not a complete nkms data file")

// CheckFile opens the data file at path read-only (waiting at most timeout
// for a writer's lock: ErrInUse) and checks that it is a whole, consistent
// bbolt file with the nkms layout, such as a backup. It changes nothing.
//
// A damaged file can crash the calling process: bbolt's consistency check
// reads pages in a goroutine of its own, where a page that points past the
// end of the file faults, and a damaged page count can make it loop over
// billions of page numbers. Run it where a crash is survivable, with a time
// and memory limit (nkms runs it in a child process: cmd/nkms/backup_check.go).
func CheckFile(path string, timeout time.Duration) (info FileInfo, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return info, err
	}
	if !fi.Mode().IsRegular() {
		return info, fmt.Errorf("%s: %w: not a regular file", path, ErrNotDataFile)
	}
	info.Size = fi.Size()
	// A damaged file can point past its end; reading there faults (SIGBUS)
	// instead of failing. Turn such a fault into an error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: unreadable page (%v)", path, ErrNotDataFile, r)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bberrors.ErrTimeout) {
		return info, fmt.Errorf("open %s: %w (no file lock within %s)", path, ErrInUse, timeout)
	}
	if err != nil {
		return info, fmt.Errorf("%s: %w: %v", path, ErrNotDataFile, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > info.Size {
			return fmt.Errorf("truncated: %d of %d bytes", info.Size, tx.Size())
		}
		var bad error
		for err := range tx.Check() { // drained to the end: the check reads pages until it closes the channel
			if bad == nil {
				bad = err
			}
		}
		if bad != nil {
			return fmt.Errorf("inconsistent: %v", bad)
		}
		for _, name := range [][]byte{bucketKeys, bucketNames, bucketByKeystore, bucketDue, bucketAccessKeys, bucketMeta} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("no bucket %q: not an nkms data file", name)
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(metaSchema)
		if len(v) != 8 || (beUint64(v) != schema && beUint64(v) != schemaSharedIDs && beUint64(v) != schemaTimeIndex) {
			return fmt.Errorf("layout version %x is not one of %d, %d, %d; is it from a newer nkms?",
				v, schemaTimeIndex, schemaSharedIDs, schema)
		}
		info.Schema = beUint64(v)
		if info.Schema == schema && tx.Bucket(bucketVersions) == nil {
			return fmt.Errorf("no bucket %q in a file of layout %d", bucketVersions, schema)
		}
		if rc := meta.Get(metaRootCheck); rc != nil {
			info.RootCheck = append([]byte(nil), rc...)
		}
		info.Keys = tx.Bucket(bucketKeys).Stats().KeyN
		info.AccessKeys = tx.Bucket(bucketAccessKeys).Stats().KeyN
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("%s: %w: %v", path, ErrNotDataFile, err)
	}
	return info, nil
}

// InUse reports whether a process holds the lock of the data file at path
// (a running server), waiting at most timeout for it. A file that does not
// exist, or that bbolt cannot read, is not in use.
func InUse(path string, timeout time.Duration) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bberrors.ErrTimeout) {
		return true, nil
	}
	if err != nil {
		return false, nil // damaged: the lock was free, or the file could not be opened at all
	}
	return false, db.Close()
}

// ReadFile opens the data file at path read-only (waiting at most timeout
// for a writer's lock: ErrInUse) and calls key for every key (with all its
// versions) and accessKey for every access key in it, in storage order,
// until one returns an error. It reads every layout that Open migrates,
// without changing the file.
// A record that does not decode is an error. Like CheckFile, run it where a
// damaged file may crash the process; run CheckFile first.
func ReadFile(path string, timeout time.Duration, key func(*nkms.Key) error, accessKey func(*nkms.AccessKey) error) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, bberrors.ErrTimeout) {
		return fmt.Errorf("open %s: %w (no file lock within %s)", path, ErrInUse, timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w: %v", path, ErrNotDataFile, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		b := &buckets{keys: tx.Bucket(bucketKeys), versions: tx.Bucket(bucketVersions)}
		if b.keys == nil || tx.Bucket(bucketAccessKeys) == nil {
			return fmt.Errorf("%s: %w: a bucket is missing", path, ErrNotDataFile)
		}
		// In layouts 1 and 2 there is no versions bucket: every key record
		// holds its versions.
		err := b.keys.ForEach(func(tag, rec []byte) error {
			k, err := readKey(b, tag, rec)
			if err != nil {
				return err
			}
			return key(k)
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketAccessKeys).ForEach(func(id, rec []byte) error {
			a, err := codec.UnmarshalAccessKey(rec)
			if err != nil {
				return fmt.Errorf("access key %s: %w", id, err)
			}
			return accessKey(a)
		})
	})
}
