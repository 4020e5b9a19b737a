package nkms

import (
	"cmp"
	"context"
	"errors"
	"time"
)

// DefaultSchedulerInterval is how often the scheduler looks for due work.
const DefaultSchedulerInterval = 30 * time.Second

// dueBatch is how many due keys one store query returns.
const dueBatch = 500

// PassResult counts what one scheduler pass did.
type PassResult struct {
	Destroyed int
	Rotated   int
	Failed    int
	Pruned    int // usage-log entries past their retention
}

// RunDue does one scheduler pass at the service clock: it destroys every
// REVOKE key whose destroyDate has passed (its usage log goes with it),
// auto-rotates every key whose rotation is due (logged as a SYSTEM entry),
// and then prunes usage logs past their retention — last, so that a slow
// prune (a store in trouble) never delays a destruction. Each key is
// re-checked inside its store transaction, so a cancel or a settings change
// that wins the race is kept. Failures on one key are logged and do not stop
// the pass.
func (s *Service) RunDue(ctx context.Context) (PassResult, error) {
	var res PassResult
	err := s.runDueKeys(ctx, &res)
	if ctx.Err() != nil {
		return res, err
	}
	pruned, perr := s.Store.PruneActivities(ctx, s.now().Add(-cmp.Or(s.ActivityRetention, DefaultActivityRetention)))
	res.Pruned = pruned
	return res, errors.Join(err, perr)
}

// runDueKeys destroys or auto-rotates every key that is due.
func (s *Service) runDueKeys(ctx context.Context, res *PassResult) error {
	seen := map[string]bool{}
	for {
		now := s.now()
		tags, err := s.Store.Due(ctx, now, dueBatch)
		if err != nil {
			return err
		}
		fresh := 0
		for _, tag := range tags {
			if seen[tag] {
				continue
			}
			seen[tag] = true
			fresh++
			if err := ctx.Err(); err != nil {
				return err
			}
			s.runKey(ctx, tag, now, res)
		}
		if len(tags) < dueBatch || fresh == 0 {
			return nil
		}
	}
}

func (s *Service) runKey(ctx context.Context, tag string, now time.Time, res *PassResult) {
	k, err := s.Store.Get(ctx, tag)
	if errors.Is(err, ErrKeyNotFound) {
		return
	}
	if err == nil && k.State == StateRevoke {
		err = s.deleteKey(ctx, tag, func(k *Key) error { return k.CheckPurge(now) })
		if err == nil {
			res.Destroyed++
			s.log().Info("key destroyed after pending-deletion window", "keyTag", tag, "requestType", "SYSTEM")
			return
		}
	} else if err == nil {
		var rotated *Key
		rotated, err = s.rotate(ctx, Tag{tag}, func(k *Key, _ time.Time, sealed []byte) error {
			_, err := k.AutoRotate(now, sealed)
			return err
		})
		if !errors.Is(err, ErrInvalidStatus) && !errors.Is(err, ErrKeyNotFound) {
			s.recordSystem(ctx, tag, "AutoRotateKey", err)
		}
		if err == nil {
			res.Rotated++
			s.log().Info("key auto-rotated", "keyTag", tag, "version", rotated.Current(), "requestType", "SYSTEM")
			return
		}
		if errors.Is(err, ErrTooManyVersions) {
			// Try again a period later, not on every pass: the key stays due
			// until its rotation date moves.
			_, serr := s.Store.Update(ctx, tag, func(k *Key) error { return k.SkipAutoRotation(now) })
			if serr == nil {
				res.Failed++
				s.log().Warn("auto rotation skipped: the key has reached the most versions a key may have; it is tried again after its rotation period",
					"keyTag", tag, "maxVersions", MaxVersions, "requestType", "SYSTEM")
				return
			}
			err = serr
		}
	}
	if errors.Is(err, ErrInvalidStatus) || errors.Is(err, ErrKeyNotFound) {
		return // the key changed since Due looked: nothing to do
	}
	res.Failed++
	s.log().Error("scheduler pass on key failed", "keyTag", tag, "err", err)
}

// Scheduler runs RunDue at start and then every Interval until its context ends.
type Scheduler struct {
	Service  *Service
	Interval time.Duration
	// OnPass, when set, is told what each pass did (e.g. for metrics); it
	// runs on the scheduler's goroutine, so it should be quick.
	OnPass func(PassResult, error)
}

// Run blocks until ctx is done. The first pass runs at once, so a deletion
// window that passed while the server was down is honoured at start-up.
func (sc *Scheduler) Run(ctx context.Context) {
	interval := sc.Interval
	if interval <= 0 {
		interval = DefaultSchedulerInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := sc.Service.RunDue(ctx)
		if err != nil && ctx.Err() == nil {
			sc.Service.log().Error("scheduler pass failed", "err", err)
		}
		if sc.OnPass != nil && (err == nil || ctx.Err() == nil) { // a pass cut short by shutdown is not a failure
			sc.OnPass(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
