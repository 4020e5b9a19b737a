package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
)

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// wantFile checks path's content and mode 0600, and that dir holds only the names want.
func wantFile(t *testing.T, path string, content string, want ...string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s holds %q, want %q", path, got, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
	if got := names(t, filepath.Dir(path)); !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q (no temporary file left)", got, want)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "one", "f")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "two", "f") // a new file, with mode 0600 again
}

func TestWriteFailureLeavesTheOldFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fill  func(io.Writer) error
		check func(string) error
	}{
		{"fill fails after writing", func(w io.Writer) error {
			w.Write([]byte("partial"))
			return errors.New("cut off")
		}, nil},
		{"check refuses", func(w io.Writer) error {
			_, err := w.Write([]byte("complete but wrong"))
			return err
		}, func(string) error { return errors.New("refused") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if err := WriteFile(path, []byte("old")); err != nil {
				t.Fatal(err)
			}
			if err := Write(path, tc.fill, tc.check); err == nil {
				t.Fatal("Write succeeded; want the error of fill or check")
			}
			wantFile(t, path, "old", "f")
		})
	}
}

// TestWriteCheckSeesTheWholeFile: check reads the synced temporary file,
// and path is not there yet.
func TestWriteCheckSeesTheWholeFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	var seen []byte
	err := Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, func(tmp string) error {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("path during check: %v, want not there yet", err)
		}
		var err error
		seen, err = os.ReadFile(tmp)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen, data) {
		t.Errorf("check saw %d bytes, want %d", len(seen), len(data))
	}
	wantFile(t, path, string(data), "f")
}

// TestWriteIgnoresStaleNames: what an earlier crash left beside the file
// (here a directory where a writer with a fixed temporary name would put
// its file) does not stop the next write.
func TestWriteIgnoresStaleNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.MkdirAll(filepath.Join(path+".tmp", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "new", "f", "f.tmp")
}

func TestWriteMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "no", "f")
	if err := WriteFile(path, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory: %v, want fs.ErrNotExist", err)
	}
	if err := CreateFile(path, []byte("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("CreateFile into a missing directory: %v, want fs.ErrNotExist", err)
	}
}

func TestCreateFileRefusesAnExistingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := CreateFile(path, []byte("first")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "first", "f")
	if err := CreateFile(path, []byte("second")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file: %v, want fs.ErrExist", err)
	}
	wantFile(t, path, "first", "f")
}

// TestCreateFileRace: of many writers racing for one name, exactly one
// wins, and the file is the winner's whole.
func TestCreateFileRace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	const writers = 16
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { errs[i] = CreateFile(path, bytes.Repeat([]byte{byte('a' + i)}, 4096)) })
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both created the file", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v, want nil or fs.ErrExist", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer created the file")
	}
	wantFile(t, path, string(bytes.Repeat([]byte{byte('a' + winner)}, 4096)), "f")
}

// TestCreateFileWithoutLinks: on a file system without hard links the
// file is still created whole, and an existing one still refused. Not
// parallel: it replaces link.
func TestCreateFileWithoutLinks(t *testing.T) {
	link = func(_, _ string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	t.Cleanup(func() { link = os.Link })
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := CreateFile(path, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "whole", "f")
	if err := CreateFile(path, []byte("again")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file: %v, want fs.ErrExist", err)
	}
	wantFile(t, path, "whole", "f")
}
