package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nkms/nkms/internal/testkit"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)

func entry(i int) Entry {
	return Entry{
		Time: t0.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("req%04d", i),
		AccessKey: "NKACCESS", Keystore: 1, ClientIP: "127.0.0.1",
		Route: "POST /kms/v1/keys/{keyTag}/encrypt", KeyTag: strings.Repeat("ab", 32), Version: 1 + i%3,
		Status: 200, Code: "SUCCESS",
	}
}

func openLog(t *testing.T, path string, opts Options) *Log {
	t.Helper()
	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// writeFile writes n entries to a new log at a fresh path and closes it.
func writeFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	for i := range n {
		if err := l.Write(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyFile(t *testing.T, path string) (int, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Verify(f)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")[:bytes.Count(b, []byte("\n"))]
}

func TestWriteThenVerify(t *testing.T) {
	t.Parallel()
	path := writeFile(t, 5)
	n, err := verifyFile(t, path)
	if err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode(), err)
	}
	prev := string(zeroHash)
	for i, line := range readLines(t, path) {
		body := strings.TrimSuffix(line, "\n")
		var rec Record
		if err := json.Unmarshal([]byte(body), &rec); err != nil {
			t.Fatal(err)
		}
		want := Record{Seq: int64(i + 1), Entry: entry(i), Prev: prev}
		if diff := cmp.Diff(want, rec); diff != "" {
			t.Errorf("line %d (-want +got):\n%s", i+1, diff)
		}
		// The spliced line is exactly what json.Marshal writes for the record.
		if m, _ := json.Marshal(want); string(m) != body {
			t.Errorf("line %d: got\n%s\nwant\n%s", i+1, body, m)
		}
		prev = string(hashHex([]byte(body)))
	}
}

func TestChainContinuesAcrossReopen(t *testing.T) {
	t.Parallel()
	path := writeFile(t, 3)
	l := openLog(t, path, Options{})
	seq, head := l.Head()
	lines := readLines(t, path)
	if want := string(hashHex([]byte(strings.TrimSuffix(lines[2], "\n")))); seq != 3 || head != want {
		t.Fatalf("Head = %d %s, want 3 %s", seq, head, want)
	}
	for i := 3; i < 5; i++ {
		if err := l.Write(entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := l.Write(entry(g*100 + i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != 400 {
		t.Fatalf("Verify = %d, %v; want 400, nil", n, err)
	}
}

// TestVerifyDetects tampers with a 6-line log in every way and checks that
// Verify names the right line.
func TestVerifyDetects(t *testing.T) {
	t.Parallel()
	path := writeFile(t, 6)
	orig := readLines(t, path)
	edit := func(i int, from, to string) func([]string) []string {
		return func(ls []string) []string {
			ls[i] = strings.Replace(ls[i], from, to, 1)
			return ls
		}
	}
	for _, tc := range []struct {
		name     string
		tamper   func([]string) []string
		wantLine int // 0: not detectable by a chain
		wantWhy  string
	}{
		{"field edited", edit(2, `"code":"SUCCESS"`, `"code":"NOT_FOUND"`), 3, "was changed"},
		{"key tag edited", edit(0, `"keyTag":"ab`, `"keyTag":"cd`), 1, "was changed"},
		{"seq edited", edit(3, `"seq":4`, `"seq":9`), 4, "seq 9, want 4"},
		{"prev edited", func(ls []string) []string {
			i := strings.Index(ls[4], `"prev":"`) + len(`"prev":"`)
			ls[4] = ls[4][:i] + string("10"[ls[4][i]&1]) + ls[4][i+1:]
			return ls
		}, 4, "or the prev of line 5 was"},
		{"prev not hex", edit(4, `"prev":"`, `"prev":"X`), 5, "not 64 lower-case hex"},
		{"bad JSON", edit(3, `{`, `[`), 4, "not a JSON object"},
		{"line deleted", func(ls []string) []string { return append(ls[:2:2], ls[3:]...) }, 3, "seq 4, want 3"},
		{"first line deleted", func(ls []string) []string { return ls[1:] }, 1, "does not start"},
		{"lines swapped", func(ls []string) []string { ls[1], ls[2] = ls[2], ls[1]; return ls }, 2, "seq 3, want 2"},
		{"line duplicated", func(ls []string) []string { return append(ls[:3:3], ls[2:]...) }, 4, "seq 3, want 4"},
		{"empty line inserted", func(ls []string) []string { return append(ls[:2:2], append([]string{"\n"}, ls[2:]...)...) }, 3, "empty line"},
		{"truncated in a line", func(ls []string) []string { ls[4] = ls[4][:40]; return ls[:5] }, 5, "cut short"},
		{"CRLF", func(ls []string) []string {
			for i := range ls {
				ls[i] = strings.TrimSuffix(ls[i], "\n") + "\r\n"
			}
			return ls
		}, 1, "carriage return"},
		{"chain recomputed from line 2", func(ls []string) []string {
			ls[1] = strings.Replace(ls[1], `"status":200`, `"status":201`, 1)
			oldPrev := hashHex([]byte(strings.TrimSuffix(orig[1], "\n")))
			newPrev := hashHex([]byte(strings.TrimSuffix(ls[1], "\n")))
			ls[2] = strings.Replace(ls[2], string(oldPrev), string(newPrev), 1)
			return ls
		}, 3, "was changed"},
		{"last lines cut off (not detectable)", func(ls []string) []string { return ls[:4] }, 0, ""},
		{"last line edited (not detectable)", edit(5, `"status":200`, `"status":500`), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ls := tc.tamper(append([]string(nil), orig...))
			n, err := Verify(strings.NewReader(strings.Join(ls, "")))
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %d, %v; want a *VerifyError", n, err)
			}
			if ve.Line != tc.wantLine || !strings.Contains(ve.Reason, tc.wantWhy) {
				t.Errorf("Verify: got %q, want line %d: …%s…", err, tc.wantLine, tc.wantWhy)
			}
			if n != tc.wantLine-1 {
				t.Errorf("Verify counted %d good lines, want %d", n, tc.wantLine-1)
			}
		})
	}
}

func TestVerifyEdgeCases(t *testing.T) {
	t.Parallel()
	if n, err := Verify(strings.NewReader("")); n != 0 || err != nil {
		t.Errorf("empty file: %d, %v; want 0, nil", n, err)
	}
	long := strings.Repeat("x", MaxLine+10) + "\n"
	if _, err := Verify(strings.NewReader(long)); err == nil || !strings.Contains(err.Error(), "line 1: longer than") {
		t.Errorf("long line: %v", err)
	}
	if _, err := Verify(strings.NewReader("null\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("null: %v", err)
	}
}

// TestOpenTornLastLine: a crash can leave the last line cut short; Open
// removes it and the chain continues.
func TestOpenTornLastLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keep      int // lines before the torn one
		cut       func(line string) string
		wantLines int // after Open and one more Write
		wantWarn  string
	}{
		{"half a line", 3, func(l string) string { return l[:len(l)/2] }, 4, "removed a torn last line"},
		{"one byte", 3, func(l string) string { return l[:1] }, 4, "removed a torn last line"},
		{"zeros", 3, func(l string) string { return strings.Repeat("\x00", 100) }, 4, "removed a torn last line"},
		{"only the newline lost", 3, func(l string) string { return strings.TrimSuffix(l, "\n") }, 5, "lost its newline"},
		{"only line torn", 0, func(l string) string { return l[:len(l)-5] }, 1, "removed a torn last line"},
		{"only line lost its newline", 0, func(l string) string { return strings.TrimSuffix(l, "\n") }, 2, "lost its newline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.keep+1)
			ls := readLines(t, path)
			torn := strings.Join(ls[:tc.keep], "") + tc.cut(ls[tc.keep])
			if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := verifyFile(t, path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("line %d: cut short", tc.keep+1)) {
				t.Errorf("Verify of the torn file: %v", err)
			}
			logs := &testkit.Buffer{}
			l := openLog(t, path, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err := l.Write(entry(99)); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if n, err := verifyFile(t, path); err != nil || n != tc.wantLines {
				t.Fatalf("Verify after Open and Write = %d, %v; want %d, nil", n, err, tc.wantLines)
			}
			if !strings.Contains(logs.String(), tc.wantWarn) || !strings.Contains(logs.String(), "level=WARN") {
				t.Errorf("log: got %q, want a warning %q", logs, tc.wantWarn)
			}
		})
	}
}

// TestOpenRefusesBadLastLine: a last line that is not a valid record, or
// does not chain, makes Open fail and leaves the file alone.
func TestOpenRefusesBadLastLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tamper func([]string) []string
	}{
		{"garbage", func(ls []string) []string { return append(ls, "garbage\n") }},
		{"edited seq", func(ls []string) []string { ls[2] = strings.Replace(ls[2], `"seq":3`, `"seq":4`, 1); return ls }},
		{"line before edited", func(ls []string) []string {
			ls[1] = strings.Replace(ls[1], `"status":200`, `"status":201`, 1)
			return ls
		}},
		{"only line not first of a chain", func(ls []string) []string { return ls[2:] }},
		{"empty last line", func(ls []string) []string { return append(ls, "\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, 3)
			bad := []byte(strings.Join(tc.tamper(readLines(t, path)), ""))
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, Options{})
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "nkms audit verify") {
				t.Errorf("Open: %v; want a hint to run nkms audit verify", err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
				t.Error("Open changed the file it refused")
			}
		})
	}
}

func TestOpenLocksTheFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Options{})
	if l2, err := Open(path, Options{}); err == nil {
		l2.Close()
		t.Fatal("a second Open of the same file succeeded")
	}
	l.Close()
	openLog(t, path, Options{})
}

func TestReady(t *testing.T) {
	t.Parallel()
	newLog := func(t *testing.T, opts Options) (*Log, string, *testkit.Clock) {
		clk := testkit.NewClock(t0)
		opts.Now = clk.Now
		path := filepath.Join(t.TempDir(), "audit.log")
		return openLog(t, path, opts), path, clk
	}
	t.Run("fresh", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLog(t, Options{})
		if err := l.Ready(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("low space", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLog(t, Options{MinFree: math.MaxUint64})
		if err := l.Ready(); err == nil || !strings.Contains(err.Error(), "bytes free") {
			t.Fatalf("Ready = %v, want a free-space error", err)
		}
	})
	t.Run("removed", func(t *testing.T) {
		t.Parallel()
		l, path, clk := newLog(t, Options{})
		if err := l.Ready(); err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		if err := l.Ready(); err != nil {
			t.Fatalf("Ready within the check interval = %v, want the cached nil", err)
		}
		clk.Add(DefaultCheckInterval)
		if err := l.Ready(); err == nil || !strings.Contains(err.Error(), "gone") {
			t.Fatalf("Ready = %v, want an error", err)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		t.Parallel()
		l, path, clk := newLog(t, Options{})
		other := path + ".new"
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Second)
		if err := l.Ready(); err == nil || !strings.Contains(err.Error(), "replaced") {
			t.Fatalf("Ready = %v, want an error", err)
		}
	})
	t.Run("write error is sticky until a write succeeds", func(t *testing.T) {
		t.Parallel()
		l, path, _ := newLog(t, Options{})
		if err := l.Write(entry(0)); err != nil {
			t.Fatal(err)
		}
		good := l.f
		ro, err := os.Open(path) // writes to it fail
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		l.mu.Lock()
		l.f = ro
		l.mu.Unlock()
		if err := l.Write(entry(1)); err == nil {
			t.Fatal("Write to a read-only descriptor succeeded")
		}
		if err := l.Ready(); err == nil {
			t.Fatal("Ready = nil after a failed write")
		}
		l.mu.Lock()
		l.f = good
		l.mu.Unlock()
		if err := l.Ready(); err == nil {
			t.Fatal("Ready = nil before a write succeeded")
		}
		if err := l.Write(entry(2)); err != nil {
			t.Fatal(err)
		}
		if err := l.Ready(); err != nil {
			t.Fatalf("Ready after a good write = %v", err)
		}
		l.Close()
		if n, err := verifyFile(t, path); err != nil || n != 2 {
			t.Fatalf("Verify = %d, %v; want 2, nil (the failed line leaves no trace)", n, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		l, _, _ := newLog(t, Options{})
		l.Close()
		if err := l.Ready(); !errors.Is(err, ErrClosed) {
			t.Fatalf("Ready = %v, want ErrClosed", err)
		}
		if err := l.Write(entry(0)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Write = %v, want ErrClosed", err)
		}
	})
}

// TestFullDisk writes on a real, full tmpfs: writes fail (some of them half
// way, at a page boundary), the file never keeps a torn line, Ready fails,
// and once space is freed a write succeeds and Ready recovers.
func TestFullDisk(t *testing.T) {
	dir := testkit.Tmpfs(t, 64<<10)
	clk := testkit.NewClock(t0)
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path, Options{Now: clk.Now, MinFree: 4096})
	written := 0
	for ; written < 3; written++ {
		if err := l.Write(entry(written)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready on an empty tmpfs = %v", err)
	}
	filler := testkit.FillDisk(t, dir)
	clk.Add(time.Second)
	if err := l.Ready(); err == nil {
		t.Fatal("Ready = nil on a full disk")
	}
	// The log's last page still has room for some lines; the line that
	// crosses into a new page fails, in part.
	var werr error
	for i := 0; i < 100 && werr == nil; i++ {
		if werr = l.Write(entry(written)); werr == nil {
			written++
		}
	}
	if werr == nil {
		t.Fatal("100 writes on a full disk succeeded")
	}
	if n, err := verifyFile(t, path); err != nil || n != written {
		t.Fatalf("Verify on the full disk = %d, %v; want %d, nil", n, err, written)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	if err := l.Ready(); err == nil {
		t.Fatal("Ready = nil before a write succeeded again")
	}
	if err := l.Write(entry(written)); err != nil {
		t.Fatalf("Write after freeing space: %v", err)
	}
	written++
	if err := l.Ready(); err != nil {
		t.Fatalf("Ready after freeing space = %v", err)
	}
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != written {
		t.Fatalf("Verify = %d, %v; want %d, nil", n, err, written)
	}
}
