package nkms

import (
	"context"
	"syscall"
	"testing"
)

// threadNice is the nice value of the calling thread (the raw syscall
// answers 20 - nice).
func threadNice(t *testing.T) int {
	t.Helper()
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

// TestHeavyRunsAtLowPriority: a bounded pool runs an expensive operation on
// a thread of nice 19 and gives back its result and its panic; a cheap key
// type, or an unbounded pool, runs where it is called.
func TestHeavyRunsAtLowPriority(t *testing.T) {
	ctx := context.Background()
	s := &Service{Heavy: NewHeavyPool(1, 0)}
	run, release, err := s.heavy(ctx, RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	var nice int
	run(func() { nice = threadNice(t) })
	if nice != heavyNice {
		t.Errorf("an RSA-2048 operation ran at nice %d, want %d", nice, heavyNice)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("panic in the worker reached the caller as %v", r)
			}
		}()
		run(func() { panic("boom") })
	}()
	run(func() { nice = threadNice(t) }) // the worker survived the panic
	if nice != heavyNice {
		t.Errorf("after a panic: nice %d", nice)
	}
	release()

	callerNice := threadNice(t)
	for _, tc := range []struct {
		name string
		s    *Service
		t    KeyType
	}{
		{"AES256 on a bounded pool", s, AES256},
		{"RSA2048 on an unbounded pool", &Service{}, RSA2048},
	} {
		run, release, err := tc.s.heavy(ctx, tc.t)
		if err != nil {
			t.Fatal(err)
		}
		run(func() { nice = threadNice(t) })
		release()
		if nice == heavyNice && callerNice != heavyNice {
			t.Errorf("%s: ran on a low-priority worker", tc.name)
		}
	}
}
