package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzVerify: Verify never panics and counts only whole lines; a file
// written by Log, whatever strings its entries hold, always verifies, and
// the fuzzer's bytes appended to it are either a valid continuation or
// refused at a line after the good ones.
func FuzzVerify(f *testing.F) {
	var seed bytes.Buffer
	dir := f.TempDir()
	l, err := Open(filepath.Join(dir, "seed.log"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Write(entry(i))
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "seed.log"))
	seed.Write(b)
	f.Add(seed.Bytes(), "req", "POST /kms/v1/keys", int64(1))
	f.Add([]byte("{}\n"), "\xff\x00\"\\\n", "", int64(-1))
	f.Add([]byte(`{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`+"\n"), "", "\u2028", int64(1<<62))
	f.Fuzz(func(t *testing.T, data []byte, s1, s2 string, n int64) {
		lines, err := Verify(bytes.NewReader(data))
		var ve *VerifyError
		switch {
		case err == nil:
			if lines != bytes.Count(data, []byte("\n")) {
				t.Fatalf("Verify = %d lines, nil; the data has %d", lines, bytes.Count(data, []byte("\n")))
			}
		case errors.As(err, &ve):
			if ve.Line < 1 || lines >= ve.Line {
				t.Fatalf("Verify = %d, %v", lines, err)
			}
		default:
			t.Fatalf("Verify = %v, want nil or a *VerifyError", err)
		}

		path := filepath.Join(memDir(t), "audit.log")
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		e := Entry{Time: time.Unix(0, n).UTC(), RequestID: s1, AccessKey: s2, Keystore: n, ClientIP: s1,
			Route: s2, KeyTag: s1 + s2, Version: int(n), Status: int(n), Code: s2}
		for range 3 {
			if err := l.Write(e); err != nil {
				t.Fatal(err)
			}
		}
		l.Close()
		written, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if lines, err := Verify(bytes.NewReader(written)); err != nil || lines != 3 {
			t.Fatalf("Verify of a file written by Log = %d, %v; want 3, nil", lines, err)
		}
		lines, err = Verify(bytes.NewReader(append(written, data...)))
		if errors.As(err, &ve) && ve.Line <= 2 {
			// Line 3 may be named when the data's first line does not chain to it.
			t.Fatalf("Verify of a good file with data appended named line %d: %v", ve.Line, err)
		}
	})
}

// memDir is a temporary directory in memory when the machine has one
// (/dev/shm), so that Close's fsync does not slow the fuzzer down to a few
// inputs a second; otherwise t.TempDir.
func memDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "nkms-audit-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
