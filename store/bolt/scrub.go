package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// compactTxSize bounds one transaction of a compaction, in bytes of keys and values.
const compactTxSize = 64 << 20

// scrubRetry is how long the background goroutine waits before it retries a
// compaction that failed.
const scrubRetry = time.Minute

// markScrub records in the transaction of b that freed pages may hold
// deleted material.
func markScrub(b *buckets) error {
	if err := b.meta.Put(metaScrub, []byte{1}); err != nil {
		return fmt.Errorf("mark scrub: %w", err)
	}
	return nil
}

// wakeScrub tells the scrub goroutine that a scrub is pending. It never blocks.
func (s *Store) wakeScrub() {
	select {
	case s.scrubC <- struct{}{}:
	default: // already woken; that compaction will include this delete
	}
}

// scrubLoop compacts the data file ScrubDelay after a wake-up, so that the
// deletes of that window share one compaction. It returns when Close stops it.
func (s *Store) scrubLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.scrubC:
		}
		t := time.NewTimer(s.opts.ScrubDelay)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if h := s.opts.hooks.beforeScrub; h != nil {
			h()
		}
		if err := s.scrubIfPending(); err != nil {
			s.log.Error("scrubbing the data file failed; will retry", "path", s.path, "err", err)
			time.AfterFunc(scrubRetry, s.wakeScrub)
		}
		if h := s.opts.hooks.afterScrub; h != nil {
			h()
		}
	}
}

// scrubPending reports whether the scrub flag is set. The caller holds s.mu.
func (s *Store) scrubPending() (bool, error) {
	var pending bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		b, err := bucketsOf(tx)
		if err != nil {
			return err
		}
		pending = b.meta.Get(metaScrub) != nil
		return nil
	})
	return pending, err
}

// scrubIfPending compacts the data file if the scrub flag is set.
func (s *Store) scrubIfPending() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil // closed meanwhile; Close scrubbed
	}
	pending, err := s.scrubPending()
	if err != nil || !pending {
		return err
	}
	return s.compactLocked()
}

// Compact rewrites the live data into a fresh file that replaces the data
// file, so that the bytes of deleted keys (left in freed pages) are gone from
// it, and clears the scrub flag. It runs now, blocking every other operation
// until it is done; ctx is checked before it starts.
func (s *Store) Compact(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.compactLocked()
}

func (s *Store) tmpPath() string { return s.path + ".compact" }

// compactLocked copies the live data into a new file next to the data file,
// clears the scrub flag there, syncs it, renames it over the data file, syncs
// the directory, and continues on the new file. The new file stays open (and
// locked) from its creation on, so no other process can slip in between. A
// crash before the rename leaves the old file with its flag set (the next
// Open compacts again); a crash after it leaves the new file. The caller
// holds s.mu for writing.
func (s *Store) compactLocked() (err error) {
	tmp := s.tmpPath()
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact: remove old temporary file: %w", err)
	}
	dst, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: s.opts.Timeout})
	if err != nil {
		return fmt.Errorf("compact: create temporary file: %w", err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			err = errors.Join(err, dst.Close(), os.Remove(tmp))
		}
	}()
	if err := bbolt.Compact(dst, s.db, compactTxSize); err != nil {
		return fmt.Errorf("compact: copy: %w", err)
	}
	err = dst.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return errors.New("meta bucket missing")
		}
		return b.Delete(metaScrub)
	})
	if err != nil {
		return fmt.Errorf("compact: clear scrub flag: %w", err)
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("compact: sync: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("compact: replace data file: %w", err)
	}
	renamed = true
	syncErr := syncDir(filepath.Dir(s.path))
	closeErr := s.db.Close()
	s.db = dst
	if h := s.opts.hooks.compacted; h != nil {
		h()
	}
	if syncErr != nil {
		return fmt.Errorf("compact: sync data directory: %w", syncErr)
	}
	if closeErr != nil {
		return fmt.Errorf("compact: close replaced file: %w", closeErr)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
