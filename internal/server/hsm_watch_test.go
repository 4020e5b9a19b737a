package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/testkit"
)

// flakyToken is an HSM whose token answers "no such object" to every Load
// while up, and fails every call while down: the probe's view of a token.
type flakyToken struct {
	down  atomic.Bool
	loads atomic.Int64
}

var errTokenGone = errors.New("CKR_DEVICE_REMOVED")

func (f *flakyToken) fail() error {
	if f.down.Load() {
		return errTokenGone
	}
	return nil
}

func (f *flakyToken) Generate(crypto.Algorithm, bool, []byte, string) error { return f.fail() }
func (f *flakyToken) Destroy([]byte) error                                  { return f.fail() }
func (f *flakyToken) Objects() ([]nkms.HSMObject, error)                    { return nil, f.fail() }
func (f *flakyToken) Load(crypto.Algorithm, bool, []byte) (*crypto.Key, error) {
	f.loads.Add(1)
	if err := f.fail(); err != nil {
		return nil, err
	}
	return nil, nkms.ErrHSMNoObject
}

// TestTokenWatchLogsStateChanges: many failures while the token is down
// make one error line and a count each; the first success after them one
// info line; "no such object" is an answer, not a failure.
func TestTokenWatchLogsStateChanges(t *testing.T) {
	t.Parallel()
	logs := &testkit.Buffer{}
	tok := &flakyToken{}
	w := newTokenWatch(tok, slog.New(slog.NewTextHandler(logs, nil)), testkit.NewClock(time.Unix(1e9, 0)).Now)
	if _, err := w.Load(crypto.AES256, false, []byte("id")); !errors.Is(err, nkms.ErrHSMNoObject) || !w.up() {
		t.Fatalf("a missing object: err %v, up %v; want ErrHSMNoObject and up", err, w.up())
	}
	tok.down.Store(true)
	for range 5 {
		w.Observe("encrypt", errTokenGone)
		w.Generate(crypto.AES256, false, []byte("id"), "nkms:x:v1:1")
	}
	if w.Check() == nil || w.up() {
		t.Fatal("Check of a token that fails: nil or still up")
	}
	if got := w.failures["encrypt"].Load() + w.failures["generate"].Load() + w.failures["probe"].Load(); got != 11 {
		t.Errorf("failures counted: %d, want 11", got)
	}
	tok.down.Store(false)
	for range 3 {
		if err := w.Check(); err != nil {
			t.Fatalf("Check of a token that answers: %v", err)
		}
	}
	if !w.up() {
		t.Fatal("not up after the token answered again")
	}
	out := logs.String()
	if n := strings.Count(out, "hsm: the token does not answer"); n != 1 {
		t.Errorf("%d lines about the outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "hsm: the token answers again"); n != 1 {
		t.Errorf("%d lines about the recovery, want 1:\n%s", n, out)
	}
}

// TestTokenWatchMissingLines: requests for a missing object are all
// counted, and logged once a minute at most, with the count since the
// previous line.
func TestTokenWatchMissingLines(t *testing.T) {
	t.Parallel()
	logs := &testkit.Buffer{}
	clock := testkit.NewClock(time.Unix(1e9, 0))
	w := newTokenWatch(&flakyToken{}, slog.New(slog.NewTextHandler(logs, nil)), clock.Now)
	for range 10 {
		w.Missing("tag", 1)
		clock.Add(time.Second)
	}
	clock.Add(hsmMissingLogEvery)
	w.Missing("tag", 2)
	if got := w.missing.Load(); got != 11 {
		t.Errorf("missing counted %d, want 11", got)
	}
	out := logs.String()
	if n := strings.Count(out, "is not in this server's token"); n != 2 {
		t.Errorf("%d lines, want 2 (one a minute):\n%s", n, out)
	}
	if !strings.Contains(out, "requestsSinceLastLine=10") {
		t.Errorf("the second line does not count the 10 requests since the first:\n%s", out)
	}
}

// TestTokenWatchProbes: run asks the token every interval, so nkms_hsm_up
// follows a token that comes back without any request.
func TestTokenWatchProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tok := &flakyToken{}
		w := newTokenWatch(tok, slog.New(slog.DiscardHandler), time.Now)
		tok.down.Store(true)
		w.Observe("sign", errTokenGone)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { w.run(ctx, hsmProbeEvery) })
		time.Sleep(hsmProbeEvery)
		synctest.Wait()
		if w.up() || tok.loads.Load() != 1 {
			t.Fatalf("after one interval: up %v, %d probes; want down, 1", w.up(), tok.loads.Load())
		}
		tok.down.Store(false)
		time.Sleep(hsmProbeEvery)
		synctest.Wait()
		if !w.up() {
			t.Fatal("the probe did not see the token answer again")
		}
		cancel()
		wg.Wait()
	})
}
