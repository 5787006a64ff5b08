//go:debug randseednop=0

package study

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"

	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/internal/teststore"
)

var (
	dataOnce sync.Once
	dataSet  *data.Dataset
	dataErr  error
)

// smallData is the real Fashion-MNIST, cut to 1,500 training and 500
// validation images so that a trial takes a fraction of a second.
func smallData(t *testing.T) *data.Dataset {
	t.Helper()
	dataOnce.Do(func() {
		dir, err := data.Locate("")
		if err != nil {
			dataErr = err
			return
		}
		dataSet, dataErr = data.Load(dir, data.Options{Val: 500, TrainLimit: 1500})
	})
	if dataErr != nil {
		testenv.Skip(t, "data", "Fashion-MNIST not available (apt-get install dataset-fashion-mnist): %v", dataErr)
	}
	return dataSet
}

func openStore(t *testing.T) *storage.Storage {
	t.Helper()
	return teststore.OpenSQLite(t)
}

func testSpec(name string) Spec {
	s := DefaultSpec()
	s.Name = name
	s.Epochs = 2
	s.Val = 500
	s.TrainLimit = 1500
	return s
}

// prepare creates the study; it needs no data (the checksum is only
// compared by the commands).
func prepare(t *testing.T, store *storage.Storage, spec Spec) Spec {
	t.Helper()
	got, err := Prepare(store, spec)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func trialsOf(t *testing.T, store *storage.Storage, name string) []goptuna.FrozenTrial {
	t.Helper()
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	trials, err := store.GetAllTrials(id)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
	return trials
}

func TestRunReachesTargetAndStoresResults(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := testSpec("target")
	spec.Trials = 4
	spec = prepare(t, store, spec)
	out, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "target reached" || out.Counts.Done != 4 {
		t.Fatalf("outcome %+v, want target reached with 4 done", out)
	}
	trials := trialsOf(t, store, "target")
	for i, tr := range trials {
		if tr.Number != i {
			t.Fatalf("trial numbers %v are not 0..n-1", tr.Number)
		}
		if tr.State == goptuna.TrialStateRunning || tr.State == goptuna.TrialStateWaiting {
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
		if len(tr.IntermediateValues) == 0 {
			t.Fatalf("trial %d reported no epoch", tr.Number)
		}
	}
	best, err := Best(store, "target")
	if err != nil {
		t.Fatal(err)
	}
	if best.TestAcc == nil || *best.TestAcc < 0.3 || *best.TestAcc > 1 {
		t.Fatalf("best trial test accuracy %v: not a trained model's", best.TestAcc)
	}
	if len(best.Curve) != spec.Epochs || best.Curve[1].ValAcc != *best.ValAcc {
		t.Fatalf("best trial curve %+v does not end at its value %v", best.Curve, *best.ValAcc)
	}
	for _, tr := range trials {
		if tr.State == goptuna.TrialStateComplete && tr.Value > *best.ValAcc {
			t.Fatalf("trial %d has %v > best %v", tr.Number, tr.Value, *best.ValAcc)
		}
	}
}

func TestGridRunsEveryPointOnce(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := testSpec("grid")
	spec.Epochs = 1
	spec.Sampler = "grid"
	spec.Pruner = "none"
	spec.Space = search.Space{
		LR:         search.Dim{Choices: []float64{0.01, 0.1}},
		Optimizers: []string{"sgd", "adam", "rmsprop"},
		Batch:      search.Dim{Choices: []float64{128}},
	}
	spec = prepare(t, store, spec)
	out, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "grid complete" && out.Reason != "target reached" {
		t.Fatalf("reason %q", out.Reason)
	}
	seen := map[search.Point]int{}
	for _, tr := range trialsOf(t, store, "grid") {
		if tr.State != goptuna.TrialStateComplete {
			t.Fatalf("trial %d is %s", tr.Number, tr.State)
		}
		p, err := search.PointFromParams(tr.Params)
		if err != nil {
			t.Fatal(err)
		}
		seen[p]++
	}
	grid, _ := spec.Space.Grid()
	if len(seen) != len(grid) {
		t.Fatalf("%d distinct points tried, want %d: %v", len(seen), len(grid), seen)
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%v tried %d times", p, n)
		}
	}
	// Running the finished grid again starts nothing.
	out, err = Run(context.Background(), store, ds, spec, RunOptions{Workers: 2})
	if err != nil || out.Finished != 0 {
		t.Fatalf("second run: %+v, %v; want nothing to do", out, err)
	}
}

func TestSameSeedSameTrials(t *testing.T) {
	ds := smallData(t)
	run := func() []goptuna.FrozenTrial {
		store := openStore(t)
		spec := testSpec("repro")
		spec.Epochs = 1
		spec.Trials = 13 // past TPE's 10 random start-up trials
		spec.Seed = 42
		spec.TrainLimit = 600
		spec = prepare(t, store, spec)
		ds := *ds
		ds.Train = ds.Train.Slice(0, 600)
		if _, err := Run(context.Background(), store, &ds, spec, RunOptions{Workers: 1}); err != nil {
			t.Fatal(err)
		}
		return trialsOf(t, store, "repro")
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("%d trials vs %d", len(a), len(b))
	}
	distinct := map[string]bool{}
	for i := range a {
		pa, _ := search.PointFromParams(a[i].Params)
		pb, _ := search.PointFromParams(b[i].Params)
		if pa != pb || a[i].State != b[i].State || a[i].Value != b[i].Value {
			t.Fatalf("trial %d differs: %v %s %v vs %v %s %v", i, pa, a[i].State, a[i].Value, pb, b[i].State, b[i].Value)
		}
		distinct[pa.String()] = true
	}
	if len(distinct) < 4 {
		t.Fatalf("only %d distinct configurations in 13 trials: the sampler is not sampling", len(distinct))
	}
}

func TestInterruptedTrialsAreRequeued(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := testSpec("interrupt")
	spec.Trials = 3
	spec.Pruner = "none"
	spec = prepare(t, store, spec)
	ctx, cancel := context.WithCancel(context.Background())
	progress := &cancelOnBatch{cancel: cancel}
	_, err := Run(ctx, store, ds, spec, RunOptions{Workers: 2, Progress: progress})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run returned %v, want context.Canceled", err)
	}
	trials := trialsOf(t, store, "interrupt")
	var failed []search.Point
	waiting := map[search.Point]bool{}
	for _, tr := range trials {
		switch tr.State {
		case goptuna.TrialStateFail:
			if tr.SystemAttrs[AttrFailReason] != ReasonInterrupted {
				t.Fatalf("trial %d failed with %q, want %q", tr.Number, tr.SystemAttrs[AttrFailReason], ReasonInterrupted)
			}
			p, _ := search.PointFromParams(tr.Params)
			failed = append(failed, p)
		case goptuna.TrialStateWaiting:
			if tr.SystemAttrs[AttrRetryOf] == "" {
				t.Fatalf("waiting trial %d does not say what it retries", tr.Number)
			}
			waiting[pointOfFixed(t, spec.Space, tr.SystemAttrs["fixed_params"])] = true
		case goptuna.TrialStateRunning:
			t.Fatalf("trial %d left RUNNING after the interrupt", tr.Number)
		}
	}
	if len(failed) == 0 {
		t.Fatal("no trial was interrupted")
	}
	for _, p := range failed {
		if !waiting[p] {
			t.Fatalf("interrupted %v was not re-queued (waiting: %v)", p, waiting)
		}
	}
	// Resume: the re-queued points run first and the target is reached.
	out, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 2})
	if err != nil || out.Counts.Done != 3 || out.Counts.Waiting != 0 {
		t.Fatalf("resume: %+v, %v", out, err)
	}
	ran := map[search.Point]bool{}
	for _, tr := range trialsOf(t, store, "interrupt") {
		if tr.State == goptuna.TrialStateComplete {
			p, _ := search.PointFromParams(tr.Params)
			ran[p] = true
		}
	}
	for _, p := range failed {
		if !ran[p] {
			t.Fatalf("re-queued %v never completed", p)
		}
	}
}

// pointOfFixed decodes goptuna's fixed_params of a waiting trial.
func pointOfFixed(t *testing.T, space search.Space, text string) search.Point {
	t.Helper()
	var fixed map[string]float64
	if err := json.Unmarshal([]byte(text), &fixed); err != nil {
		t.Fatal(err)
	}
	p, err := space.PointFromFixed(fixed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cancelOnBatch cancels the run once a few batches have trained.
type cancelOnBatch struct {
	NopProgress
	mu      sync.Mutex
	batches int
	cancel  context.CancelFunc
}

func (c *cancelOnBatch) Batch(int, int, int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batches++; c.batches == 6 {
		c.cancel()
	}
}

func TestStaleTrialOfDeadProcessIsRetried(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := testSpec("stale")
	spec.Trials = 2
	spec.Epochs = 1
	spec = prepare(t, store, spec)
	// A "crashed process": a running trial with parameters and one heartbeat.
	studyID, _ := store.GetStudyIDFromName("stale")
	gs, err := goptuna.LoadStudy("stale", goptuna.StudyOptionStorage(store), goptuna.StudyOptionLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.CreateNewTrial(studyID)
	if err != nil {
		t.Fatal(err)
	}
	dead := search.Point{LR: 0.1, Optimizer: "rmsprop", Batch: 256}
	fixed, _ := spec.Space.FixedParams(dead)
	text, _ := json.Marshal(fixed)
	if err := store.SetTrialSystemAttr(id, "fixed_params", string(text)); err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Space.Suggest(&goptuna.Trial{Study: gs, ID: id}); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordHeartbeat(id); err != nil {
		t.Fatal(err)
	}
	// No sleep: the run itself waits until the dead trial's heartbeat is stale.

	out, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 1, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts.Done != 2 || out.Counts.Running != 0 {
		t.Fatalf("outcome %+v", out)
	}
	trials := trialsOf(t, store, "stale")
	if trials[0].State != goptuna.TrialStateFail || trials[0].SystemAttrs[AttrFailReason] == "" {
		t.Fatalf("dead trial is %s (%q), want FAIL with a reason", trials[0].State, trials[0].SystemAttrs[AttrFailReason])
	}
	retried := false
	for _, tr := range trials[1:] {
		p, _ := search.PointFromParams(tr.Params)
		if p == dead && tr.State == goptuna.TrialStateComplete && tr.SystemAttrs[AttrRetryOf] == "0" {
			retried = true
		}
	}
	if !retried {
		t.Fatalf("the dead trial's %v was not retried", dead)
	}
}

func TestPrepareRefusesADifferentSpec(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, testSpec("fixed"))
	for name, change := range map[string]func(*Spec){
		"arch":    func(s *Spec) { s.Arch = "deep" },
		"sampler": func(s *Spec) { s.Sampler = "random" },
		"lr":      func(s *Spec) { s.Space.LR = search.Dim{Choices: []float64{0.5}} },
		"epochs":  func(s *Spec) { s.Epochs = 7 },
	} {
		t.Run(name, func(t *testing.T) {
			other := spec
			other.Space.Optimizers = append([]string{}, spec.Space.Optimizers...)
			change(&other)
			if _, err := Prepare(store, other); !errors.Is(err, ErrSpecMismatch) {
				t.Fatalf("Prepare with another %s: %v, want ErrSpecMismatch", name, err)
			}
		})
	}
	more := spec
	more.Trials = 9
	got, err := Prepare(store, more)
	if err != nil || got.Trials != 9 {
		t.Fatalf("a new budget must be accepted and stored: %+v, %v", got, err)
	}
	if _, _, err := LoadSpec(store, "nope"); !errors.Is(err, storage.ErrStudyNotFound) {
		t.Fatalf("unknown study: %v", err)
	}
}

func TestReadFileRefusesUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, good, "study: s\narch: deep\nlr: [0.001, 0.01]\noptimizers: adam,sgd\nepochs: 3\nseed: 0\n")
	writeFile(t, bad, "study: s\nlearning_rate: 0.1\n")
	f, err := ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Study != "s" || f.Arch != "deep" || f.LR != "0.001,0.01" || f.Optimizers != "adam,sgd" || f.Epochs != 3 || f.Seed == nil || *f.Seed != 0 {
		t.Fatalf("read %+v", f)
	}
	want := `line 2: unknown key "learning_rate" (valid: study, arch, lr, optimizers, batch, sampler, pruner, epochs, trials, seed, val, train_limit, repeats, dead_after, timeout, workers, data, storage)`
	if _, err := ReadFile(bad); !errors.Is(err, ErrInvalidSpec) || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("unknown key: %v\nwant it to end in %s", err, want)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTimeoutStartsNoNewTrial(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, testSpec("timeout"))
	fake := &fakeTrainer{}
	out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Timeout: time.Nanosecond, Train: fake.Train})
	if err != nil {
		t.Fatal(err)
	}
	if out.Reason != "timeout" || out.Finished != 0 || fake.count() != 0 {
		t.Fatalf("outcome %+v after %d trainings, want a timeout before any trial", out, fake.count())
	}
}
