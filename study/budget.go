package study

// The study's budget: counting trials toward its target, and the one
// transaction in which a worker decides what to start and starts it.

import (
	"fmt"
	"sort"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/storage"
)

// Counts are the trials of a study by state.
type Counts struct {
	Complete, Pruned, Fail, Running, Waiting int
	// Done counts the trials toward the study's target: sampled (not manual)
	// trials that are complete, pruned, or failed for a reason of their own
	// (a diverged run). Interrupted and crashed trials are retried instead,
	// and manual runs are extra.
	Done int
	// Busy counts the running trials that will count toward the target.
	Busy int
	// ManualWaiting counts the manual configurations queued by `enqueue`.
	ManualWaiting int
}

// countTrials sorts trials by state.
func countTrials(trials []goptuna.FrozenTrial) Counts {
	var c Counts
	for _, t := range trials {
		budget := t.SystemAttrs[AttrSource] != SourceManual
		switch t.State {
		case goptuna.TrialStateComplete:
			c.Complete++
		case goptuna.TrialStatePruned:
			c.Pruned++
		case goptuna.TrialStateFail:
			c.Fail++
			budget = budget && !requeued(t)
		case goptuna.TrialStateRunning:
			c.Running++
			if budget {
				c.Busy++
			}
			continue
		case goptuna.TrialStateWaiting:
			c.Waiting++
			if !budget {
				c.ManualWaiting++
			}
			continue
		}
		if budget {
			c.Done++
		}
	}
	return c
}

// requeued reports whether a failed trial failed for a reason that sends
// its parameters back to the queue (Ctrl-C, a stale heartbeat), as its
// AttrFailKind says. Such a trial does not count toward the target, even
// when it was not queued again (a retry that died again), so the budget
// stays the number of trials that ran to an end of their own.
func requeued(t goptuna.FrozenTrial) bool {
	switch t.SystemAttrs[AttrFailKind] {
	case FailKindInterrupted, FailKindStale:
		return true
	}
	return false
}

// tryAcquire decides, in one storage transaction that holds the study's
// lock, what this worker does next, and does it: claim a waiting trial,
// create a trial, or nothing (id -1), with a reason to stop or not. Because
// the count and the claim or creation are one atomic step, concurrent
// workers of any number of processes never start more budget-counting
// trials than the target (countTrials: Done + Busy <= target).
func (r *runner) tryAcquire() (id int, stop string, err error) {
	target, err := r.target()
	if err != nil {
		return 0, "", err
	}
	var pref *preference
	if r.dedupes() {
		if pref, err = r.prefer(); err != nil {
			return 0, "", fmt.Errorf("start a trial: %w", err)
		}
	}
	id, err = r.store.AcquireTrial(r.study.ID, func(trials []goptuna.FrozenTrial) storage.Pick {
		stop = ""
		c := countTrials(trials)
		room := c.Done+c.Busy < target
		// Queued manual configurations run whatever the target; the rest
		// of the queue (grid points, retries) only while there is room.
		sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
		for _, t := range trials {
			if t.State == goptuna.TrialStateWaiting && (room || t.SystemAttrs[AttrSource] == SourceManual) {
				return storage.Pick{Action: storage.PickClaim, TrialID: t.ID}
			}
		}
		gridDone := r.spec.Sampler == "grid" && c.Waiting == c.ManualWaiting
		if c.Done >= target {
			stop = "target reached"
			if gridDone {
				stop = "grid complete"
			}
			return storage.Pick{}
		}
		exhausted := false
		if room && pref != nil {
			if pick, ok := pref.next(r, trials); ok {
				return pick
			}
			exhausted = true
		} else if room && r.spec.Sampler != "grid" {
			return storage.Pick{Action: storage.PickCreate}
		}
		// Nothing to start: the rest is running. If it all runs here, this
		// worker is done.
		if r.allRunningMine(trials) {
			switch {
			case gridDone:
				stop = "grid complete"
			case exhausted:
				stop = ReasonExhausted
			default:
				stop = "target reached"
			}
		}
		return storage.Pick{}
	})
	if err == goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // goptuna's sentinel, unwrapped
		return 0, "", err
	}
	if err != nil {
		return 0, "", fmt.Errorf("start a trial: %w", err)
	}
	if id >= 0 {
		r.own(id, true)
	}
	return id, stop, nil
}

// target is the study's target as stored now: `fmtune resume NAME --trials
// N` run anywhere changes it for every worker of the study.
func (r *runner) target() (int, error) {
	attrs, err := r.store.GetStudySystemAttrs(r.study.ID)
	if err != nil {
		return 0, fmt.Errorf("read the study's target: %w", err)
	}
	spec := r.spec
	if stored, err := UnmarshalSpec(attrs[SpecAttr]); err == nil {
		spec.Trials = stored.Trials
	}
	return spec.Target(), nil
}
