package study

// Recovery: heartbeats of running trials, failing and re-queueing the trials
// of processes that stopped beating, and waiting out a storage outage.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// recoverStale fails the trials whose process stopped beating and re-queues
// their parameters in the same transaction, once: a retry that dies again
// is not retried, so a configuration that kills its process cannot loop
// forever. A trial that died before its parameters were stored is re-queued
// from its fixed_params (a queued grid point, retry or manual run); only a
// trial the sampler had not yet sampled has nothing to retry. Right after a
// storage outage it waits a grace period, so that the heartbeats the outage
// held up can catch up.
func (r *runner) recoverStale() error {
	grace := StaleAfter(r.opt.Heartbeat)
	r.mu.Lock()
	held := time.Since(r.lastOutage) < grace
	r.mu.Unlock()
	if held {
		return nil
	}
	notes := map[int]string{}
	stale, err := r.store.RecoverStaleTrials(r.study.ID, grace, func(t goptuna.FrozenTrial) (goptuna.FrozenTrial, bool) {
		if t.SystemAttrs[AttrRetryOf] != "" {
			notes[t.ID] = fmt.Sprintf("trial %d: its process stopped; it was already a retry, so it is not queued again", t.Number)
			return goptuna.FrozenTrial{}, false
		}
		p, err := r.pointOf(t)
		if err != nil {
			notes[t.ID] = fmt.Sprintf("trial %d: its process stopped before it had parameters; nothing to retry", t.Number)
			return goptuna.FrozenTrial{}, false
		}
		var seed *int64 // nil when it stopped before its seed was recorded
		if v, err := strconv.ParseInt(t.UserAttrs["seed"], 10, 64); err == nil {
			seed = &v
		}
		retry, err := fixedTrial(r.study.ID, r.spec.Space, requeue(t.SystemAttrs, p, t.Number, seed), goptuna.TrialStateWaiting)
		if err != nil {
			notes[t.ID] = fmt.Sprintf("trial %d: its process stopped; %s cannot be queued again: %v", t.Number, p, err)
			return goptuna.FrozenTrial{}, false
		}
		notes[t.ID] = fmt.Sprintf("trial %d: its process stopped (heartbeat stale); marked FAIL, %s re-queued", t.Number, p)
		return retry, true
	})
	if err != nil {
		return fmt.Errorf("recover stale trials: %w", err)
	}
	for _, t := range stale {
		r.progress.Note(notes[t.ID])
	}
	return nil
}

// pointOf is the configuration of trial t: its stored parameters or, when it
// stopped before they were written, its fixed_params.
func (r *runner) pointOf(t goptuna.FrozenTrial) (search.Point, error) {
	if p, err := search.PointFromParams(t.Params); err == nil {
		return p, nil
	}
	text, ok := t.SystemAttrs[attrFixed]
	if !ok {
		return search.Point{}, fmt.Errorf("trial %d has neither parameters nor fixed_params", t.Number)
	}
	return pointFromFixed(r.spec.Space, text)
}

// patient runs fn until it succeeds, fails for a reason other than an
// unreachable storage (storage.ErrUnavailable), or the storage has been
// unreachable for longer than the run's StoragePatience. Meanwhile it says
// so through Progress.Note and waits, doubling the wait from 1s to 30s. It
// returns ctx's error if ctx ends while it waits.
func (r *runner) patient(ctx context.Context, w int, what string, fn func() error) error {
	var since time.Time
	wait := outageFirstWait
	for {
		err := fn()
		if !errors.Is(err, storage.ErrUnavailable) {
			if !since.IsZero() && err == nil {
				r.progress.Note(fmt.Sprintf("worker %d: storage reachable again after %s; carrying on", w, time.Since(since).Round(time.Second)))
			}
			return err
		}
		now := time.Now()
		r.mu.Lock()
		r.lastOutage = now
		r.mu.Unlock()
		if since.IsZero() {
			since = now
		}
		left := r.opt.StoragePatience - now.Sub(since)
		if left <= 0 {
			return fmt.Errorf("%w; gave up after %s (--storage-patience); the trials this process was running stay RUNNING and the next run retries them once their heartbeat is stale (fmtune resume %s)",
				err, r.opt.StoragePatience, r.spec.Name)
		}
		d := min(wait, left)
		r.progress.Note(fmt.Sprintf("worker %d: %s; retrying in %s", w, outageText(what, err), d.Round(100*time.Millisecond)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, outageMaxWait)
	}
}

// outageText puts "storage unreachable: cause" first and what was being
// done after it.
func outageText(what string, err error) string {
	msg := err.Error()
	const key = "storage unreachable"
	if i := strings.Index(msg, key); i > 0 {
		msg = msg[i:]
	}
	return fmt.Sprintf("%s (while trying to %s)", msg, what)
}

// storageFailures are the errors that say the storage failed (it is
// unreachable, full or read-only), as opposed to a problem of the trial.
var storageFailures = []error{storage.ErrUnavailable, storage.ErrDiskFull, storage.ErrReadOnly}

// storageFailure reports whether err is one of storageFailures.
func storageFailure(err error) bool {
	for _, f := range storageFailures {
		if errors.Is(err, f) {
			return true
		}
	}
	return false
}

// sameStorageFailure reports whether a and b are the same kind of storage
// failure (two workers meeting one outage): it is said once.
func sameStorageFailure(a, b error) bool {
	for _, f := range storageFailures {
		if errors.Is(a, f) && errors.Is(b, f) {
			return true
		}
	}
	return false
}

// heartbeat records a heartbeat for trial id now and every interval until
// the returned function is called. While the storage is unreachable it
// tries every second, so the heartbeat is fresh soon after it is back. When
// the storage says the trial is finished (another worker failed it as
// stale), it calls giveUp, which stops the training.
func (r *runner) heartbeat(id, w int, giveUp context.CancelCauseFunc) (stop func()) {
	_ = r.store.RecordHeartbeat(id)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.opt.Heartbeat)
		defer t.Stop()
		var failing time.Time
		var retry <-chan time.Time
		for {
			select {
			case <-done:
				return
			case <-t.C:
			case <-retry:
			}
			retry = nil
			err := r.store.RecordHeartbeat(id)
			switch {
			case err == nil:
				if !failing.IsZero() {
					r.progress.Note(fmt.Sprintf("worker %d: heartbeat of trial id %d recorded again after %s", w, id, time.Since(failing).Round(time.Second)))
					failing = time.Time{}
				}
			case err == goptuna.ErrTrialCannotBeUpdated: //nolint:errorlint // goptuna's sentinel, unwrapped
				giveUp(errGivenUp)
				return
			default:
				if errors.Is(err, storage.ErrUnavailable) {
					r.mu.Lock()
					r.lastOutage = time.Now()
					r.mu.Unlock()
				}
				if failing.IsZero() {
					failing = time.Now()
					r.progress.Note(fmt.Sprintf("worker %d: heartbeat of trial id %d failed: %v; trying every second", w, id, err))
				}
				if r.opt.Heartbeat > time.Second {
					retry = time.After(time.Second)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
