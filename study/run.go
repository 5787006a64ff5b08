package study

// A run of a study in this process: the options, the worker goroutines and
// how each acquires its next trial.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// Store is the storage a study runs on: goptuna's Storage plus heartbeats
// and the atomic steps that let many processes share a study (see
// storage.AcquireTrial).
type Store interface {
	goptuna.Storage
	RecordHeartbeat(trialID int) error
	RecoverStaleTrials(studyID int, grace time.Duration, requeue func(goptuna.FrozenTrial) (goptuna.FrozenTrial, bool)) ([]goptuna.FrozenTrial, error)
	AcquireTrial(studyID int, choose func([]goptuna.FrozenTrial) storage.Pick) (int, error)
	FailTrial(trialID int, reason, kind string, requeue *goptuna.FrozenTrial) (int, error)
	SaveCheckpoint(trialID, epoch int, state []byte) error
	LoadCheckpoint(trialID int) (epoch int, state []byte, err error)
}

var _ Store = (*storage.Storage)(nil)

// Trainer trains one configuration on train, reports every epoch (measured
// on val) through hooks, and returns the trained model. models.Train does it
// for real (TrainModel); the engine's tests give a tiny fake.
type Trainer func(ctx context.Context, cfg models.Config, train, val *data.Set, hooks models.Hooks) (Evaluator, error)

// Evaluator is a trained model, as the engine uses it: for the test set.
type Evaluator interface {
	Evaluate(test *data.Set) (loss, acc float64, err error)
}

// TrainModel is the default Trainer: models.Train.
func TrainModel(ctx context.Context, cfg models.Config, train, val *data.Set, hooks models.Hooks) (Evaluator, error) {
	res, err := models.Train(ctx, cfg, train, val, hooks)
	if err != nil {
		return nil, err
	}
	return res.Model, nil
}

// RunOptions say how to run a study.
type RunOptions struct {
	Workers int // parallel trials in this process (>= 1)
	// Threads is the most threads one trial uses; 0 (automatic) shares the
	// cores equally among the trials training at the moment, so the last
	// trials of a run take the cores the finished ones left. Results do
	// not depend on it.
	Threads   int
	Timeout   time.Duration // no new trial starts after this (0: none)
	Heartbeat time.Duration // heartbeat interval (0: DefaultHeartbeat)
	// StoragePatience is how long a worker keeps retrying while the storage
	// is unreachable (0: DefaultStoragePatience). Then the run stops with an
	// error; the trials it was running stay RUNNING and are recovered as
	// stale by the next run.
	StoragePatience time.Duration
	Progress        Progress // nil: silent
	Train           Trainer  // nil: TrainModel
	// KeepModels is how many of the study's best models the storage keeps
	// (0: DefaultKeepModels; negative: none). See keep.go.
	KeepModels int
}

// Outcome is how a run ended.
type Outcome struct {
	Study  string
	Reason string // "target reached", "grid complete", "space exhausted", "timeout", "interrupted"
	Counts Counts
	// Finished is the number of trials that finished in this run.
	Finished int
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
		return nil, &FieldError{Field: FieldWorkers, Msg: fmt.Sprintf("must be at least 1 (got %d)", opt.Workers)}
	}
	if opt.Threads < 0 {
		return nil, &FieldError{Field: FieldThreads, Msg: fmt.Sprintf("must not be negative (got %d; 0 shares the cores among the running trials)", opt.Threads)}
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
	if err := search.SeedGlobalRand(spec.Seed + int64(len(trials))); err != nil {
		return nil, fmt.Errorf("study %q: %w", spec.Name, err)
	}
	if err := r.recoverStale(); err != nil {
		return nil, err
	}
	if trials, err = store.GetAllTrials(gs.ID); err != nil {
		return nil, fmt.Errorf("read trials of %q: %w", spec.Name, err)
	}
	r.progress.Start(RunInfo{Study: spec.Name, Workers: opt.Workers, Target: spec.Target(), Epochs: spec.Epochs, Counts: countTrials(trials), Best: bestOf(trials)})

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
			switch {
			case firstErr == nil:
				firstErr = err
			case errors.Is(err, context.Canceled), sameStorageFailure(err, firstErr):
				// stopped by the first error, or the same failure again
			default:
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
	if opt.StoragePatience <= 0 {
		opt.StoragePatience = DefaultStoragePatience
	}
	if opt.Train == nil {
		opt.Train = TrainModel
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
		case err == goptuna.ErrTrialCannotBeUpdated: //nolint:errorlint // goptuna's sentinel, unwrapped
			continue // a waiting trial was taken by a worker that claims without the study lock
		case err != nil && ctx.Err() != nil:
			return 0, "interrupted", nil
		case err != nil:
			return 0, "", err
		case id >= 0:
			// Acquired, even if ctx ended meanwhile: runTrial then fails it
			// as interrupted and queues it again, instead of leaving it
			// RUNNING until its heartbeat is stale.
			return id, "", nil
		case ctx.Err() != nil:
			return 0, "interrupted", nil
		case stop != "":
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
