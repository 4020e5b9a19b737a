package server

import (
	"io"
	"sync"
	"time"
)

// Bounds of logBuffer: lines wait at most logFlushAfter, and the buffer
// writes through once it holds logBufferSize bytes.
const (
	logFlushAfter = 100 * time.Millisecond
	logBufferSize = 64 << 10
)

// logBuffer batches the server log's lines into fewer writes. The request log
// writes one line per request, and one write(2) per line cost ~12% of the
// requests per second at saturation (bench/run, log level info). Lines reach
// w whole and in order, at most logFlushAfter after they were logged; Close
// writes what is left. A timer runs only while lines wait.
type logBuffer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer // armed while buf is not empty
}

func newLogBuffer(w io.Writer) *logBuffer { return &logBuffer{w: w} }

// Write queues p, one or more whole lines (slog writes a record in one call).
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > logBufferSize {
		b.flushLocked()
		if len(p) > logBufferSize {
			return b.w.Write(p)
		}
	}
	if len(b.buf) == 0 {
		if b.timer == nil {
			b.timer = time.AfterFunc(logFlushAfter, b.Flush)
		} else {
			b.timer.Reset(logFlushAfter)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes the queued lines.
func (b *logBuffer) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *logBuffer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	b.w.Write(b.buf) //nolint:errcheck // a log write has no one to report its failure to
	b.buf = b.buf[:0]
	if b.timer != nil {
		b.timer.Stop()
	}
}
