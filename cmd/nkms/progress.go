package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progressInterval is how often a progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// progress draws one line on stderr, rewritten in place, with how much of
// an input has been read: a percentage when the size is known.
type progress struct {
	w     io.Writer
	label string
	total int64 // 0 when unknown (a pipe)
	n     atomic.Int64
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// withProgress returns r counting what is read through it and, when stderr
// is a terminal, drawing a progress line until the returned finish is
// called. Elsewhere (scripts, logs) it draws nothing.
func (c *cli) withProgress(label string, r io.Reader, total int64) (io.Reader, func()) {
	f, ok := c.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return r, func() {}
	}
	p := &progress{w: c.stderr, label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	p.wg.Go(p.run)
	return &countingReader{r: r, n: &p.n}, func() {
		close(p.stop)
		p.wg.Wait()
	}
}

func (p *progress) run() {
	t := time.NewTicker(progressInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.draw("")
		case <-p.stop:
			p.draw("\n")
			return
		}
	}
}

// draw rewrites the progress line; end is "\n" for the last one.
func (p *progress) draw(end string) {
	n := p.n.Load()
	elapsed := time.Since(p.start).Seconds()
	rate := ""
	if elapsed > 0 {
		rate = "  " + humanBytes(int64(float64(n)/elapsed)) + "/s"
	}
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r\x1b[Knkms: %s %3d%%  %s of %s%s%s", p.label, n*100/p.total, humanBytes(n), humanBytes(p.total), rate, end)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[Knkms: %s %s%s%s", p.label, humanBytes(n), rate, end)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n.Add(int64(n))
	return n, err
}

// humanBytes writes n bytes for people: "512 B", "1.5 KiB", "2.0 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
