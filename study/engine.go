package study

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// Store is the storage a study runs on: goptuna's Storage plus heartbeats
// for recovering the trials of crashed processes.
type Store interface {
	goptuna.Storage
	RecordHeartbeat(trialID int) error
	FailStaleTrials(studyID int, grace time.Duration) ([]goptuna.FrozenTrial, error)
}

// Trial system attributes written by the engine. fail_reason is Optuna's own.
const (
	AttrFailReason = "fail_reason"
	AttrSource     = "fmtune:source"   // sampled, grid, manual or retry
	AttrRetryOf    = "fmtune:retry_of" // number of the trial this one retries
	AttrEpochs     = "fmtune:epochs"   // epochs of a manual trial, when not the study's
	AttrSeed       = "fmtune:seed"     // training seed of a manual trial
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

// RunOptions say how to run a study.
type RunOptions struct {
	Workers   int           // parallel trials in this process (>= 1)
	Timeout   time.Duration // no new trial starts after this (0: none)
	Heartbeat time.Duration // heartbeat interval (0: DefaultHeartbeat)
	Progress  Progress      // nil: silent
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

	mu       sync.Mutex
	mine     map[int]bool // trial IDs running in this process
	reason   string
	finished int
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
	errs := make([]error, opt.Workers)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if errs[w] = r.work(wctx, w); errs[w] != nil {
				cancel() // a storage failure stops the other workers too
			}
		}(w)
	}
	wg.Wait()
	r.progress.Stop()

	out := &Outcome{Study: spec.Name, Reason: r.reason, Finished: r.finished}
	if trials, err := store.GetAllTrials(gs.ID); err == nil {
		out.Counts = countTrials(trials)
	}
	if err := errors.Join(errs...); err != nil {
		return out, err
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
	r := &runner{store: store, study: gs, spec: spec, ds: ds, opt: opt, progress: opt.Progress, mine: map[int]bool{}}
	if r.progress == nil {
		r.progress = NopProgress{}
	}
	if opt.Timeout > 0 {
		r.deadline = time.Now().Add(opt.Timeout)
	}
	return r, nil
}

// work is one worker goroutine: acquire a trial, run it, until told to stop.
func (r *runner) work(ctx context.Context, w int) error {
	for ctx.Err() == nil {
		id, stop, err := r.acquire(ctx)
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
// waiting trial or a new one), or a reason to stop.
func (r *runner) acquire(ctx context.Context) (id int, stop string, err error) {
	for {
		if ctx.Err() != nil {
			return 0, "interrupted", nil
		}
		if !r.deadline.IsZero() && time.Now().After(r.deadline) {
			return 0, "timeout", nil
		}
		trials, err := r.store.GetAllTrials(r.study.ID)
		if err != nil {
			return 0, "", fmt.Errorf("read trials: %w", err)
		}
		c := countTrials(trials)
		target := r.spec.Target()
		sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
		// Queued manual configurations run whatever the target; the rest
		// of the queue (grid points, retries) only while the target is open.
		id, claimed, err := r.claimWaiting(trials, func(t goptuna.FrozenTrial) bool {
			return t.SystemAttrs[AttrSource] == SourceManual || c.Done < target
		})
		if err != nil || claimed {
			return id, "", err
		}
		if c.Done >= target {
			return 0, "target reached", nil
		}
		if c.Waiting > c.ManualWaiting {
			continue // all taken meanwhile: look again
		}
		full := c.Done+c.Busy >= target
		if r.spec.Sampler != "grid" && !full {
			id, err := r.store.CreateNewTrial(r.study.ID)
			if err != nil {
				return 0, "", fmt.Errorf("create trial: %w", err)
			}
			r.own(id, true)
			return id, "", nil
		}
		// Nothing to start: the rest is running. If it all runs here, this
		// worker is done; trials of other processes may still fail and be
		// re-queued, so wait for them.
		if r.allRunningMine(trials) {
			if r.spec.Sampler == "grid" {
				return 0, "grid complete", nil
			}
			return 0, "target reached", nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.opt.Heartbeat):
		}
		if err := r.recoverStale(); err != nil {
			return 0, "", err
		}
	}
}

// claimWaiting claims the first waiting trial that want accepts. Claiming is
// an atomic state change in the storage, so across goroutines and processes
// exactly one claimer wins each trial.
func (r *runner) claimWaiting(trials []goptuna.FrozenTrial, want func(goptuna.FrozenTrial) bool) (int, bool, error) {
	for _, t := range trials {
		if t.State != goptuna.TrialStateWaiting || !want(t) {
			continue
		}
		err := r.store.SetTrialState(t.ID, goptuna.TrialStateRunning)
		if err == goptuna.ErrTrialCannotBeUpdated {
			continue // another worker took it first
		}
		if err != nil {
			return 0, false, fmt.Errorf("claim trial %d: %w", t.Number, err)
		}
		r.own(t.ID, true)
		return t.ID, true, nil
	}
	return 0, false, nil
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
// their parameters, once: a retry that dies again is not retried, so a
// configuration that kills its process cannot loop forever.
func (r *runner) recoverStale() error {
	stale, err := r.store.FailStaleTrials(r.study.ID, StaleAfter(r.opt.Heartbeat))
	if err != nil {
		return fmt.Errorf("recover stale trials: %w", err)
	}
	for _, t := range stale {
		if t.SystemAttrs[AttrRetryOf] != "" {
			r.progress.Note(fmt.Sprintf("trial %d: its process stopped; it was already a retry, so it is not queued again", t.Number))
			continue
		}
		p, err := search.PointFromParams(t.Params)
		if err != nil {
			r.progress.Note(fmt.Sprintf("trial %d: its process stopped before it had parameters; nothing to retry", t.Number))
			continue
		}
		if err := Enqueue(r.store, r.study.ID, r.spec.Space, requeue(t.SystemAttrs, p, t.Number)); err != nil {
			return err
		}
		r.progress.Note(fmt.Sprintf("trial %d: its process stopped (heartbeat stale); marked FAIL, %s re-queued", t.Number, p))
	}
	return nil
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
	fixed, err := space.FixedParams(q.Point)
	if err != nil {
		return 0, err
	}
	b, err := jsonString(fixed)
	if err != nil {
		return 0, err
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
	id, err := store.CloneTrial(studyID, goptuna.FrozenTrial{
		StudyID:            studyID,
		State:              state,
		DatetimeStart:      time.Now(),
		Params:             map[string]interface{}{},
		InternalParams:     map[string]float64{},
		Distributions:      map[string]interface{}{},
		UserAttrs:          map[string]string{},
		SystemAttrs:        sys,
		IntermediateValues: map[int]float64{},
	})
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", q.Point, err)
	}
	return id, nil
}

// trialSeed derives a trial's training seed from the study seed and the
// trial number, so every trial is reproducible from what is stored.
func trialSeed(studySeed int64, number int) int64 { return studySeed*1_000_003 + int64(number) }

// runTrial trains the configuration of trial id and records the outcome.
// It returns an error only when the storage fails.
func (r *runner) runTrial(ctx context.Context, w, id int) error {
	defer r.own(id, false)
	number, err := r.store.GetTrialNumberFromID(id)
	if err != nil {
		return fmt.Errorf("trial %d: %w", id, err)
	}
	sys, err := r.store.GetTrialSystemAttrs(id)
	if err != nil {
		return fmt.Errorf("trial %d: %w", number, err)
	}
	if sys[AttrSource] == "" {
		sys[AttrSource] = SourceSampled
		if err := r.store.SetTrialSystemAttr(id, AttrSource, SourceSampled); err != nil {
			return err
		}
	}
	stopBeat := r.heartbeat(id)
	defer stopBeat()

	trial := goptuna.Trial{Study: r.study, ID: id}
	point, err := r.spec.Space.Suggest(&trial)
	if err != nil {
		return r.fail(id, fmt.Sprintf("sampling failed: %v", err))
	}
	source := sys[AttrSource]
	epochs, seed := r.spec.Epochs, trialSeed(r.spec.Seed, number)
	if v, err := strconv.Atoi(sys[AttrEpochs]); err == nil {
		epochs = v
	}
	if v, err := strconv.ParseInt(sys[AttrSeed], 10, 64); err == nil {
		seed = v
	}
	cfg := models.Config{Arch: r.spec.Arch, Optimizer: point.Optimizer, LR: point.LR, Batch: point.Batch, Epochs: epochs, Seed: seed}
	if err := r.setAttrs(id, map[string]string{"seed": strconv.FormatInt(seed, 10), "arch": r.spec.Arch}); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return r.fail(id, err.Error())
	}
	r.progress.TrialStarted(w, number, point)

	var curve []models.EpochStats
	hooks := models.Hooks{
		OnEpoch: func(e models.EpochStats) error {
			curve = append(curve, e)
			r.progress.Epoch(w, number, e)
			// A manual run is never pruned: the person asked for all of it.
			if r.study.Pruner == nil || source == SourceManual {
				return r.store.SetTrialIntermediateValue(id, e.Epoch, e.ValAcc)
			}
			return trial.ShouldPrune(e.Epoch, e.ValAcc)
		},
		OnBatch: func(epoch, batch, batches int) { r.progress.Batch(w, epoch, batch, batches) },
	}
	start := time.Now()
	res, trainErr := models.Train(ctx, cfg, r.ds.Train, r.ds.Val, hooks)
	seconds := time.Since(start).Seconds()

	result := TrialResult{Number: number, Point: point, Epochs: len(curve), Seconds: seconds}
	if len(curve) > 0 {
		result.Value = curve[len(curve)-1].ValAcc
	}
	var finishErr error
	switch {
	case trainErr == nil:
		result.State = goptuna.TrialStateComplete
		testLoss, testAcc, err := res.Model.Evaluate(r.ds.Test)
		if err != nil {
			return r.fail(id, fmt.Sprintf("test evaluation failed: %v", err))
		}
		result.TestAcc = testAcc
		finishErr = r.finish(id, result, curve, map[string]string{
			"test_accuracy": formatFloat(testAcc), "test_loss": formatFloat(testLoss),
		})
	case errors.Is(trainErr, goptuna.ErrTrialPruned):
		result.State = goptuna.TrialStatePruned
		finishErr = r.finish(id, result, curve, map[string]string{"pruned_at_epoch": strconv.Itoa(len(curve))})
	case errors.Is(trainErr, models.ErrDiverged):
		result.State = goptuna.TrialStateFail
		result.Reason = "diverged: " + trainErr.Error()
		finishErr = r.failWithCurve(id, result.Reason, curve)
	case ctx.Err() != nil:
		result.State = goptuna.TrialStateFail
		result.Reason = ReasonInterrupted
		finishErr = r.failWithCurve(id, ReasonInterrupted, curve)
		if finishErr == nil && !r.keepInterrupted {
			finishErr = Enqueue(r.store, r.study.ID, r.spec.Space, requeue(sys, point, number))
		}
	default:
		result.State = goptuna.TrialStateFail
		result.Reason = trainErr.Error()
		finishErr = r.failWithCurve(id, result.Reason, curve)
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
// the returned function is called.
func (r *runner) heartbeat(id int) (stop func()) {
	_ = r.store.RecordHeartbeat(id)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.opt.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := r.store.RecordHeartbeat(id); err != nil {
					r.progress.Note(fmt.Sprintf("heartbeat of trial %d failed: %v", id, err))
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// finish stores the learning curve and attributes, the value, then the final
// state of a complete or pruned trial.
func (r *runner) finish(id int, res TrialResult, curve []models.EpochStats, extra map[string]string) error {
	attrs := curveAttrs(curve, res.Seconds)
	for k, v := range extra {
		attrs[k] = v
	}
	if err := r.setAttrs(id, attrs); err != nil {
		return err
	}
	if err := r.store.SetTrialValue(id, res.Value); err != nil {
		return fmt.Errorf("trial %d: set value: %w", res.Number, err)
	}
	if err := r.store.SetTrialState(id, res.State); err != nil {
		return fmt.Errorf("trial %d: set state: %w", res.Number, err)
	}
	return nil
}

func (r *runner) failWithCurve(id int, reason string, curve []models.EpochStats) error {
	if len(curve) > 0 {
		if err := r.setAttrs(id, curveAttrs(curve, 0)); err != nil {
			return err
		}
	}
	return r.fail(id, reason)
}

// fail records reason (Optuna's fail_reason) and marks the trial FAIL.
func (r *runner) fail(id int, reason string) error {
	if err := r.store.SetTrialSystemAttr(id, AttrFailReason, reason); err != nil {
		return fmt.Errorf("trial %d: set fail reason: %w", id, err)
	}
	if err := r.store.SetTrialState(id, goptuna.TrialStateFail); err != nil {
		return fmt.Errorf("trial %d: set state: %w", id, err)
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
