package study

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// fakeTrial is a trial written straight through the goptuna.Storage API,
// as the engine (or a manual run) would have stored it.
type fakeTrial struct {
	source  string // "" leaves the attribute unset (sampled)
	lr      string
	opt     string
	batch   string
	test    string // test_accuracy user attr, "" for none
	seconds string // seconds user attr, "" for none
	curve   []models.EpochStats
}

// curveOf makes an n-epoch curve ending in the given losses and val acc.
func curveOf(n int, trainLoss, valLoss, valAcc float64) []models.EpochStats {
	c := make([]models.EpochStats, n)
	for i := range c {
		c[i] = models.EpochStats{Epoch: i + 1, TrainLoss: trainLoss + float64(n-1-i)*0.1,
			ValLoss: valLoss + float64(n-1-i)*0.1, ValAcc: valAcc - float64(n-1-i)*0.01, TrainAcc: valAcc, Seconds: 1}
	}
	return c
}

func choiceIndex(t *testing.T, choices []string, v string) float64 {
	t.Helper()
	for i, c := range choices {
		if c == v {
			return float64(i)
		}
	}
	t.Fatalf("%q is not one of %v", v, choices)
	return 0
}

// writeTrial creates a RUNNING trial with params, curve (as intermediate
// values and the "curve" attribute) and attributes; its state is set later.
func writeTrial(t *testing.T, store goptuna.Storage, studyID int, f fakeTrial) int {
	t.Helper()
	id, err := store.CreateNewTrial(studyID)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct {
		name    string
		choices []string
		v       string
	}{
		{search.ParamLR, []string{"0.001", "0.01", "0.1"}, f.lr},
		{search.ParamOptimizer, []string{"sgd", "adam", "nadam", "rmsprop"}, f.opt},
		{search.ParamBatch, []string{"128", "256"}, f.batch},
	} {
		must(store.SetTrialParam(id, p.name, choiceIndex(t, p.choices, p.v), goptuna.CategoricalDistribution{Choices: p.choices}))
	}
	if f.source != "" {
		must(store.SetTrialSystemAttr(id, AttrSource, f.source))
	}
	for _, e := range f.curve {
		must(store.SetTrialIntermediateValue(id, e.Epoch, e.ValAcc))
	}
	if len(f.curve) > 0 {
		b, err := json.Marshal(f.curve)
		must(err)
		must(store.SetTrialUserAttr(id, "curve", string(b)))
		must(store.SetTrialUserAttr(id, "epochs", strconv.Itoa(len(f.curve))))
	}
	if f.seconds != "" {
		must(store.SetTrialUserAttr(id, "seconds", f.seconds))
	}
	if f.test != "" {
		must(store.SetTrialUserAttr(id, "test_accuracy", f.test))
	}
	return id
}

func finishTrial(t *testing.T, store goptuna.Storage, id int, value float64, state goptuna.TrialState) {
	t.Helper()
	if state != goptuna.TrialStateFail {
		if err := store.SetTrialValue(id, value); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.SetTrialState(id, state); err != nil {
		t.Fatal(err)
	}
}

func newStudy(t *testing.T, store *storage.Storage, name string) int {
	t.Helper()
	spec := DefaultSpec()
	spec.Name = name
	spec.Epochs = 3
	spec.DataChecksum = "0123456789abcdef"
	if _, err := Prepare(store, spec); err != nil {
		t.Fatal(err)
	}
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCompareSummarisesManualAndSampled(t *testing.T) {
	store := openStore(t)
	sid := newStudy(t, store, "cmp")
	auto := newStudy(t, store, "auto")

	ids := make([]int, 7)
	trials := []fakeTrial{
		0: {lr: "0.01", opt: "adam", batch: "128", test: "0.79", seconds: "10", curve: curveOf(3, 0.40, 0.55, 0.80)},
		1: {source: SourceManual, lr: "0.1", opt: "sgd", batch: "256", test: "0.84", seconds: "12", curve: curveOf(3, 0.30, 0.50, 0.85)},
		2: {source: SourceGrid, lr: "0.001", opt: "sgd", batch: "128", seconds: "3", curve: curveOf(1, 2.0, 2.1, 0.50)},
		3: {source: SourceRetry, lr: "0.001", opt: "nadam", batch: "128", test: "0.83", seconds: "7", curve: curveOf(3, 0.20, 0.45, 0.86)},
		// A failed trial stores no seconds: its epochs' seconds count.
		4: {source: SourceManual, lr: "0.1", opt: "rmsprop", batch: "128", curve: []models.EpochStats{{Epoch: 1, Seconds: 1.5}, {Epoch: 2, Seconds: 2.5}}},
		5: {source: SourceManual, lr: "0.01", opt: "sgd", batch: "128", test: "0.82", seconds: "5", curve: curveOf(3, 0.35, 0.40, 0.83)},
		6: {source: SourceSampled, lr: "0.01", opt: "adam", batch: "256", curve: curveOf(1, 1, 1, 0.6)},
	}
	for i, f := range trials {
		ids[i] = writeTrial(t, store, sid, f)
	}
	// Finish in an order that differs from the numbers; 6 stays running.
	for _, n := range []int{0, 5, 3, 4, 2, 1} {
		state := goptuna.TrialStateComplete
		switch n {
		case 2:
			state = goptuna.TrialStatePruned
		case 4:
			state = goptuna.TrialStateFail
		}
		c := trials[n].curve
		finishTrial(t, store, ids[n], c[len(c)-1].ValAcc, state)
	}
	a := writeTrial(t, store, auto, fakeTrial{lr: "0.1", opt: "adam", batch: "128", seconds: "2", curve: curveOf(2, 0.5, 0.6, 0.7)})
	finishTrial(t, store, a, 0.7, goptuna.TrialStateComplete)

	got, err := Compare(store, []string{"cmp", "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d summaries, want 4 (2 studies x manual, sampled): %+v", len(got), got)
	}
	ptr := func(v float64) *float64 { return &v }
	want := []SourceSummary{
		{Study: "cmp", Source: "manual", Trials: 3, Complete: 2, Fail: 1, Epochs: 8, Seconds: 21,
			Best: &SourceBest{Trial: 1, ValAcc: 0.85, TestAcc: ptr(0.84), LR: 0.1, Optimizer: "sgd", Batch: 256,
				SecondsToBest: 21, OverfitGap: ptr(0.20), TrainLoss: ptr(0.30), ValLoss: ptr(0.50)}},
		// 10 + 3 + 7 s, and the 1 s epoch of the running trial, which has no seconds yet.
		{Study: "cmp", Source: "sampled", Trials: 4, Retry: 1, Grid: 1, Complete: 2, Pruned: 1, Running: 1, Epochs: 8, Seconds: 21,
			// 0 (10 s) then 3 (7 s) finished before 2, though 2 has the lower number.
			Best: &SourceBest{Trial: 3, ValAcc: 0.86, TestAcc: ptr(0.83), LR: 0.001, Optimizer: "nadam", Batch: 128,
				SecondsToBest: 17, OverfitGap: ptr(0.25), TrainLoss: ptr(0.20), ValLoss: ptr(0.45)}},
		{Study: "auto", Source: "manual"},
		{Study: "auto", Source: "sampled", Trials: 1, Complete: 1, Epochs: 2, Seconds: 2,
			Best: &SourceBest{Trial: 0, ValAcc: 0.7, LR: 0.1, Optimizer: "adam", Batch: 128,
				SecondsToBest: 2, OverfitGap: ptr(0.1), TrainLoss: ptr(0.5), ValLoss: ptr(0.6)}},
	}
	for i, w := range want {
		t.Run(w.Study+"/"+w.Source, func(t *testing.T) {
			g := got[i]
			gb, wb := g.Best, w.Best
			g.Best, w.Best = nil, nil
			if g != w {
				t.Errorf("summary\n got %+v\nwant %+v", g, w)
			}
			if (gb == nil) != (wb == nil) {
				t.Fatalf("best: got %+v, want %+v", gb, wb)
			}
			if gb == nil {
				return
			}
			if gb.Trial != wb.Trial || gb.ValAcc != wb.ValAcc || gb.LR != wb.LR || gb.Optimizer != wb.Optimizer ||
				gb.Batch != wb.Batch || !near(gb.SecondsToBest, wb.SecondsToBest) {
				t.Errorf("best\n got %+v\nwant %+v", *gb, *wb)
			}
			for _, f := range []struct {
				name      string
				got, want *float64
			}{{"test acc", gb.TestAcc, wb.TestAcc}, {"gap", gb.OverfitGap, wb.OverfitGap},
				{"train loss", gb.TrainLoss, wb.TrainLoss}, {"val loss", gb.ValLoss, wb.ValLoss}} {
				if (f.got == nil) != (f.want == nil) || (f.got != nil && !near(*f.got, *f.want)) {
					t.Errorf("%s: got %v, want %v", f.name, deref(f.got), deref(f.want))
				}
			}
		})
	}

	// The JSON names are part of `fmtune compare --json`.
	b, err := json.Marshal(got[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	best, _ := m["best"].(map[string]any)
	for _, k := range []string{"val_accuracy", "test_accuracy", "seconds_to_best", "overfit_gap", "lr", "optimizer", "batch"} {
		if _, ok := best[k]; !ok {
			t.Errorf("JSON best has no %q: %s", k, b)
		}
	}
	for _, k := range []string{"study", "source", "complete", "pruned", "fail", "epochs", "compute_seconds"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
}

func TestCompareUnknownStudy(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "known")
	_, err := Compare(store, []string{"known", "nope"})
	if !errors.Is(err, storage.ErrStudyNotFound) {
		t.Fatalf("got %v, want storage.ErrStudyNotFound", err)
	}
	_, want := Trials(store, "nope", "")
	if err.Error() != want.Error() {
		t.Fatalf("got %q, want the error of Trials %q", err, want)
	}
}

func TestSourceKind(t *testing.T) {
	for source, want := range map[string]string{
		SourceManual: KindManual, SourceSampled: KindSampled, SourceGrid: KindSampled, SourceRetry: KindSampled, "": KindSampled,
	} {
		if got := SourceKind(source); got != want {
			t.Errorf("SourceKind(%q) = %q, want %q", source, got, want)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestCompareRanksRepeatsByTheirMean: configuration A has the single best
// trial (0.90) but the lower mean (0.85); B's mean is 0.86: B wins, shown
// with its mean and standard deviation.
func TestCompareRanksRepeatsByTheirMean(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	trial := func(n int, lr, val, test float64) TrialInfo {
		return TrialInfo{Number: n, State: "complete", Source: SourceSampled, ValAcc: f(val), TestAcc: f(test),
			Params: map[string]any{"lr": lr, "optimizer": "adam", "batch": 128}}
	}
	trials := []TrialInfo{trial(0, 0.1, 0.90, 0.89), trial(1, 0.1, 0.80, 0.79), trial(2, 0.01, 0.85, 0.84), trial(3, 0.01, 0.87, 0.86)}
	s := CompareTrials("r", trials)[1]
	b := s.Best
	if b == nil || b.Repeats == nil || b.LR != 0.01 || b.Trial != 3 || b.Repeats.N != 2 {
		t.Fatalf("best %+v, want configuration lr 0.01 (trial 3) with 2 repeats", b)
	}
	if math.Abs(b.Repeats.Mean-0.86) > 1e-12 || math.Abs(b.Repeats.Std-math.Sqrt(0.0002)) > 1e-12 || math.Abs(b.Repeats.TestMean-0.85) > 1e-12 {
		t.Fatalf("repeats %+v, want mean 0.86, std %.6f, test mean 0.85", b.Repeats, math.Sqrt(0.0002))
	}
	// Without repeats, the best single trial wins as before.
	if s := CompareTrials("r", trials[1:3])[1]; s.Best.Repeats != nil || s.Best.Trial != 2 {
		t.Fatalf("without repeats: %+v", s.Best)
	}
}
