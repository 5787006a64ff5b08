package study

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// Store is the storage a study runs on: goptuna's Storage plus heartbeats
// for recovering the trials of crashed processes, and the atomic steps that
// let many processes share a study (see storage.AcquireTrial).
type Store interface {
	goptuna.Storage
	RecordHeartbeat(trialID int) error
	FailStaleTrials(studyID int, grace time.Duration) ([]goptuna.FrozenTrial, error)
	RecoverStaleTrials(studyID int, grace time.Duration, requeue func(goptuna.FrozenTrial) (goptuna.FrozenTrial, bool)) ([]goptuna.FrozenTrial, error)
	AcquireTrial(studyID int, choose func([]goptuna.FrozenTrial) storage.Pick) (int, error)
	FailTrial(trialID int, reason string, requeue *goptuna.FrozenTrial) (int, error)
}

var _ Store = (*storage.Storage)(nil)

// Trial system attributes written by the engine. fail_reason is Optuna's own.
const (
	AttrFailReason = "fail_reason"
	AttrSource     = "fmtune:source"   // sampled, grid, manual or retry
	AttrRetryOf    = "fmtune:retry_of" // number of the trial this one retries
	AttrEpochs     = "fmtune:epochs"   // epochs of a manual trial, when not the study's
	AttrSeed       = "fmtune:seed"     // training seed of a manual trial
	AttrWorker     = "fmtune:worker"   // host:pid/goroutine of the worker that ran the trial
	attrFixed      = "fixed_params"    // goptuna's (and Optuna's) enqueued parameters
	readyAttr      = "fmtune:ready"    // study attr: spec stored and grid enqueued
)

// Failure reasons that send a trial's parameters back to the queue.
const (
	ReasonInterrupted = "interrupted"
	ReasonStale       = "heartbeat stale: the process running it stopped"
)

// Sources of a trial's parameters.
const (
	SourceSampled = "sampled"
	SourceGrid    = "grid"
	SourceManual  = "manual"
	SourceRetry   = "retry"
)

// DefaultHeartbeat is how often a running trial records that it is alive.
// A trial whose last heartbeat is older than StaleAfter(interval) is taken
// for dead.
const DefaultHeartbeat = 10 * time.Second

// StaleAfter is the grace period after which a silent trial is dead.
func StaleAfter(interval time.Duration) time.Duration { return 4 * interval }

// DefaultStoragePatience is how long a run waits for an unreachable storage
// (a PostgreSQL server restarting, a network cut) before it gives up.
const DefaultStoragePatience = 5 * time.Minute

// Waits between attempts while the storage is unreachable: doubling from
// outageFirstWait up to outageMaxWait.
const (
	outageFirstWait = time.Second
	outageMaxWait   = 30 * time.Second
)

// RunOptions say how to run a study.
type RunOptions struct {
	Workers   int           // parallel trials in this process (>= 1)
	Timeout   time.Duration // no new trial starts after this (0: none)
	Heartbeat time.Duration // heartbeat interval (0: DefaultHeartbeat)
	// StoragePatience is how long a worker keeps retrying while the storage
	// is unreachable (0: DefaultStoragePatience). Then the run stops with an
	// error; the trials it was running stay RUNNING and are recovered as
	// stale by the next run.
	StoragePatience time.Duration
	Progress        Progress // nil: silent
}

// Outcome is how a run ended.
type Outcome struct {
	Study  string
	Reason string // "target reached", "grid complete", "timeout", "interrupted"
	Counts Counts
	// Finished is the number of trials that finished in this run.
	Finished int
}

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

// requeued reports whether a failed trial's parameters went back to the queue.
func requeued(t goptuna.FrozenTrial) bool {
	r := t.SystemAttrs[AttrFailReason]
	return r == ReasonInterrupted || strings.Contains(r, "no heartbeat")
}

// runner is one run of a study in this process.
type runner struct {
	store    Store
	study    *goptuna.Study
	spec     Spec
	ds       *data.Dataset
	opt      RunOptions
	progress Progress
	deadline time.Time
	// keepInterrupted leaves an interrupted trial failed instead of queueing
	// it again (a manual run someone stopped).
	keepInterrupted bool
	whoami          string // host:pid, for AttrWorker

	mu       sync.Mutex
	mine     map[int]bool // trial IDs running in this process
	reason   string
	finished int
	// lastOutage is when a storage call last found the storage unreachable.
	// Stale trials are not recovered until a grace period after it: the
	// other workers' heartbeats failed during the outage too.
	lastOutage time.Time
}

// Run runs the study called spec.Name, which must already exist (see
// Prepare), until its target is reached, the grid is complete, the timeout
// passes or ctx is cancelled. On cancellation the running trials are failed
// as interrupted, their parameters re-queued, and ctx's error is returned.
func Run(ctx context.Context, store Store, ds *data.Dataset, spec Spec, opt RunOptions) (*Outcome, error) {
	if opt.Workers < 1 {
		return nil, fmt.Errorf("%w: --workers must be at least 1 (got %d)", ErrInvalidSpec, opt.Workers)
	}
	r, err := newRunner(store, ds, spec, opt)
	if err != nil {
		return nil, err
	}
	gs := r.study
	trials, err := store.GetAllTrials(gs.ID)
	if err != nil {
		return nil, fmt.Errorf("read trials of %q: %w", spec.Name, err)
	}
	// goptuna's samplers draw categorical values from the global math/rand.
	_ = search.SeedGlobalRand(spec.Seed + int64(len(trials)))
	if err := r.recoverStale(); err != nil {
		return nil, err
	}
	if trials, err = store.GetAllTrials(gs.ID); err != nil {
		return nil, fmt.Errorf("read trials of %q: %w", spec.Name, err)
	}
	r.progress.Start(RunInfo{Study: spec.Name, Workers: opt.Workers, Target: spec.Target(), Counts: countTrials(trials), Best: bestOf(trials)})

	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			err := r.work(wctx, w)
			if err == nil {
				return
			}
			cancel() // a storage failure stops the other workers too
			errMu.Lock()
			defer errMu.Unlock()
			if firstErr == nil {
				firstErr = err
			} else if err.Error() != firstErr.Error() && !errors.Is(err, context.Canceled) {
				r.progress.Note(fmt.Sprintf("worker %d: %v", w, err))
			}
		}(w)
	}
	wg.Wait()
	r.progress.Stop()

	out := &Outcome{Study: spec.Name, Reason: r.reason, Finished: r.finished}
	if trials, err := store.GetAllTrials(gs.ID); err == nil {
		out.Counts = countTrials(trials)
	}
	if firstErr != nil {
		out.Reason = "storage error"
		return out, firstErr
	}
	if ctx.Err() != nil {
		out.Reason = "interrupted"
		return out, ctx.Err()
	}
	return out, nil
}

// newRunner loads the study for a run in this process.
func newRunner(store Store, ds *data.Dataset, spec Spec, opt RunOptions) (*runner, error) {
	if opt.Heartbeat <= 0 {
		opt.Heartbeat = DefaultHeartbeat
	}
	sampler, err := search.NewSampler(spec.Sampler, spec.Seed)
	if err != nil {
		return nil, err
	}
	pruner, err := search.NewPruner(spec.Pruner, spec.Epochs)
	if err != nil {
		return nil, err
	}
	gs, err := goptuna.LoadStudy(spec.Name,
		goptuna.StudyOptionStorage(store),
		goptuna.StudyOptionSampler(sampler),
		goptuna.StudyOptionPruner(pruner),
		goptuna.StudyOptionLogger(nil))
	if err != nil {
		return nil, fmt.Errorf("load study %q: %w", spec.Name, err)
	}
	if opt.StoragePatience <= 0 {
		opt.StoragePatience = DefaultStoragePatience
	}
	r := &runner{store: store, study: gs, spec: spec, ds: ds, opt: opt, progress: opt.Progress, mine: map[int]bool{}}
	if r.progress == nil {
		r.progress = NopProgress{}
	}
	host, _ := os.Hostname()
	r.whoami = fmt.Sprintf("%s:%d", host, os.Getpid())
	if opt.Timeout > 0 {
		r.deadline = time.Now().Add(opt.Timeout)
	}
	return r, nil
}

// work is one worker goroutine: acquire a trial, run it, until told to stop.
func (r *runner) work(ctx context.Context, w int) error {
	for ctx.Err() == nil {
		id, stop, err := r.acquire(ctx, w)
		if err != nil {
			return err
		}
		if stop != "" {
			r.stop(stop)
			return nil
		}
		if err := r.runTrial(ctx, w, id); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) stop(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason == "" {
		r.reason = reason
	}
}

// acquire returns the ID of a trial for this worker to run (a claimed
// waiting trial or a new one), or a reason to stop. While the storage is
// unreachable it waits (see patient).
func (r *runner) acquire(ctx context.Context, w int) (id int, stop string, err error) {
	for {
		if ctx.Err() != nil {
			return 0, "interrupted", nil
		}
		if !r.deadline.IsZero() && time.Now().After(r.deadline) {
			return 0, "timeout", nil
		}
		err := r.patient(ctx, w, "start a trial", func() error {
			var err error
			id, stop, err = r.tryAcquire()
			return err
		})
		switch {
		case err == goptuna.ErrTrialCannotBeUpdated:
			continue // a waiting trial was taken by a worker that claims without the study lock
		case ctx.Err() != nil:
			return 0, "interrupted", nil
		case err != nil:
			return 0, "", err
		case id >= 0 || stop != "":
			return id, stop, nil
		}
		// Nothing to start now: the rest is running elsewhere. Trials of
		// other processes may still fail and be re-queued, so wait for them.
		select {
		case <-ctx.Done():
			continue
		case <-time.After(r.opt.Heartbeat):
		}
		if err := r.patient(ctx, w, "recover stale trials", r.recoverStale); err != nil && ctx.Err() == nil {
			return 0, "", err
		}
	}
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
		if c.Done >= target {
			stop = "target reached"
			if r.spec.Sampler == "grid" && c.Waiting == c.ManualWaiting {
				stop = "grid complete"
			}
			return storage.Pick{}
		}
		if room && r.spec.Sampler != "grid" {
			return storage.Pick{Action: storage.PickCreate}
		}
		// Nothing to start: the rest is running. If it all runs here, this
		// worker is done.
		if r.allRunningMine(trials) {
			if r.spec.Sampler == "grid" && c.Waiting == c.ManualWaiting {
				stop = "grid complete"
			} else {
				stop = "target reached"
			}
		}
		return storage.Pick{}
	})
	if err == goptuna.ErrTrialCannotBeUpdated {
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

func (r *runner) own(id int, running bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if running {
		r.mine[id] = true
	} else {
		delete(r.mine, id)
	}
}

func (r *runner) allRunningMine(trials []goptuna.FrozenTrial) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range trials {
		if t.State == goptuna.TrialStateRunning && !r.mine[t.ID] {
			return false
		}
	}
	return true
}

// recoverStale fails the trials whose process stopped beating and re-queues
// their parameters in the same transaction, once: a retry that dies again
// is not retried, so a configuration that kills its process cannot loop
// forever. Right after a storage outage it waits a grace period, so that the
// heartbeats the outage held up can catch up.
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
		p, err := search.PointFromParams(t.Params)
		if err != nil {
			notes[t.ID] = fmt.Sprintf("trial %d: its process stopped before it had parameters; nothing to retry", t.Number)
			return goptuna.FrozenTrial{}, false
		}
		retry, err := fixedTrial(r.study.ID, r.spec.Space, requeue(t.SystemAttrs, p, t.Number), goptuna.TrialStateWaiting)
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

// Queued describes a configuration to put in a study's queue.
type Queued struct {
	Point   search.Point
	Source  string // SourceGrid, SourceManual or SourceRetry
	RetryOf int    // number of the trial it retries, or -1
	Epochs  int    // 0: the study's
	Seed    *int64 // nil: derived from the study seed and trial number
}

// Enqueue adds a waiting trial with the fixed point q.Point.
func Enqueue(store goptuna.Storage, studyID int, space search.Space, q Queued) error {
	_, err := addFixedTrial(store, studyID, space, q, goptuna.TrialStateWaiting)
	return err
}

// addFixedTrial adds a trial whose parameters are fixed to q.Point, in state
// (waiting, or running for a trial this process runs at once).
func addFixedTrial(store goptuna.Storage, studyID int, space search.Space, q Queued, state goptuna.TrialState) (int, error) {
	t, err := fixedTrial(studyID, space, q, state)
	if err != nil {
		return 0, err
	}
	id, err := store.CloneTrial(studyID, t)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", q.Point, err)
	}
	return id, nil
}

// fixedTrial is the trial that addFixedTrial inserts.
func fixedTrial(studyID int, space search.Space, q Queued, state goptuna.TrialState) (goptuna.FrozenTrial, error) {
	fixed, err := space.FixedParams(q.Point)
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	b, err := jsonString(fixed)
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	sys := map[string]string{attrFixed: b, AttrSource: q.Source}
	if q.RetryOf >= 0 {
		sys[AttrRetryOf] = strconv.Itoa(q.RetryOf)
	}
	if q.Epochs > 0 {
		sys[AttrEpochs] = strconv.Itoa(q.Epochs)
	}
	if q.Seed != nil {
		sys[AttrSeed] = strconv.FormatInt(*q.Seed, 10)
	}
	return goptuna.FrozenTrial{
		StudyID:            studyID,
		State:              state,
		DatetimeStart:      time.Now(),
		Params:             map[string]interface{}{},
		InternalParams:     map[string]float64{},
		Distributions:      map[string]interface{}{},
		UserAttrs:          map[string]string{},
		SystemAttrs:        sys,
		IntermediateValues: map[int]float64{},
	}, nil
}

// trialSeed derives a trial's training seed from the study seed and the
// trial number, so every trial is reproducible from what is stored.
func trialSeed(studySeed int64, number int) int64 { return studySeed*1_000_003 + int64(number) }

// errGivenUp says that another worker marked this process's trial FAIL (its
// heartbeat looked stale) and queued its parameters again.
var errGivenUp = errors.New("the trial was marked FAIL by another worker")

// runTrial trains the configuration of trial id and records the outcome.
// It returns an error only when the storage fails (or stays unreachable
// past the run's patience): the trial then stays RUNNING, and a later run
// recovers it once its heartbeat is stale. A trial that another worker gave
// up meanwhile is dropped with a note.
func (r *runner) runTrial(ctx context.Context, w, id int) error {
	defer r.own(id, false)
	number := id
	err := r.runTrialSteps(ctx, w, id, &number)
	switch {
	case errors.Is(err, errGivenUp) || errors.Is(err, goptuna.ErrTrialCannotBeUpdated):
		r.progress.Note(fmt.Sprintf("worker %d: trial %d was marked FAIL by another worker (its heartbeat looked stale) and its parameters queued again; dropping it here", w, number))
		return nil
	case err != nil && ctx.Err() != nil && !errors.Is(err, storage.ErrUnavailable):
		// Stopping, and the storage failed too: the trial stays RUNNING.
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("trial %d: ", number))
		r.progress.Note(fmt.Sprintf("worker %d: trial %d stays RUNNING, the next run retries it once its heartbeat is stale: %s", w, number, msg))
		return nil
	}
	return err
}

// storageFailure reports whether err says that the storage failed (it is
// unreachable, full or read-only), as opposed to a problem of the trial.
func storageFailure(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrDiskFull) || errors.Is(err, storage.ErrReadOnly)
}

func (r *runner) runTrialSteps(ctx context.Context, w, id int, number *int) error {
	// Every storage call waits out an outage, within the run's patience.
	store := func(what string, fn func() error) error { return r.patient(ctx, w, what, fn) }
	var sys map[string]string
	err := store(fmt.Sprintf("start trial id %d", id), func() (err error) {
		if *number, err = r.store.GetTrialNumberFromID(id); err != nil {
			return err
		}
		if sys, err = r.store.GetTrialSystemAttrs(id); err != nil {
			return err
		}
		if sys[AttrSource] == "" {
			sys[AttrSource] = SourceSampled
			if err := r.store.SetTrialSystemAttr(id, AttrSource, SourceSampled); err != nil {
				return err
			}
		}
		return r.store.SetTrialSystemAttr(id, AttrWorker, fmt.Sprintf("%s/%d", r.whoami, w))
	})
	if err != nil {
		return fmt.Errorf("trial %d: %w", *number, err)
	}
	tctx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	stopBeat := r.heartbeat(id, w, giveUp)
	defer stopBeat()

	trial := goptuna.Trial{Study: r.study, ID: id}
	var point search.Point
	var suggestErr error
	err = store(fmt.Sprintf("sample trial %d", *number), func() error {
		point, suggestErr = r.spec.Space.Suggest(&trial)
		if storageFailure(suggestErr) || errors.Is(suggestErr, goptuna.ErrTrialCannotBeUpdated) {
			return suggestErr
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trial %d: store its parameters: %w", *number, err)
	}
	if suggestErr != nil {
		return r.fail(ctx, w, id, *number, fmt.Sprintf("sampling failed: %v", suggestErr), nil, nil)
	}
	source := sys[AttrSource]
	epochs, seed := r.spec.Epochs, trialSeed(r.spec.Seed, *number)
	if v, err := strconv.Atoi(sys[AttrEpochs]); err == nil {
		epochs = v
	}
	if v, err := strconv.ParseInt(sys[AttrSeed], 10, 64); err == nil {
		seed = v
	}
	cfg := models.Config{Arch: r.spec.Arch, Optimizer: point.Optimizer, LR: point.LR, Batch: point.Batch, Epochs: epochs, Seed: seed}
	if err := store(fmt.Sprintf("record trial %d", *number), func() error {
		return r.setAttrs(id, map[string]string{"seed": strconv.FormatInt(seed, 10), "arch": r.spec.Arch})
	}); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return r.fail(ctx, w, id, *number, err.Error(), nil, nil)
	}
	r.progress.TrialStarted(w, *number, point)

	var curve []models.EpochStats
	hooks := models.Hooks{
		OnEpoch: func(e models.EpochStats) error {
			curve = append(curve, e)
			r.progress.Epoch(w, *number, e)
			var pruneErr error
			err := store(fmt.Sprintf("report epoch %d of trial %d", e.Epoch, *number), func() error {
				// A manual run is never pruned: the person asked for all of it.
				// Nor is a trial at its last epoch: stopping it then saves no
				// training and would only lose its test evaluation.
				if r.study.Pruner == nil || source == SourceManual || e.Epoch >= epochs {
					return r.store.SetTrialIntermediateValue(id, e.Epoch, e.ValAcc)
				}
				pruneErr = trial.ShouldPrune(e.Epoch, e.ValAcc)
				if errors.Is(pruneErr, storage.ErrUnavailable) || pruneErr == goptuna.ErrTrialCannotBeUpdated {
					return pruneErr
				}
				return nil
			})
			if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
				return errGivenUp
			}
			if err != nil {
				return &hookStorageError{err}
			}
			return pruneErr
		},
		OnBatch: func(epoch, batch, batches int) { r.progress.Batch(w, epoch, batch, batches) },
	}
	start := time.Now()
	res, trainErr := models.Train(tctx, cfg, r.ds.Train, r.ds.Val, hooks)
	seconds := time.Since(start).Seconds()

	result := TrialResult{Number: *number, Point: point, Epochs: len(curve), Seconds: seconds, Source: source}
	if len(curve) > 0 {
		result.Value = curve[len(curve)-1].ValAcc
	}
	var finishErr error
	switch {
	case errors.Is(context.Cause(tctx), errGivenUp) || errors.Is(trainErr, errGivenUp):
		return errGivenUp
	case errors.As(trainErr, new(*hookStorageError)):
		// The storage failed (or stayed unreachable past the patience):
		// leave the trial RUNNING for recovery.
		var hse *hookStorageError
		errors.As(trainErr, &hse)
		return fmt.Errorf("trial %d: %w", *number, hse.err)
	case trainErr == nil:
		result.State = goptuna.TrialStateComplete
		testLoss, testAcc, err := res.Model.Evaluate(r.ds.Test)
		if err != nil {
			return r.fail(ctx, w, id, *number, fmt.Sprintf("test evaluation failed: %v", err), curve, nil)
		}
		result.TestAcc = testAcc
		finishErr = r.finish(ctx, w, id, result, curve, map[string]string{
			"test_accuracy": formatFloat(testAcc), "test_loss": formatFloat(testLoss),
		})
	case errors.Is(trainErr, goptuna.ErrTrialPruned):
		result.State = goptuna.TrialStatePruned
		finishErr = r.finish(ctx, w, id, result, curve, map[string]string{"pruned_at_epoch": strconv.Itoa(len(curve))})
	case errors.Is(trainErr, models.ErrDiverged):
		result.State = goptuna.TrialStateFail
		result.Reason = "diverged: " + trainErr.Error()
		finishErr = r.fail(ctx, w, id, *number, result.Reason, curve, nil)
	case ctx.Err() != nil:
		result.State = goptuna.TrialStateFail
		result.Reason = ReasonInterrupted
		var retry *goptuna.FrozenTrial
		if !r.keepInterrupted {
			t, err := fixedTrial(r.study.ID, r.spec.Space, requeue(sys, point, *number), goptuna.TrialStateWaiting)
			if err != nil {
				return fmt.Errorf("trial %d: %w", *number, err)
			}
			retry = &t
		}
		// ctx has ended: one attempt, no waiting for an unreachable storage.
		finishErr = r.fail(ctx, w, id, *number, ReasonInterrupted, curve, retry)
	default:
		result.State = goptuna.TrialStateFail
		result.Reason = trainErr.Error()
		finishErr = r.fail(ctx, w, id, *number, result.Reason, curve, nil)
	}
	if finishErr != nil {
		return finishErr
	}
	r.mu.Lock()
	r.finished++
	r.mu.Unlock()
	r.progress.TrialFinished(w, result)
	return nil
}

// hookStorageError is a storage failure met while reporting an epoch.
type hookStorageError struct{ err error }

func (e *hookStorageError) Error() string { return e.err.Error() }
func (e *hookStorageError) Unwrap() error { return e.err }

// requeue is the queue entry that retries an interrupted trial: a manual
// or grid configuration keeps its source (and a manual one its epochs and
// seed); anything else becomes a retry.
func requeue(sys map[string]string, p search.Point, number int) Queued {
	q := Queued{Point: p, Source: SourceRetry, RetryOf: number}
	switch sys[AttrSource] {
	case SourceManual:
		q.Source = SourceManual
		q.Epochs, _ = strconv.Atoi(sys[AttrEpochs])
		if seed, err := strconv.ParseInt(sys[AttrSeed], 10, 64); err == nil {
			q.Seed = &seed
		}
	case SourceGrid:
		q.Source = SourceGrid
	}
	return q
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
			case err == goptuna.ErrTrialCannotBeUpdated:
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

// finish stores the learning curve and attributes, the value, then the final
// state of a complete or pruned trial, each write waiting out a storage
// outage.
func (r *runner) finish(ctx context.Context, w, id int, res TrialResult, curve []models.EpochStats, extra map[string]string) error {
	attrs := curveAttrs(curve, res.Seconds)
	for k, v := range extra {
		attrs[k] = v
	}
	err := r.patient(ctx, w, fmt.Sprintf("store the result of trial %d", res.Number), func() error {
		if err := r.setAttrs(id, attrs); err != nil {
			return err
		}
		if err := r.store.SetTrialValue(id, res.Value); err != nil {
			return err
		}
		err := r.store.SetTrialState(id, res.State)
		if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
			// Finished already: by this very write, when a lost connection
			// hid its COMMIT, or by another worker that gave the trial up.
			if t, gerr := r.store.GetTrial(id); gerr == nil && t.State == res.State {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("trial %d: store the result: %w", res.Number, err)
	}
	return nil
}

// fail records the curve (if any), then the reason (Optuna's fail_reason)
// and the FAIL state, together with the retry to queue (if any) in one
// transaction. Each write waits out a storage outage, unless ctx has ended.
func (r *runner) fail(ctx context.Context, w, id, number int, reason string, curve []models.EpochStats, retry *goptuna.FrozenTrial) error {
	err := r.patient(ctx, w, fmt.Sprintf("mark trial %d FAIL", number), func() error {
		if len(curve) > 0 {
			if err := r.setAttrs(id, curveAttrs(curve, 0)); err != nil {
				return err
			}
		}
		_, err := r.store.FailTrial(id, reason, retry)
		if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
			if t, gerr := r.store.GetTrial(id); gerr == nil && t.State == goptuna.TrialStateFail && t.SystemAttrs[AttrFailReason] == reason {
				return nil // this very write, whose COMMIT a lost connection hid
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("trial %d: mark FAIL (%s): %w", number, describeReason(reason), err)
	}
	return nil
}

func (r *runner) setAttrs(id int, attrs map[string]string) error {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := r.store.SetTrialUserAttr(id, k, attrs[k]); err != nil {
			return fmt.Errorf("trial %d: set %s: %w", id, k, err)
		}
	}
	return nil
}

// curveAttrs are the user attributes that describe a training run.
func curveAttrs(curve []models.EpochStats, seconds float64) map[string]string {
	attrs := map[string]string{"epochs": strconv.Itoa(len(curve))}
	if b, err := jsonString(curve); err == nil {
		attrs["curve"] = b
	}
	if len(curve) > 0 {
		last := curve[len(curve)-1]
		attrs["val_accuracy"] = formatFloat(last.ValAcc)
		attrs["val_loss"] = formatFloat(last.ValLoss)
		attrs["train_accuracy"] = formatFloat(last.TrainAcc)
		attrs["train_loss"] = formatFloat(last.TrainLoss)
		var sps float64
		for _, e := range curve {
			sps += e.SamplesPerSec
		}
		attrs["samples_per_sec"] = formatFloat(sps / float64(len(curve)))
	}
	if seconds > 0 {
		attrs["seconds"] = formatFloat(seconds)
	}
	return attrs
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// describeReason shortens a failure reason for one line of output.
func describeReason(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
