package nkms

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// ErrBusy refuses an expensive operation that waited its queue deadline
// for a place in the Service's Heavy pool: the server is saturated, and the
// caller should retry later (the api answers 503 with Retry-After).
var ErrBusy = &Error{Code: Unavailable, Message: "the server is busy with expensive operations; retry later"}

// HeavyPool bounds the expensive operations running at once (RSA-2048
// private-key operations, ~1.3 ms of CPU each, against ~0.3 µs for an AES
// encryption and tens of µs for ECDSA and RSA public-key operations), so
// that a flood of them cannot starve the cheap requests of CPU: the
// goroutines beyond the pool wait parked on a channel, not in the
// scheduler's run queue, and with a pool smaller than GOMAXPROCS
// (DefaultHeavyWorkers) a cheap request finds a P free of them. A request
// waits at most its queue deadline for a place, then fails with ErrBusy,
// instead of queueing without limit.
//
// A bounded pool runs the operations themselves on its own goroutines, one
// per place, each locked to an OS thread whose scheduling priority is the
// lowest (nice 19, on Linux): when the machine's CPUs are contended (by the
// server's cheap requests, by other processes), the kernel runs everything
// else first, and an expensive operation takes what is left. Measured on 2
// cores, AES encrypt at c=1 while RSA-2048 sign runs at c=16: AES p99 1.6-2.0×
// its p99 alone, against 3.8-5.5× with the operations run at normal
// priority; the signing rate fell 8%.
//
// The zero value and a nil *HeavyPool are unbounded and run operations
// where they are called.
type HeavyPool struct {
	slots        chan struct{}
	queueTimeout time.Duration

	startOnce sync.Once
	work      chan func() // to the workers (heavyWorker)
}

// DefaultHeavyWorkers is the pool size nkms server uses unless told
// otherwise: one less than GOMAXPROCS (at least 1). Measured on 2 cores
// (RSA-2048 sign at c16 with AES encrypt at c1), a pool of GOMAXPROCS left
// AES p99 as bad as no pool (~60-75 ms against ~0.35 ms alone): with every P
// busy, the Go scheduler runs the pool's next waiter, readied onto the same
// P, before it polls the network, so a cheap request's readiness is noticed
// only by sysmon and then waits in the global run queue. One P kept free of
// expensive work blocks in the network poller and takes cheap requests at
// once (AES p99 1.6-3.7 ms under the same load); the price is 1/GOMAXPROCS
// of the RSA throughput.
func DefaultHeavyWorkers() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// NewHeavyPool returns a pool running at most size expensive operations at
// once (size ≤ 0: unbounded), each waiting at most queueTimeout for a place
// (≤ 0: only while its request lasts).
func NewHeavyPool(size int, queueTimeout time.Duration) *HeavyPool {
	p := &HeavyPool{queueTimeout: queueTimeout}
	if size > 0 {
		p.slots = make(chan struct{}, size)
	}
	return p
}

// Size is the number of operations the pool runs at once (0: unbounded).
func (p *HeavyPool) Size() int {
	if p == nil {
		return 0
	}
	return cap(p.slots)
}

// Acquire takes a place in the pool, waiting at most the queue deadline and
// while ctx lasts; the caller must call the release it returns, once. A full
// pool past the deadline is ErrBusy; a ctx that ends first is its error. The
// Service acquires for its expensive operations; others may acquire for
// expensive work of their own that should share the bound.
func (p *HeavyPool) Acquire(ctx context.Context) (release func(), err error) {
	if p == nil || p.slots == nil {
		return func() {}, nil
	}
	select { // the fast path: a free place, no timer
	case p.slots <- struct{}{}:
		return p.release, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	if p.queueTimeout > 0 {
		t := time.NewTimer(p.queueTimeout)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case p.slots <- struct{}{}:
		return p.release, nil
	case <-deadline:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *HeavyPool) release() { <-p.slots }

// run runs fn on one of the pool's low-priority workers and returns when it
// is done; the caller holds a place (Acquire), so a worker is free. A panic
// in fn is the caller's.
func (p *HeavyPool) run(fn func()) {
	p.startOnce.Do(func() {
		p.work = make(chan func())
		for range cap(p.slots) {
			go heavyWorker(p.work)
		}
	})
	done := make(chan any, 1)
	p.work <- func() {
		defer func() { done <- recover() }()
		fn()
	}
	if v := <-done; v != nil {
		panic(v)
	}
}

// heavyWorker runs the functions it receives on an OS thread of its own,
// at the lowest scheduling priority (lowerThreadPriority). It lives as long
// as the process: the pool has no Close.
func heavyWorker(work <-chan func()) {
	runtime.LockOSThread() // never unlocked: the thread keeps its priority and goes with the goroutine
	lowerThreadPriority()
	for fn := range work {
		fn()
	}
}

// inline runs fn where it is called: the runner of cheap operations and of
// an unbounded pool.
func inline(fn func()) { fn() }

// heavy takes a place in s.Heavy for expensive operations with a key of type
// t and returns how to run them (on the pool's low-priority workers) and the
// place's release; for a cheap type, or an unbounded pool, it runs them
// where they are called and releases nothing. Only the RSA-2048 private-key
// operations (sign, decrypt) are expensive.
func (s *Service) heavy(ctx context.Context, t KeyType) (run func(func()), release func(), err error) {
	if t != RSA2048 || s.Heavy.Size() == 0 {
		return inline, func() {}, nil
	}
	release, err = s.Heavy.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.Heavy.run, release, nil
}
