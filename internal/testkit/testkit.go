// Package testkit holds the small helpers that tests of several packages
// share: a settable clock, a buffer safe for concurrent writers, a root key,
// and the harness that runs the nkms binary as a child process (process.go).
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nkms/nkms/internal/crypto"
)

// Clock is a settable clock; its Now method is the injected time source.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Buffer is a bytes.Buffer safe for concurrent writers (loggers, child
// process output).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// RootKey returns a fresh root key, or fails the test.
func RootKey(t testing.TB) *crypto.RootKey {
	t.Helper()
	text, err := crypto.NewRootKeyFile()
	if err != nil {
		t.Fatal(err)
	}
	root, err := crypto.ParseRootKeyFile(text)
	if err != nil {
		t.Fatal(err)
	}
	return root
}
