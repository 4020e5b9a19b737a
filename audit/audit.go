// Package audit writes and checks nkms's tamper-evident audit log: one JSON
// line per API request, each carrying the SHA-256 of the line before it.
//
// # Format
//
// A line is a JSON object, written by [Log.Write] and followed by "\n":
//
//	{"seq":7,"time":"2026-11-27T09:00:00.123456789Z","requestId":"…","accessKey":"…","keystore":1,
//	 "clientIp":"10.0.0.5","route":"POST /kms/v1/keys/{keyTag}/encrypt","keyTag":"…","version":2,
//	 "status":200,"code":"SUCCESS","prev":"<64 hex>"}
//
// seq counts the lines of the file from 1; prev is the hex SHA-256 of the
// previous line's bytes (without its newline), 64 zeros on the first line.
// An entry names who did what to which key and how it ended; it never holds
// plaintext, ciphertext, signatures, tokens or secrets.
//
// # What the chain proves, and what it does not
//
// [Verify] detects any edit, removal, insertion or reordering of lines that
// is followed by at least one intact line, and names the first bad line. A
// hash chain without a key cannot tell that lines were cut off the end of
// the file, that the last line was edited, or that the whole file was
// replaced by a freshly computed chain: whoever can write the file can
// recompute the hashes. Anchor the head elsewhere — [Log.Head] gives the seq
// and hash of the last line, which nkms logs when it opens and closes the
// log — or ship the lines to another machine as they are written.
//
// # Durability and torn lines
//
// Each line is one write(2) on a file opened with O_APPEND, under a mutex;
// there is no fsync per line (Close syncs). A killed process loses nothing
// that Write returned for. A machine crash or power loss can lose the last
// lines and leave the last one torn: cut short, without its newline. [Open]
// treats exactly that as the crash it is: a torn last line is removed (and a
// warning logged), or completed with its newline when it is a whole, valid,
// chained line that only lost the newline; the chain then continues. Any
// other damage at the end of the file — a last line that is not a valid
// record, or does not chain to the line before it — makes Open fail rather
// than fork the chain: run `nkms audit verify FILE`. A write that fails half
// way (disk full) is cut back off the file at once, so a full disk never
// leaves a torn line behind. Open takes an exclusive lock on the file, so
// two servers cannot interleave their chains in it.
//
// # Fail-closed
//
// [Log.Ready] tells, cheaply, whether a line can be expected to be written:
// it fails while the last write failed (sticky until a write succeeds: the
// line of a refused request is written too, and serves as the probe),
// when the file was removed or replaced at its path, and when its
// filesystem has less than [Options.MinFree] bytes free (the last two
// checks are cached for [Options.CheckInterval]). A server in fail-closed
// mode refuses requests while Ready fails, and writes each request's line
// before it sends the answer, so that a request whose line cannot be written
// answers 500. The residual window: a line can still fail to be written
// after a handler has done its work (the disk filled between Ready and
// Write). That request answers 500 although its effect stands, and its line
// is missing; the requests after it are refused until the log recovers.
//
// The file is not rotated while the server runs: to start a new file, stop
// the server, move the file away and start it again (a new chain begins).
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Entry is what one request leaves in the audit log.
type Entry struct {
	Time      time.Time `json:"time"`      // when the outcome was known; written in UTC
	RequestID string    `json:"requestId"` // also the x-ncp-request-id header of the answer
	AccessKey string    `json:"accessKey"` // the authenticated access key id ("" when authentication failed)
	Keystore  int64     `json:"keystore"`  // its keystore (0 when authentication failed)
	ClientIP  string    `json:"clientIp"`  // the client address the API uses
	Route     string    `json:"route"`     // the route pattern, or method and path of an unknown route
	KeyTag    string    `json:"keyTag"`    // "" for routes without a key
	Version   int       `json:"version"`   // key version used, 0 when none or not known
	Status    int       `json:"status"`    // HTTP status of the answer
	Code      string    `json:"code"`      // "SUCCESS", or the error code the body carries
}

// Record is one line of the file: an entry with its place in the chain.
type Record struct {
	Seq int64 `json:"seq"`
	Entry
	Prev string `json:"prev"`
}

// Defaults of Options.
const (
	DefaultMinFree       = 1 << 20
	DefaultCheckInterval = 100 * time.Millisecond
)

// MaxLine is the longest line Open and Verify accept, newline included.
// Entries are small (a few hundred bytes); Write cuts long strings.
const MaxLine = 64 << 10

// zeroHash is the prev of the first line of a file.
var zeroHash = bytes.Repeat([]byte("0"), sha256.Size*2)

// ErrClosed is returned by Write and Ready after Close.
var ErrClosed = errors.New("audit log closed")

// Options tune a Log; the zero value is the default.
type Options struct {
	// Logger receives a warning when Open repairs a torn last line.
	Logger *slog.Logger
	// MinFree is the free space, in bytes, under which Ready fails
	// (default DefaultMinFree).
	MinFree uint64
	// CheckInterval is how long Ready trusts its last look at the path and
	// the free space (default DefaultCheckInterval).
	CheckInterval time.Duration
	// Now is the clock of Ready's cache and of entries without a time
	// (default time.Now).
	Now func() time.Time
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	path string
	opts Options
	id   os.FileInfo // the open file, to notice it being replaced at path

	mu     sync.Mutex // serialises writes
	f      *os.File   // nil after Close
	seq    int64      // seq of the last line
	head   [sha256.Size * 2]byte
	werr   error // the last write failed; cleared by the next write that succeeds
	broken error // a half-written line could not be removed: no more writes

	failing atomic.Bool // werr or broken is set, or the log is closed: Ready takes mu

	cmu       sync.Mutex // guards the cached path and space check
	checkedAt time.Time
	checkErr  error
}

// Open opens or creates the audit log at path (mode 0600) and continues the
// chain of its last line. See the package documentation for a torn last line.
func Open(path string, opts Options) (*Log, error) {
	if opts.MinFree == 0 {
		opts.MinFree = DefaultMinFree
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l := &Log{path: path, opts: opts, f: f}
	if err := l.open(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) open() error {
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("audit log %s is in use by another process: %w", l.path, err)
	}
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("audit log %s is not a regular file", l.path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		l.opts.Logger.Warn("audit log: group or others have access to the file (it is created 0600)", "file", l.path, "mode", fi.Mode().Perm())
	}
	l.id = fi
	copy(l.head[:], zeroHash)
	size := fi.Size()
	if size == 0 {
		return nil
	}
	// The last two lines and a torn fragment fit in this window.
	n := min(size, 3*MaxLine)
	tail := make([]byte, n)
	if _, err := l.f.ReadAt(tail, size-n); err != nil && err != io.EOF {
		return fmt.Errorf("audit log: read %s: %w", l.path, err)
	}
	whole := n == size // the window starts at the beginning of the file
	if tail[len(tail)-1] != '\n' {
		if tail, err = l.repairTorn(tail, whole, size); err != nil {
			return err
		}
		if len(tail) == 0 {
			return nil // the file held only a torn line
		}
	}
	body := tail[:len(tail)-1]
	i := bytes.LastIndexByte(body, '\n')
	if i < 0 && !whole {
		return l.badTail(errors.New("longer than the longest line"))
	}
	last := body[i+1:]
	rec, err := parseRecord(last)
	if err != nil {
		return l.badTail(err)
	}
	// Check the link to the line before, when there is one in the window.
	prevSeq, prevHash := int64(0), zeroHash
	if i >= 0 {
		before := body[:i]
		j := bytes.LastIndexByte(before, '\n')
		if j < 0 && !whole {
			return l.badTail(errors.New("the line before it is longer than the longest line"))
		}
		pr, err := parseRecord(before[j+1:])
		if err != nil {
			return l.badTail(fmt.Errorf("the line before it: %w", err))
		}
		prevSeq, prevHash = pr.Seq, hashHex(before[j+1:])
	}
	if i >= 0 || whole { // a last line with nothing before it must be the first of its chain
		if err := link(rec, prevSeq, prevHash); err != nil {
			return l.badTail(err)
		}
	}
	l.seq = rec.Seq
	copy(l.head[:], hashHex(last))
	return nil
}

// repairTorn handles a file that does not end with a newline: the torn last
// line of a crash. It returns the tail without it (or completed).
func (l *Log) repairTorn(tail []byte, whole bool, size int64) ([]byte, error) {
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 && !whole {
		return nil, l.badTail(errors.New("no newline in the last 192 KiB"))
	}
	frag := tail[i+1:]
	// A whole line that lost only its newline chains to the line before it.
	if rec, err := parseRecord(frag); err == nil {
		prevSeq, prevHash := int64(0), zeroHash
		complete := false
		if i < 0 {
			complete = whole
		} else if j := bytes.LastIndexByte(tail[:i], '\n'); j >= 0 || whole {
			if pr, err := parseRecord(tail[j+1 : i]); err == nil {
				prevSeq, prevHash, complete = pr.Seq, hashHex(tail[j+1:i]), true
			}
		}
		if complete && link(rec, prevSeq, prevHash) == nil {
			if _, err := l.f.Write([]byte{'\n'}); err != nil {
				return nil, fmt.Errorf("audit log %s: complete the last line: %w", l.path, err)
			}
			l.opts.Logger.Warn("audit log: the last line had lost its newline (crash?); completed it",
				"file", l.path, "seq", rec.Seq)
			return append(tail, '\n'), nil
		}
	}
	if err := l.f.Truncate(size - int64(len(frag))); err != nil {
		return nil, fmt.Errorf("audit log %s: remove the torn last line: %w", l.path, err)
	}
	l.opts.Logger.Warn("audit log: removed a torn last line left by a crash", "file", l.path, "bytes", len(frag))
	return tail[:i+1], nil
}

func (l *Log) badTail(err error) error {
	return fmt.Errorf("audit log %s: its last line is not a valid audit record (%v); the chain cannot continue from it: run `nkms audit verify %s`, and move the file aside (or repair it) before starting again", l.path, err, l.path)
}

// Head returns the seq and hash of the last line written (0 and 64 zeros
// for an empty file): what an outside record of the log's head would hold.
func (l *Log) Head() (seq int64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, string(l.head[:])
}

// maxField bounds each string of an Entry, so that every line stays well
// under MaxLine (which Verify and Open enforce) whatever a caller passes.
const maxField = 2048

// clip cuts the entry's strings to maxField bytes (at a UTF-8 boundary).
func (e *Entry) clip() {
	for _, f := range []*string{&e.RequestID, &e.AccessKey, &e.ClientIP, &e.Route, &e.KeyTag, &e.Code} {
		if len(*f) > maxField {
			cut := maxField
			for cut > 0 && !utf8.RuneStart((*f)[cut]) {
				cut--
			}
			*f = (*f)[:cut]
		}
	}
}

// Write appends e as the next line of the chain, in one write(2). A zero
// e.Time is the time of the call. When the write fails, nothing of the line
// stays in the file and the chain continues from the previous line; Ready
// fails until a write succeeds. Strings longer than 2 KiB are cut.
func (l *Log) Write(e Entry) error {
	if e.Time.IsZero() {
		e.Time = l.opts.Now()
	}
	e.Time = e.Time.UTC()
	e.clip()
	body, err := json.Marshal(e) // outside the lock: the entry alone, spliced into the record below
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.f == nil:
		return ErrClosed
	case l.broken != nil:
		return l.broken
	}
	seq := l.seq + 1
	// The same bytes as json.Marshal(Record{seq, e, head}).
	line := make([]byte, 0, len(body)+len(`{"seq":,"prev":""}`)+20+len(l.head)+1)
	line = append(line, `{"seq":`...)
	line = strconv.AppendInt(line, seq, 10)
	line = append(line, ',')
	line = append(line, body[1:len(body)-1]...)
	line = append(line, `,"prev":"`...)
	line = append(line, l.head[:]...)
	line = append(line, `"}`...)
	sum := sha256.Sum256(line)
	line = append(line, '\n')
	if n, err := l.f.Write(line); err != nil {
		l.werr = fmt.Errorf("audit log %s: %w", l.path, err)
		if n > 0 {
			l.unwrite(int64(n))
		}
		l.failing.Store(true)
		return l.werr
	}
	l.seq = seq
	hex.Encode(l.head[:], sum[:])
	if l.werr != nil {
		l.werr = nil
		l.failing.Store(false)
	}
	return nil
}

// unwrite removes the n bytes a failed write left at the end of the file.
func (l *Log) unwrite(n int64) {
	fi, err := l.f.Stat()
	if err == nil && fi.Size() < n {
		err = errors.New("the file is shorter than what was written")
	}
	if err == nil {
		err = l.f.Truncate(fi.Size() - n)
	}
	if err != nil {
		l.broken = fmt.Errorf("audit log %s: a line was written in part and could not be removed (%v): stop nkms and run `nkms audit verify %s`", l.path, err, l.path)
	}
}

// Ready reports why a line could not be written now, or nil: the last write
// failed (until a write succeeds), the file is no longer at its path, or its
// filesystem has less than MinFree bytes free. The last two are looked at
// once per CheckInterval at most.
func (l *Log) Ready() error {
	if l.failing.Load() {
		l.mu.Lock()
		err := l.broken
		if err == nil {
			err = l.werr
		}
		if l.f == nil {
			err = ErrClosed
		}
		l.mu.Unlock()
		if err != nil {
			return err
		}
	}
	now := l.opts.Now()
	l.cmu.Lock()
	defer l.cmu.Unlock()
	if l.checkedAt.IsZero() || now.Sub(l.checkedAt) >= l.opts.CheckInterval || now.Before(l.checkedAt) {
		l.checkErr, l.checkedAt = l.check(), now
	}
	return l.checkErr
}

// check looks at the path and the free space of its filesystem.
func (l *Log) check() error {
	fi, err := os.Stat(l.path)
	if err != nil {
		return fmt.Errorf("audit log %s is gone from its path (%w): restart nkms to start a new file", l.path, err)
	}
	if !os.SameFile(fi, l.id) {
		return fmt.Errorf("audit log %s was replaced by another file: restart nkms to write to it", l.path)
	}
	free, err := freeSpace(l.path)
	if errors.Is(err, errNoStatfs) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit log %s: free space: %w", l.path, err)
	}
	if free < l.opts.MinFree {
		return fmt.Errorf("audit log %s: %d bytes free on its filesystem, under the %d kept in reserve", l.path, free, l.opts.MinFree)
	}
	return nil
}

// Close syncs and closes the file. Write and Ready fail afterwards.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	serr := l.f.Sync()
	cerr := l.f.Close()
	l.f = nil
	l.failing.Store(true)
	if serr != nil {
		return fmt.Errorf("audit log %s: %w", l.path, serr)
	}
	return cerr
}

// hashHex is the prev of the line after b.
func hashHex(b []byte) []byte {
	sum := sha256.Sum256(b)
	return hex.AppendEncode(nil, sum[:])
}
