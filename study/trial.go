package study

// One trial, from the claim to its recorded outcome: parameters, training
// with a report (and a pruning decision) per epoch, test evaluation.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// trialSeed derives a trial's training seed from the study seed and the
// trial number, so every trial is reproducible from what is stored.
func trialSeed(studySeed int64, number int) int64 { return studySeed*1_000_003 + int64(number) }

// errGivenUp says that another worker marked this process's trial FAIL (its
// heartbeat looked stale) and queued its parameters again.
var errGivenUp = errors.New("the trial was marked FAIL by another worker")

// trialRun is one trial run by one worker of a runner.
type trialRun struct {
	r      *runner
	ctx    context.Context
	w, id  int
	number int               // the trial's number, once read (its id until then)
	sys    map[string]string // its system attributes at the start
	source string
	point  search.Point
	epochs int
	trial  goptuna.Trial
	resume *models.Checkpoint // where training continues, or nil
	ckpt   checkpointCost
}

// runTrial trains the configuration of trial id and records the outcome.
// It returns an error only when the storage fails (or stays unreachable
// past the run's patience): the trial then stays RUNNING, and a later run
// recovers it once its heartbeat is stale. A trial that another worker gave
// up meanwhile is dropped with a note.
func (r *runner) runTrial(ctx context.Context, w, id int) error {
	defer r.own(id, false)
	t := &trialRun{r: r, ctx: ctx, w: w, id: id, number: id, trial: goptuna.Trial{Study: r.study, ID: id}}
	err := t.run()
	switch {
	case errors.Is(err, errGivenUp) || errors.Is(err, goptuna.ErrTrialCannotBeUpdated):
		r.progress.Note(fmt.Sprintf("worker %d: trial %d was marked FAIL by another worker (its heartbeat looked stale) and its parameters queued again; dropping it here", w, t.number))
		return nil
	case err != nil && ctx.Err() != nil && !errors.Is(err, storage.ErrUnavailable):
		// Stopping, and the storage failed too: the trial stays RUNNING.
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("trial %d: ", t.number))
		r.progress.Note(fmt.Sprintf("worker %d: trial %d stays RUNNING, the next run retries it once its heartbeat is stale: %s", w, t.number, msg))
		return nil
	}
	return err
}

// store runs one storage step of the trial, waiting out an outage within
// the run's patience.
func (t *trialRun) store(what string, fn func() error) error {
	return t.r.patient(t.ctx, t.w, what, fn)
}

// run goes through the trial's steps.
func (t *trialRun) run() error {
	if err := t.start(); err != nil {
		return fmt.Errorf("trial %d: %w", t.number, err)
	}
	tctx, giveUp := context.WithCancelCause(t.ctx)
	defer giveUp(nil)
	stopBeat := t.r.heartbeat(t.id, t.w, giveUp)
	defer stopBeat()

	fault.Point(fault.AfterClaim)
	if done, err := t.sample(); done || err != nil {
		return err
	}
	fault.Point(fault.AfterParams)
	cfg, err := t.configure()
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return t.r.fail(t.ctx, t.w, t.id, t.number, err.Error(), "", nil, nil)
	}
	t.r.progress.TrialStarted(t.w, t.number, t.point)
	return t.train(tctx, cfg)
}

// start reads the trial's number and attributes and says who runs it.
func (t *trialRun) start() error {
	return t.store(fmt.Sprintf("start trial id %d", t.id), func() (err error) {
		if t.number, err = t.r.store.GetTrialNumberFromID(t.id); err != nil {
			return err
		}
		if t.sys, err = t.r.store.GetTrialSystemAttrs(t.id); err != nil {
			return err
		}
		if t.sys[AttrSource] == "" {
			t.sys[AttrSource] = SourceSampled
			if err := t.r.store.SetTrialSystemAttr(t.id, AttrSource, SourceSampled); err != nil {
				return err
			}
		}
		t.source = t.sys[AttrSource]
		return t.r.store.SetTrialSystemAttr(t.id, AttrWorker, fmt.Sprintf("%s/%d", t.r.whoami, t.w))
	})
}

// sample stores the trial's parameters: sampled, or its fixed_params. done
// is true when sampling failed and the trial was recorded FAIL.
func (t *trialRun) sample() (done bool, err error) {
	var suggestErr error
	err = t.store(fmt.Sprintf("sample trial %d", t.number), func() error {
		t.point, suggestErr = t.r.spec.Space.Suggest(&t.trial)
		if storageFailure(suggestErr) || errors.Is(suggestErr, goptuna.ErrTrialCannotBeUpdated) {
			return suggestErr
		}
		return nil
	})
	if err != nil {
		return true, fmt.Errorf("trial %d: store its parameters: %w", t.number, err)
	}
	if suggestErr != nil {
		return true, t.r.fail(t.ctx, t.w, t.id, t.number, fmt.Sprintf("sampling failed: %v", suggestErr), "", nil, nil)
	}
	return false, nil
}

// configure is the training configuration of the trial (a manual trial may
// have its own epochs and seed), stored with it.
func (t *trialRun) configure() (models.Config, error) {
	t.epochs = t.r.spec.Epochs
	seed := trialSeed(t.r.spec.Seed, t.number)
	if v, err := strconv.Atoi(t.sys[AttrEpochs]); err == nil {
		t.epochs = v
	}
	if v, err := strconv.ParseInt(t.sys[AttrSeed], 10, 64); err == nil {
		seed = v
	}
	cfg := models.Config{Arch: t.r.spec.Arch, Optimizer: t.point.Optimizer, LR: t.point.LR, Batch: t.point.Batch, Epochs: t.epochs, Seed: seed, Threads: t.r.opt.Threads}
	var err error
	if t.resume, err = t.loadCheckpoint(cfg); err != nil {
		return cfg, err
	}
	if t.resume != nil {
		cfg.Seed = t.resume.Seed // the training it continues
	}
	err = t.store(fmt.Sprintf("record trial %d", t.number), func() error {
		return t.r.setAttrs(t.id, map[string]string{"seed": strconv.FormatInt(cfg.Seed, 10), "arch": t.r.spec.Arch})
	})
	if err == nil && t.resume != nil {
		err = t.resumeFrom(t.resume)
	}
	return cfg, err
}

// report stores epoch e's validation accuracy and asks the pruner, unless
// the trial is manual (a person asked for all of it) or at its last epoch
// (stopping it then saves no training and only loses its test evaluation).
// A trial that is not learning (deadCheck) stops without asking.
func (t *trialRun) report(e models.EpochStats) error {
	var pruneErr error
	dead := t.deadCheck(e)
	err := t.store(fmt.Sprintf("report epoch %d of trial %d", e.Epoch, t.number), func() error {
		if dead != "" || t.r.study.Pruner == nil || t.source == SourceManual || e.Epoch >= t.epochs {
			return t.r.store.SetTrialIntermediateValue(t.id, e.Epoch, e.ValAcc)
		}
		pruneErr = t.trial.ShouldPrune(e.Epoch, e.ValAcc)
		if errors.Is(pruneErr, storage.ErrUnavailable) || pruneErr == goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // goptuna's sentinel, unwrapped
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
	if dead != "" {
		return &notLearningError{dead}
	}
	return pruneErr
}

// train trains the configuration and records how the training ended.
func (t *trialRun) train(tctx context.Context, cfg models.Config) error {
	r := t.r
	var curve []models.EpochStats
	var trained float64 // epochs, the part done of the current one included
	resumed := 0        // epochs continued from a checkpoint
	if t.resume != nil {
		resumed = t.resume.Epoch
	}
	hooks := models.Hooks{
		OnEpoch: func(e models.EpochStats) error {
			curve = append(curve, e)
			r.progress.Epoch(t.w, t.number, e)
			return t.report(e)
		},
		OnBatch: func(epoch, batch, batches int) {
			trained = float64(epoch-1-resumed) + float64(batch)/float64(batches)
			r.progress.Batch(t.w, epoch, batch, batches)
		},
		OnCheckpoint: t.saveCheckpoint,
		Resume:       t.resume,
	}
	if t.resume != nil {
		curve = append(curve, t.resume.History...)
	}
	start := time.Now()
	model, trainErr := r.opt.Train(tctx, cfg, r.ds.Train, r.ds.Val, hooks)
	seconds := time.Since(start).Seconds()
	done := ran{curve: curve, epochs: trained, seconds: seconds, resumed: resumed}

	result := TrialResult{Number: t.number, Point: t.point, Epochs: len(curve), Seconds: seconds, Source: t.source}
	if len(curve) > 0 {
		result.Value = curve[len(curve)-1].ValAcc
	}
	var hse *hookStorageError
	var dead *notLearningError
	var finishErr error
	if errors.Is(trainErr, models.ErrDiverged) && r.spec.DeadAfter > 0 && t.source != SourceManual {
		dead = &notLearningError{fmt.Sprintf("%s: %v", ReasonNotLearning, trainErr)}
	}
	switch {
	case errors.Is(context.Cause(tctx), errGivenUp) || errors.Is(trainErr, errGivenUp):
		return errGivenUp
	case errors.As(trainErr, &hse):
		// The storage failed (or stayed unreachable past the patience):
		// leave the trial RUNNING for recovery.
		return fmt.Errorf("trial %d: %w", t.number, hse.err)
	case trainErr == nil:
		fault.Point(fault.AfterLastReport)
		result.State = goptuna.TrialStateComplete
		testLoss, testAcc, err := model.Evaluate(r.ds.Test)
		if err != nil {
			return r.failAfter(t.ctx, t.w, t.id, t.number, fmt.Sprintf("test evaluation failed: %v", err), "", done, nil)
		}
		result.TestAcc = testAcc
		finishErr = r.finish(t.ctx, t.w, t.id, result, curve, withAttrs(t.runAttrs(curve), map[string]string{
			"test_accuracy": formatFloat(testAcc), "test_loss": formatFloat(testLoss),
		}))
	case dead != nil || errors.As(trainErr, &dead):
		result.State = goptuna.TrialStatePruned
		result.Reason = dead.reason
		finishErr = r.finish(t.ctx, t.w, t.id, result, curve, withAttrs(t.runAttrs(curve), map[string]string{
			"pruned_at_epoch": strconv.Itoa(len(curve)), "pruned_reason": dead.reason,
		}))
	case errors.Is(trainErr, goptuna.ErrTrialPruned):
		result.State = goptuna.TrialStatePruned
		finishErr = r.finish(t.ctx, t.w, t.id, result, curve, withAttrs(t.runAttrs(curve), map[string]string{"pruned_at_epoch": strconv.Itoa(len(curve))}))
	case errors.Is(trainErr, models.ErrDiverged):
		result.State = goptuna.TrialStateFail
		result.Reason = "diverged: " + trainErr.Error()
		finishErr = r.failAfter(t.ctx, t.w, t.id, t.number, result.Reason, "", done, nil)
	case t.ctx.Err() != nil:
		result.State = goptuna.TrialStateFail
		result.Reason = ReasonInterrupted
		var retry *goptuna.FrozenTrial
		if !r.keepInterrupted {
			q, err := fixedTrial(r.study.ID, r.spec.Space, requeue(t.sys, t.point, t.number, &cfg.Seed), goptuna.TrialStateWaiting)
			if err != nil {
				return fmt.Errorf("trial %d: %w", t.number, err)
			}
			retry = &q
		}
		// ctx has ended: one attempt, no waiting for an unreachable storage.
		finishErr = r.failAfter(t.ctx, t.w, t.id, t.number, ReasonInterrupted, FailKindInterrupted, done, retry)
	default:
		result.State = goptuna.TrialStateFail
		result.Reason = trainErr.Error()
		finishErr = r.failAfter(t.ctx, t.w, t.id, t.number, result.Reason, "", done, nil)
	}
	if finishErr != nil {
		return finishErr
	}
	if result.State == goptuna.TrialStateComplete {
		t.keep(model, result)
	}
	r.mu.Lock()
	r.finished++
	r.mu.Unlock()
	r.progress.TrialFinished(t.w, result)
	return nil
}

// hookStorageError is a storage failure met while reporting an epoch.
type hookStorageError struct{ err error }

func (e *hookStorageError) Error() string { return e.err.Error() }
func (e *hookStorageError) Unwrap() error { return e.err }

// withAttrs merges attribute maps (later ones win).
func withAttrs(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
