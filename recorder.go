package nkms

import (
	"context"
	"log/slog"
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
)

// Recorder writes usage-log entries in the background, in batches, so that
// recording costs a request one channel send. When its buffer is full it
// drops entries (counted by Dropped and logged) rather than slow the crypto
// path down.
type Recorder struct {
	store     Store
	maxPerKey int
	log       *slog.Logger
	ch        chan Activity
	dropped   atomic.Uint64
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
	return &Recorder{store: store, maxPerKey: maxPerKey, log: log, ch: make(chan Activity, recorderBuffer)}
}

// Record queues a. It never blocks.
func (r *Recorder) Record(a Activity) {
	select {
	case r.ch <- a:
	default:
		r.dropped.Add(1)
	}
}

// Dropped is how many entries were dropped because the buffer was full.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

// Run writes queued entries until ctx ends, then writes what is still queued
// and returns.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(recorderFlushEvery)
	defer t.Stop()
	batch := make([]Activity, 0, recorderBatch)
	var reported uint64
	flush := func() {
		if len(batch) > 0 {
			// Written with a fresh context: entries queued before shutdown still land.
			if err := r.store.AppendActivities(context.WithoutCancel(ctx), batch, r.maxPerKey); err != nil {
				r.log.Error("usage log: write failed", "entries", len(batch), "err", err)
			}
			batch = batch[:0]
		}
		if d := r.dropped.Load(); d != reported {
			r.log.Warn("usage log: entries dropped, buffer full", "dropped", d-reported)
			reported = d
		}
	}
	for {
		select {
		case a := <-r.ch:
			batch = append(batch, a)
			if len(batch) == recorderBatch {
				flush()
			}
		case <-t.C:
			flush()
		case <-ctx.Done():
			for {
				select {
				case a := <-r.ch:
					batch = append(batch, a)
					if len(batch) == recorderBatch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}
