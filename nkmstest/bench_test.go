package nkmstest_test

import (
	"io"
	"testing"

	"github.com/nkms/nkms/nkmstest"
)

// BenchmarkNewServer: what a server of its own costs a test, from
// NewServer to Close (start, first access key, stop), with a bbolt file
// under a temporary directory and in memory.
func BenchmarkNewServer(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []nkmstest.Option
	}{
		{"bbolt", nil},
		{"in memory", []nkmstest.Option{nkmstest.InMemory()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := append(bc.opts, nkmstest.WithLogs(io.Discard))
			for b.Loop() {
				nkmstest.NewServer(b, opts...).Close()
			}
		})
	}
}
