package nkms

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of usage logging.
const (
	DefaultActivityRetention = 90 * 24 * time.Hour
	DefaultActivityPerKey    = 10000
	recorderBuffer           = 8192
	recorderBatch            = 1000
	recorderFlushEvery       = 100 * time.Millisecond
	// A batch the store refused is kept and written again at the next
	// flushes (an etcd leader change fails writes for seconds), up to
	// recorderRetries times or until it holds recorderMaxHeld entries.
	recorderRetries = 50
	recorderMaxHeld = 4 * recorderBatch
)

// Recorder writes usage-log entries in the background, in batches, so that
// recording costs a request one append to a queue under a mutex; Run is
// woken when the queue holds a batch, or by its ticker. (A channel would
// wake Run for every entry.) When its buffer is full it
// drops entries (counted by Dropped and logged) rather than slow the crypto
// path down. A batch the store fails to take is tried again at the next
// flushes (entries are written at least once: a write that failed after all
// may appear twice), and dropped, logged, only after recorderRetries tries.
//
// Refusals (Activity.Refused) of one group (RefusalGroup) that arrive
// between two flushes become one entry of the batch, with their count: a
// flood of refused calls costs at most one entry per group per flush (and
// the store folds it into the group's entry of that minute), and never
// fills a batch.
type Recorder struct {
	store     Store
	maxPerKey int
	log       *slog.Logger
	dropped   atomic.Uint64

	mu    sync.Mutex
	queue []Activity    // entries waiting for Run: at most recorderBuffer
	full  chan struct{} // holds a signal when the queue has reached a batch
}

// NewRecorder returns a recorder writing to store, keeping at most maxPerKey
// entries per key (<= 0: DefaultActivityPerKey). Start it with Run.
func NewRecorder(store Store, maxPerKey int, log *slog.Logger) *Recorder {
	if maxPerKey <= 0 {
		maxPerKey = DefaultActivityPerKey
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, maxPerKey: maxPerKey, log: log, full: make(chan struct{}, 1)}
}

// Record queues a. It never blocks.
func (r *Recorder) Record(a Activity) {
	r.mu.Lock()
	n := len(r.queue)
	if n < recorderBuffer {
		r.queue = append(r.queue, a)
	}
	r.mu.Unlock()
	switch {
	case n >= recorderBuffer:
		r.dropped.Add(1)
	case n+1 == recorderBatch:
		select {
		case r.full <- struct{}{}:
		default: // Run has a signal already
		}
	}
}

// take returns the queued entries and leaves spare, emptied, as the queue.
func (r *Recorder) take(spare []Activity) []Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue
	r.queue = spare[:0]
	return q
}

// Dropped is how many entries were dropped: the buffer was full, or the
// store kept refusing them.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Run writes queued entries until ctx ends, then writes what is still queued
// and returns.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(recorderFlushEvery)
	defer t.Stop()
	batch := make([]Activity, 0, recorderBatch)
	refusals := map[RefusalGroup]int{} // the index in batch of each group's refusal
	var reported uint64
	failures := 0 // flushes in a row that failed to write batch
	flush := func(last bool) {
		if len(batch) > 0 {
			// Written with a fresh context: entries queued before shutdown still land.
			err := r.store.AppendActivities(context.WithoutCancel(ctx), batch, r.maxPerKey)
			if err != nil {
				failures++
				if !last && failures < recorderRetries && len(batch) < recorderMaxHeld {
					if failures == 1 {
						r.log.Warn("usage log: write failed; will retry", "entries", len(batch), "err", err)
					}
					return
				}
				r.dropped.Add(uint64(len(batch)))
				reported += uint64(len(batch)) // counted in this line
				r.log.Error("usage log: write failed; entries dropped", "entries", len(batch), "tries", failures, "err", err)
			} else if failures > 0 {
				r.log.Info("usage log: written after retries", "entries", len(batch), "tries", failures+1)
			}
			failures = 0
			batch = batch[:0]
			clear(refusals)
		}
		if d := r.dropped.Load(); d != reported {
			r.log.Warn("usage log: entries dropped, buffer full", "dropped", d-reported)
			reported = d
		}
	}
	add := func(a Activity) {
		if a.Refused {
			g := a.RefusalGroup()
			if i, ok := refusals[g]; ok {
				batch[i].AddRefusals(&a)
				return
			}
			refusals[g] = len(batch)
		}
		batch = append(batch, a)
		// While the store fails, the batch grows until the next tick's retry.
		if (failures == 0 && len(batch) >= recorderBatch) || len(batch) >= recorderMaxHeld {
			flush(false)
		}
	}
	var spare []Activity // the queue's other slice: the two take turns
	drain := func() {
		q := r.take(spare)
		for i := range q {
			add(q[i])
		}
		clear(q) // keep no entry's strings alive
		spare = q
	}
	for {
		select {
		case <-r.full:
			drain()
		case <-t.C:
			drain()
			flush(false)
		case <-ctx.Done():
			drain()
			flush(true)
			return
		}
	}
}
