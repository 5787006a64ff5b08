package study

// The engine's tests with a fake trainer: they need no dataset and run in
// a fraction of a second each, on a real SQLite storage.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// noData is the dataset of a run with a fake trainer: it is never read.
var noData = &data.Dataset{}

// fakeTrainer trains nothing: it reports cfg.Epochs epochs whose validation
// accuracy depends on the configuration and the epoch only, and checks ctx
// between epochs as models.Train does between batches.
type fakeTrainer struct {
	// onEpoch, if set, is called before epoch e of each training is
	// reported: tests act there (cancel, cut the storage).
	onEpoch func(cfg models.Config, e int)
	// acc, if set, replaces the default accuracy.
	acc func(cfg models.Config, e int) float64

	mu      sync.Mutex
	configs []models.Config
}

// fakeAcc is the default accuracy: higher for lr near 0.01 and later epochs.
func fakeAcc(cfg models.Config, e int) float64 {
	return 0.6 + 0.02*float64(e) - 0.05*math.Abs(math.Log10(cfg.LR)+2) - float64(cfg.Batch)/1e5
}

// Train is a Trainer.
func (f *fakeTrainer) Train(ctx context.Context, cfg models.Config, _, _ *data.Set, hooks models.Hooks) (Evaluator, error) {
	f.mu.Lock()
	f.configs = append(f.configs, cfg)
	f.mu.Unlock()
	acc := f.acc
	if acc == nil {
		acc = fakeAcc
	}
	for e := 1; e <= cfg.Epochs; e++ {
		if hooks.OnBatch != nil {
			hooks.OnBatch(e, 1, 1)
		}
		if f.onEpoch != nil {
			f.onEpoch(cfg, e)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fake training stopped: %w", err)
		}
		a := acc(cfg, e)
		st := models.EpochStats{Epoch: e, TrainLoss: 1 - a, TrainAcc: a, ValLoss: 1 - a, ValAcc: a, Seconds: 0.01, SamplesPerSec: 1000}
		if hooks.OnEpoch != nil {
			if err := hooks.OnEpoch(st); err != nil {
				return nil, fmt.Errorf("fake training stopped at epoch %d: %w", e, err)
			}
		}
	}
	return fakeModel{acc(cfg, cfg.Epochs) - 0.01}, nil
}

// count is the number of trainings started.
func (f *fakeTrainer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.configs)
}

// fakeModel is a trained fake: its test accuracy is fixed.
type fakeModel struct{ acc float64 }

func (m fakeModel) Evaluate(*data.Set) (float64, float64, error) { return 1 - m.acc, m.acc, nil }

// notes records a run's notes.
type notes struct {
	NopProgress
	mu    sync.Mutex
	lines []string
}

func (n *notes) Note(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.lines = append(n.lines, s)
}

func (n *notes) text() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.lines, "\n")
}

// gridSpec is a grid study of six points, two epochs, no pruning.
func gridSpec(name string) Spec {
	spec := testSpec(name)
	spec.Sampler, spec.Pruner = "grid", "none"
	spec.Space = search.Space{
		LR:         search.Dim{Choices: []float64{0.01, 0.1}},
		Optimizers: []string{"sgd", "adam", "rmsprop"},
		Batch:      search.Dim{Choices: []float64{128}},
	}
	return spec
}

// checkGridOnce fails unless every point of spec's grid completed exactly
// once and no trial is left RUNNING or WAITING.
func checkGridOnce(t *testing.T, store *storage.Storage, spec Spec) {
	t.Helper()
	done := map[search.Point]int{}
	for _, tr := range trialsOf(t, store, spec.Name) {
		switch tr.State {
		case goptuna.TrialStateRunning, goptuna.TrialStateWaiting:
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		case goptuna.TrialStateComplete:
			p, err := search.PointFromParams(tr.Params)
			if err != nil {
				t.Fatal(err)
			}
			done[p]++
		}
	}
	grid, err := spec.Space.Grid()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range grid {
		if done[p] != 1 {
			t.Errorf("grid point %v completed %d times, want exactly once", p, done[p])
		}
	}
	if len(done) != len(grid) {
		t.Errorf("%d points completed, the grid has %d: %v", len(done), len(grid), done)
	}
}

func TestFakeBudgetIsExact(t *testing.T) {
	store := openStore(t)
	spec := testSpec("budget")
	spec.Trials, spec.Sampler = 7, "random"
	spec = prepare(t, store, spec)
	fake := &fakeTrainer{}
	out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 3, Train: fake.Train})
	if err != nil {
		t.Fatal(err)
	}
	trials := trialsOf(t, store, spec.Name)
	if out.Reason != "target reached" || out.Counts.Done != 7 || len(trials) != 7 || fake.count() != 7 || out.Finished != 7 {
		t.Fatalf("outcome %+v, %d trials stored, %d trained: want exactly 7", out, len(trials), fake.count())
	}
	for i, tr := range trials {
		if tr.Number != i || tr.State != goptuna.TrialStateComplete || tr.UserAttrs["test_accuracy"] == "" || len(tr.IntermediateValues) != spec.Epochs {
			t.Fatalf("trial %d: number %d, %s, attrs %v, %d epochs reported", i, tr.Number, tr.State, tr.UserAttrs, len(tr.IntermediateValues))
		}
	}
	// A higher target stored by another process is read by the next run.
	if _, err := SetTarget(store, spec.Name, 9); err != nil {
		t.Fatal(err)
	}
	if out, err = Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Train: fake.Train}); err != nil || out.Counts.Done != 9 || out.Finished != 2 {
		t.Fatalf("after raising the target to 9: %+v, %v", out, err)
	}
}

// TestThreadsReachEveryTrial: --threads is passed to each training; a
// negative count is refused before anything runs.
func TestThreadsReachEveryTrial(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, gridSpec("threads-fake"))
	fake := &fakeTrainer{}
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Threads: -1, Train: fake.Train}); err == nil || fake.count() != 0 {
		t.Fatalf("threads -1: err %v after %d trainings, want a refusal before any", err, fake.count())
	}
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Threads: 3, Train: fake.Train}); err != nil {
		t.Fatal(err)
	}
	if fake.count() != 6 {
		t.Fatalf("%d trainings, want 6", fake.count())
	}
	for _, cfg := range fake.configs {
		if cfg.Threads != 3 {
			t.Errorf("trial trained with %d threads, want 3", cfg.Threads)
		}
	}
}

func TestFakeGridRunsEveryPointOnce(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, gridSpec("grid-fake"))
	fake := &fakeTrainer{}
	out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 3, Train: fake.Train})
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "grid complete" || fake.count() != 6 {
		t.Fatalf("outcome %+v after %d trainings, want grid complete after 6", out, fake.count())
	}
	checkGridOnce(t, store, spec)
	if out, err = Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Train: fake.Train}); err != nil || out.Finished != 0 || fake.count() != 6 {
		t.Fatalf("second run: %+v, %v, %d trainings; want nothing to do", out, err, fake.count())
	}
}

func TestFakePruningAndLastEpoch(t *testing.T) {
	store := openStore(t)
	spec := testSpec("pruning")
	spec.Epochs, spec.Trials, spec.Pruner = 3, 7, "median"
	spec = prepare(t, store, spec)
	id, err := store.GetStudyIDFromName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	addStrongTrials(t, store, id, 5, spec.Epochs)
	// Below the others' median at every epoch: pruned after epoch 2 (the
	// median pruner never prunes at the first).
	fake := &fakeTrainer{acc: func(models.Config, int) float64 { return 0.5 }}
	out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: fake.Train})
	if err != nil {
		t.Fatal(err)
	}
	trials := trialsOf(t, store, spec.Name)
	for _, tr := range trials[5:] {
		if tr.State != goptuna.TrialStatePruned || len(tr.IntermediateValues) != 2 || tr.UserAttrs["pruned_at_epoch"] != "2" {
			t.Fatalf("trial %d: %s after %d epochs (%v), want pruned after 2", tr.Number, tr.State, len(tr.IntermediateValues), tr.UserAttrs)
		}
	}
	if out.Counts.Pruned != 2 || out.Counts.Done != 7 {
		t.Fatalf("outcome %+v, want 2 pruned and the target of 7 reached", out)
	}
	// Below the median only at the last epoch: never pruned there.
	if _, err := SetTarget(store, spec.Name, 8); err != nil {
		t.Fatal(err)
	}
	fake.acc = func(_ models.Config, e int) float64 { return []float64{0, 0.995, 0.995, 0.5}[e] }
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: fake.Train}); err != nil {
		t.Fatal(err)
	}
	last := trialsOf(t, store, spec.Name)[7]
	if last.State != goptuna.TrialStateComplete || len(last.IntermediateValues) != 3 || last.UserAttrs["test_accuracy"] == "" {
		t.Fatalf("trial %d: %s after %d epochs, want complete with its test accuracy", last.Number, last.State, len(last.IntermediateValues))
	}
}

// TestFakeStaleTrialsAreRequeued: trials of a "killed process" (RUNNING,
// silent) are failed as stale and their configurations run again: one that
// had its parameters, and a grid point claimed but killed before its
// parameters were written, which only fixed_params holds.
func TestFakeStaleTrialsAreRequeued(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, gridSpec("stale-fake"))
	studyID, err := store.GetStudyIDFromName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := goptuna.LoadStudy(spec.Name, goptuna.StudyOptionStorage(store), goptuna.StudyOptionLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	claim := func() int {
		id, err := store.AcquireTrial(studyID, func(trials []goptuna.FrozenTrial) storage.Pick {
			for _, tr := range trials {
				if tr.State == goptuna.TrialStateWaiting {
					return storage.Pick{Action: storage.PickClaim, TrialID: tr.ID}
				}
			}
			return storage.Pick{}
		})
		if err != nil || id < 0 {
			t.Fatalf("claim: %d, %v", id, err)
		}
		if err := store.RecordHeartbeat(id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	withParams := claim()
	if _, err := spec.Space.Suggest(&goptuna.Trial{Study: gs, ID: withParams}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetTrialIntermediateValue(withParams, 1, 0.7); err != nil {
		t.Fatal(err)
	}
	claim() // killed before its parameters
	progress := &notes{}
	fake := &fakeTrainer{}
	out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Heartbeat: 50 * time.Millisecond, Train: fake.Train, Progress: progress})
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "grid complete" {
		t.Fatalf("outcome %+v, want grid complete\n%s", out, progress.text())
	}
	checkGridOnce(t, store, spec)
	trials := trialsOf(t, store, spec.Name)
	for _, tr := range trials[:2] {
		if tr.State != goptuna.TrialStateFail || tr.SystemAttrs[AttrFailKind] != FailKindStale {
			t.Fatalf("dead trial %d: %s, %s=%q; want FAIL, stale", tr.Number, tr.State, AttrFailKind, tr.SystemAttrs[AttrFailKind])
		}
	}
	if strings.Contains(progress.text(), "nothing to retry") {
		t.Fatalf("a grid point was dropped:\n%s", progress.text())
	}
}

// TestCountReadsTheFailKind: whether a failed trial counts toward the target
// is read from its structured kind, never from its reason's text.
func TestCountReadsTheFailKind(t *testing.T) {
	fail := func(reason, kind string) goptuna.FrozenTrial {
		sys := map[string]string{AttrSource: SourceSampled, AttrFailReason: reason}
		if kind != "" {
			sys[AttrFailKind] = kind
		}
		return goptuna.FrozenTrial{State: goptuna.TrialStateFail, SystemAttrs: sys}
	}
	for _, c := range []struct {
		trial goptuna.FrozenTrial
		done  int
	}{
		{fail("the worker vanished", FailKindStale), 0},
		{fail("stopped", FailKindInterrupted), 0},
		{fail("diverged: loss is NaN (no heartbeat was missed)", ""), 1},
	} {
		if got := countTrials([]goptuna.FrozenTrial{c.trial}).Done; got != c.done {
			t.Errorf("%v: Done = %d, want %d", c.trial.SystemAttrs, got, c.done)
		}
	}
}

// TestFakeCtrlCRequeues: a cancelled run fails its running trials as
// interrupted, queues them again in the same step, and returns ctx's error;
// the next run trains the queued points first and reaches the target.
func TestFakeCtrlCRequeues(t *testing.T) {
	store := openStore(t)
	spec := testSpec("ctrl-c")
	spec.Trials, spec.Pruner, spec.Sampler = 4, "none", "random"
	spec = prepare(t, store, spec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := &fakeTrainer{}
	var once sync.Once
	fake.onEpoch = func(_ models.Config, e int) {
		if e == 2 {
			once.Do(cancel)
		}
	}
	progress := &notes{}
	out, err := Run(ctx, store, noData, spec, RunOptions{Workers: 2, Train: fake.Train, Progress: progress})
	if !errors.Is(err, context.Canceled) || out.Reason != "interrupted" {
		t.Fatalf("cancelled run: %+v, %v; want interrupted, context.Canceled\n%s", out, err, progress.text())
	}
	var interrupted []search.Point
	queued := map[search.Point]bool{}
	for _, tr := range trialsOf(t, store, spec.Name) {
		switch tr.State {
		case goptuna.TrialStateFail:
			if tr.SystemAttrs[AttrFailKind] != FailKindInterrupted || tr.SystemAttrs[AttrFailReason] != ReasonInterrupted {
				t.Fatalf("trial %d failed with %v", tr.Number, tr.SystemAttrs)
			}
			p, err := search.PointFromParams(tr.Params)
			if err != nil {
				t.Fatal(err)
			}
			interrupted = append(interrupted, p)
		case goptuna.TrialStateWaiting:
			queued[pointOfFixed(t, spec.Space, tr.SystemAttrs[attrFixed])] = true
		case goptuna.TrialStateRunning:
			t.Fatalf("trial %d left RUNNING\n%s", tr.Number, progress.text())
		}
	}
	if len(interrupted) == 0 {
		t.Fatal("no trial was interrupted")
	}
	for _, p := range interrupted {
		if !queued[p] {
			t.Fatalf("interrupted %v was not queued again (queued: %v)", p, queued)
		}
	}
	fake.onEpoch = nil
	out, err = Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Train: fake.Train})
	if err != nil || out.Counts.Done != 4 || out.Counts.Waiting != 0 {
		t.Fatalf("resumed: %+v, %v", out, err)
	}
}

// outageStore is the real storage with an outage switched on and off by the
// test: while down, the writes a trial makes fail as storage.ErrUnavailable.
type outageStore struct {
	*storage.Storage
	mu   sync.Mutex
	down bool
}

func (s *outageStore) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *outageStore) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return fmt.Errorf("storage unreachable: test outage: %w", storage.ErrUnavailable)
	}
	return nil
}

func (s *outageStore) SetTrialIntermediateValue(id, step int, v float64) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Storage.SetTrialIntermediateValue(id, step, v)
}

func (s *outageStore) RecordHeartbeat(id int) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Storage.RecordHeartbeat(id)
}

func (s *outageStore) SetTrialUserAttr(id int, k, v string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Storage.SetTrialUserAttr(id, k, v)
}

// TestFakeStorageOutage: an outage during a trial is waited out and the
// trial completes; an outage longer than the patience stops the run with
// the storage's error and leaves the trial RUNNING for recovery.
func TestFakeStorageOutage(t *testing.T) {
	t.Run("shorter than the patience", func(t *testing.T) {
		store := &outageStore{Storage: openStore(t)}
		spec := testSpec("outage")
		spec.Trials, spec.Pruner = 1, "none"
		spec = prepare(t, store.Storage, spec)
		fake := &fakeTrainer{}
		fake.onEpoch = func(_ models.Config, e int) {
			if e == 1 {
				store.setDown(true)
				time.AfterFunc(300*time.Millisecond, func() { store.setDown(false) })
			}
		}
		progress := &notes{}
		out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: fake.Train, Progress: progress, StoragePatience: time.Minute})
		if err != nil || out.Counts.Complete != 1 {
			t.Fatalf("run through an outage: %+v, %v\n%s", out, err, progress.text())
		}
		for _, want := range []string{"storage unreachable: test outage", "(while trying to report epoch 1 of trial 0); retrying in 1s", "storage reachable again"} {
			if !strings.Contains(progress.text(), want) {
				t.Errorf("notes lack %q:\n%s", want, progress.text())
			}
		}
	})
	t.Run("longer than the patience", func(t *testing.T) {
		store := &outageStore{Storage: openStore(t)}
		spec := testSpec("outage-long")
		spec.Trials, spec.Pruner = 1, "none"
		spec = prepare(t, store.Storage, spec)
		fake := &fakeTrainer{onEpoch: func(_ models.Config, e int) { store.setDown(e >= 1) }}
		out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: fake.Train, StoragePatience: 1500 * time.Millisecond})
		if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 1.5s (--storage-patience)") || out.Reason != "storage error" {
			t.Fatalf("run past the patience: %+v, %v", out, err)
		}
		store.setDown(false)
		if tr := trialsOf(t, store.Storage, spec.Name)[0]; tr.State != goptuna.TrialStateRunning {
			t.Fatalf("trial 0 is %s, want RUNNING for the next run to recover", tr.State)
		}
	})
}
