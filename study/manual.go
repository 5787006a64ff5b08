package study

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/search"
)

// ErrManualMismatch is returned for a manual run that does not fit its study.
var ErrManualMismatch = errors.New("the manual run does not fit the study")

// Manual is one configuration a person chose, to train and record as a
// trial of a study.
type Manual struct {
	Arch   string
	Point  search.Point
	Epochs int    // 0: the study's
	Seed   int64  // the training seed, stored with the trial
	Tag    string // plan step that asked for the run, if any
}

// CheckManual says why m cannot be recorded in a study with this spec, or
// nil: the architecture must be the study's and the point must lie in its
// search space, so the trial is comparable to the sampled ones.
func CheckManual(spec Spec, m Manual) error {
	if m.Arch != spec.Arch {
		return fmt.Errorf("%w: study %q tunes arch %s; a manual %s run cannot be compared in it (use another --study)", ErrManualMismatch, spec.Name, spec.Arch, m.Arch)
	}
	if !spec.Space.Contains(m.Point) {
		return fmt.Errorf("%w: %s is outside the search space of study %q (lr %s, optimizers %v, batch %s)",
			ErrManualMismatch, m.Point, spec.Name, spec.Space.LR, spec.Space.Optimizers, spec.Space.Batch)
	}
	return nil
}

// RunManual trains m now, in this process, as a manual trial of the study:
// the same rows and attributes as a sampled trial, marked manual, never
// pruned. It returns the stored trial. Of opt, it uses the threads, the
// heartbeat, the storage patience, the progress and the trainer.
func RunManual(ctx context.Context, store Store, ds *data.Dataset, spec Spec, m Manual, opt RunOptions) (TrialInfo, error) {
	if err := CheckManual(spec, m); err != nil {
		return TrialInfo{}, err
	}
	opt.Workers, opt.Timeout = 1, 0
	r, err := newRunner(store, ds, spec, opt)
	if err != nil {
		return TrialInfo{}, err
	}
	r.keepInterrupted = true
	trials, err := store.GetAllTrials(r.study.ID)
	if err != nil {
		return TrialInfo{}, fmt.Errorf("read trials of %q: %w", spec.Name, err)
	}
	r.progress.Start(RunInfo{Study: spec.Name, Workers: 1, Epochs: cmp.Or(m.Epochs, spec.Epochs), Counts: countTrials(trials), Best: bestOf(trials)})
	defer r.progress.Stop()
	seed := m.Seed
	id, err := addFixedTrial(store, r.study.ID, spec.Space, Queued{Point: m.Point, Source: SourceManual, RetryOf: -1, Epochs: m.Epochs, Seed: &seed}, goptuna.TrialStateRunning)
	if err != nil {
		return TrialInfo{}, err
	}
	if m.Tag != "" {
		if err := store.SetTrialSystemAttr(id, AttrPlanStep, m.Tag); err != nil {
			return TrialInfo{}, err
		}
	}
	r.own(id, true)
	if err := r.runTrial(ctx, 0, id); err != nil {
		return TrialInfo{}, err
	}
	t, err := store.GetTrial(id)
	if err != nil {
		return TrialInfo{}, fmt.Errorf("read back manual trial: %w", err)
	}
	info := Info(t)
	if ctx.Err() != nil {
		return info, ctx.Err()
	}
	return info, nil
}
