package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkWrite is one audit line appended to a file on the test's temp
// directory (no fsync), from one goroutine.
func BenchmarkWrite(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := entry(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Write(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteParallel is the same from 8 goroutines per CPU, as a busy
// server calls it.
func BenchmarkWriteParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		e := entry(1)
		for pb.Next() {
			if err := l.Write(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReady is the per-request pre-check of fail-closed mode.
func BenchmarkReady(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Ready(); err != nil {
			b.Fatal(err)
		}
	}
}
