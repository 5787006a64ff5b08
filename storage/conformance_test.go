package storage

import (
	"errors"
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/medianstopping"
)

// TestConformance runs one suite of goptuna.Storage behaviour against goptuna's
// InMemoryStorage (the reference for goptuna's expectations), fmtune's SQLite storage and,
// when $FMTUNE_TEST_POSTGRES is set, fmtune's PostgreSQL storage. Cases marked fmtune-only
// check where fmtune deliberately differs from InMemoryStorage.
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s goptuna.Storage, fmtune bool)
	}{
		{"study/create-and-lookup", testStudyLookup},
		{"study/attributes", testStudyAttrs},
		{"study/summaries", testStudySummaries},
		{"study/delete", testStudyDelete},
		{"trial/create-and-number", testTrialCreate},
		{"trial/params", testTrialParams},
		{"trial/intermediate-values", testIntermediateValues},
		{"trial/value-and-complete", testValueComplete},
		{"trial/attributes", testTrialAttrs},
		{"trial/state-transitions", testTransitions},
		{"trial/finished-is-frozen", testFinishedFrozen},
		{"best/minimize", func(t *testing.T, s goptuna.Storage, f bool) {
			testBest(t, s, goptuna.StudyDirectionMinimize)
		}},
		{"best/maximize", func(t *testing.T, s goptuna.Storage, f bool) {
			testBest(t, s, goptuna.StudyDirectionMaximize)
		}},
		{"best/no-complete-trial", testBestNone},
		{"clone/waiting-enqueued", testCloneWaiting},
		{"clone/complete", testCloneComplete},
		{"goptuna/optimize-with-pruning", testOptimize},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.run(t, b.open(t), b.fmtune)
				})
			}
		})
	}
}

func testStudyLookup(t *testing.T, s goptuna.Storage, fmtune bool) {
	name := studyName(t)
	id := res(s.CreateNewStudy(name)).must(t)
	if got := res(s.GetStudyIDFromName(name)).must(t); got != id {
		t.Errorf("GetStudyIDFromName = %d, want %d", got, id)
	}
	if got := res(s.GetStudyNameFromID(id)).must(t); got != name {
		t.Errorf("GetStudyNameFromID = %q, want %q", got, name)
	}
	for _, d := range []goptuna.StudyDirection{goptuna.StudyDirectionMaximize, goptuna.StudyDirectionMinimize} {
		ok(t, s.SetStudyDirection(id, d))
		if got := res(s.GetStudyDirection(id)).must(t); got != d {
			t.Errorf("GetStudyDirection = %q, want %q", got, d)
		}
	}
	_, err := s.GetStudyIDFromName(name + "-missing")
	if err == nil {
		t.Fatal("GetStudyIDFromName(unknown): no error")
	}
	if fmtune {
		if !errors.Is(err, ErrStudyNotFound) {
			t.Errorf("GetStudyIDFromName(unknown) = %v, want ErrStudyNotFound", err)
		}
		if _, err := s.CreateNewStudy(name); !errors.Is(err, ErrStudyExists) {
			t.Errorf("CreateNewStudy(taken) = %v, want ErrStudyExists", err)
		}
		anon := res(s.CreateNewStudy("")).must(t)
		if n := res(s.GetStudyNameFromID(anon)).must(t); len(n) != len("no-name-")+36 {
			t.Errorf("default study name %q, want no-name-<uuid>", n)
		}
	}
}

var attrValues = map[string]string{
	"plain":   "value",
	"empty":   "",
	"json":    `{"a": [1, 2]}`,
	"number":  "42",
	"unicode": "é✓ 𝄞 \"quoted\" \\ \n\t",
}

func testStudyAttrs(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	for k, v := range attrValues {
		ok(t, s.SetStudyUserAttr(id, k, "old"))
		ok(t, s.SetStudyUserAttr(id, k, v))
		ok(t, s.SetStudySystemAttr(id, "sys-"+k, v))
	}
	user := res(s.GetStudyUserAttrs(id)).must(t)
	if !reflect.DeepEqual(user, attrValues) {
		t.Errorf("GetStudyUserAttrs = %q, want %q", user, attrValues)
	}
	sys := res(s.GetStudySystemAttrs(id)).must(t)
	for k, v := range attrValues {
		if sys["sys-"+k] != v {
			t.Errorf("system attr %q = %q, want %q", k, sys["sys-"+k], v)
		}
	}
}

func testStudySummaries(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMaximize)
	ok(t, s.SetStudyUserAttr(id, "arch", "cnn"))
	var want int
	for i, v := range []float64{0.5, 0.9, 0.7} {
		tid := res(s.CreateNewTrial(id)).must(t)
		ok(t, s.SetTrialValue(tid, v))
		ok(t, s.SetTrialState(tid, goptuna.TrialStateComplete))
		if v == 0.9 {
			want = i
		}
	}
	sums := res(s.GetAllStudySummaries()).must(t)
	name := res(s.GetStudyNameFromID(id)).must(t)
	for _, sum := range sums {
		if sum.ID != id {
			continue
		}
		if sum.Name != name || sum.Direction != goptuna.StudyDirectionMaximize {
			t.Errorf("summary name/direction = %q/%q, want %q/maximize", sum.Name, sum.Direction, name)
		}
		if sum.BestTrial.Number != want || sum.BestTrial.Value != 0.9 {
			t.Errorf("summary best trial = #%d %v, want #%d 0.9", sum.BestTrial.Number, sum.BestTrial.Value, want)
		}
		if sum.UserAttrs["arch"] != "cnn" {
			t.Errorf("summary user attrs = %v", sum.UserAttrs)
		}
		if sum.DatetimeStart.IsZero() || time.Since(sum.DatetimeStart) > time.Hour {
			t.Errorf("summary DatetimeStart = %v", sum.DatetimeStart)
		}
		return
	}
	t.Fatalf("study %d missing from GetAllStudySummaries (%d summaries)", id, len(sums))
}

func testStudyDelete(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialParam(tid, "x", 0.5, goptuna.UniformDistribution{Low: 0, High: 1}))
	ok(t, s.SetTrialIntermediateValue(tid, 0, 1))
	ok(t, s.SetTrialUserAttr(tid, "k", "v"))
	ok(t, s.SetStudyUserAttr(id, "k", "v"))
	ok(t, s.DeleteStudy(id))
	if !fmtune {
		return // InMemoryStorage resets its single study instead.
	}
	if _, err := s.GetAllTrials(id); !errors.Is(err, ErrStudyNotFound) {
		t.Errorf("GetAllTrials(deleted) = %v, want ErrStudyNotFound", err)
	}
	if _, err := s.GetTrial(tid); !errors.Is(err, goptuna.ErrInvalidTrialID) {
		t.Errorf("GetTrial(deleted) = %v, want ErrInvalidTrialID", err)
	}
	if err := s.DeleteStudy(id); !errors.Is(err, ErrStudyNotFound) {
		t.Errorf("DeleteStudy(deleted) = %v, want ErrStudyNotFound", err)
	}
}

func testTrialCreate(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	for n := 0; n < 5; n++ {
		tid := res(s.CreateNewTrial(id)).must(t)
		tr := res(s.GetTrial(tid)).must(t)
		if tr.Number != n || tr.ID != tid || tr.State != goptuna.TrialStateRunning {
			t.Errorf("trial %d: number %d id %d state %v, want number %d RUNNING", tid, tr.Number, tr.ID, tr.State, n)
		}
		if tr.DatetimeStart.IsZero() || !tr.DatetimeComplete.IsZero() {
			t.Errorf("trial %d: start %v complete %v", tid, tr.DatetimeStart, tr.DatetimeComplete)
		}
		if d := time.Since(tr.DatetimeStart); d < -time.Second || d > time.Minute {
			t.Errorf("trial %d: DatetimeStart %v is not now", tid, tr.DatetimeStart)
		}
		if got := res(s.GetTrialNumberFromID(tid)).must(t); got != n {
			t.Errorf("GetTrialNumberFromID = %d, want %d", got, n)
		}
		if got := res(s.GetStudyIDFromTrialID(tid)).must(t); got != id {
			t.Errorf("GetStudyIDFromTrialID = %d, want %d", got, id)
		}
	}
	if got := res(s.GetAllTrials(id)).must(t); len(got) != 5 {
		t.Errorf("GetAllTrials: %d trials, want 5", len(got))
	}
	if fmtune {
		if _, err := s.GetTrial(1 << 30); !errors.Is(err, goptuna.ErrInvalidTrialID) {
			t.Errorf("GetTrial(unknown) = %v, want ErrInvalidTrialID", err)
		}
		if _, err := s.CreateNewTrial(1 << 30); !errors.Is(err, ErrStudyNotFound) {
			t.Errorf("CreateNewTrial(unknown study) = %v, want ErrStudyNotFound", err)
		}
	}
}

// paramCases cover every goptuna distribution.
var paramCases = []struct {
	name string
	dist any
	ir   float64
	xr   any
}{
	{"uniform", goptuna.UniformDistribution{Low: -1.5, High: 2}, 0.25, 0.25},
	{"log_uniform", goptuna.LogUniformDistribution{Low: 1e-5, High: 0.1}, 0.0031622776601683794, 0.0031622776601683794},
	{"discrete_uniform", goptuna.DiscreteUniformDistribution{Low: 0, High: 0.5, Q: 0.1}, 0.30000000000000004, 0.30000000000000004},
	{"int_uniform", goptuna.IntUniformDistribution{Low: 1, High: 5}, 3, 3},
	{"step_int_uniform", goptuna.StepIntUniformDistribution{Low: 32, High: 256, Step: 32}, 128, 128},
	{"categorical", goptuna.CategoricalDistribution{Choices: []string{"sgd", "adam", "nadam", "rmsprop"}}, 2, "nadam"},
}

func testTrialParams(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	for _, c := range paramCases {
		ok(t, s.SetTrialParam(tid, c.name, c.ir, c.dist))
	}
	tr := res(s.GetTrial(tid)).must(t)
	params := res(s.GetTrialParams(tid)).must(t)
	for _, c := range paramCases {
		t.Run(c.name, func(t *testing.T) {
			if got := res(s.GetTrialParam(tid, c.name)).must(t); got != c.ir {
				t.Errorf("GetTrialParam = %v, want %v", got, c.ir)
			}
			if params[c.name] != c.xr {
				t.Errorf("GetTrialParams = %#v, want %#v", params[c.name], c.xr)
			}
			if tr.Params[c.name] != c.xr || tr.InternalParams[c.name] != c.ir {
				t.Errorf("GetTrial params = %#v/%v, want %#v/%v", tr.Params[c.name], tr.InternalParams[c.name], c.xr, c.ir)
			}
			if !reflect.DeepEqual(tr.Distributions[c.name], c.dist) {
				t.Errorf("distribution = %#v, want %#v", tr.Distributions[c.name], c.dist)
			}
		})
	}
	if _, err := s.GetTrialParam(tid, "missing"); err == nil {
		t.Error("GetTrialParam(missing): no error")
	} else if fmtune && !errors.Is(err, ErrParamNotFound) {
		t.Errorf("GetTrialParam(missing) = %v, want ErrParamNotFound", err)
	}
	if fmtune {
		// Optuna refuses a distribution of another kind for a name the study already uses.
		other := res(s.CreateNewTrial(id)).must(t)
		err := s.SetTrialParam(other, "categorical", 0, goptuna.UniformDistribution{Low: 0, High: 1})
		if !errors.Is(err, ErrIncompatibleDistribution) {
			t.Errorf("SetTrialParam(incompatible) = %v, want ErrIncompatibleDistribution", err)
		}
	}
}

func testIntermediateValues(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	want := map[int]float64{0: 0.5, 1: math.NaN(), 2: math.Inf(1), 3: math.Inf(-1), 10: -2.25, 11: 0}
	for step, v := range want {
		ok(t, s.SetTrialIntermediateValue(tid, step, v))
	}
	got := res(s.GetTrial(tid)).must(t).IntermediateValues
	if len(got) != len(want) {
		t.Fatalf("intermediate values %v, want %v", got, want)
	}
	for step, w := range want {
		g, has := got[step]
		if !has || !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
			t.Errorf("step %d = %v, want %v", step, g, w)
		}
	}
	if fmtune {
		ok(t, s.SetTrialIntermediateValue(tid, 0, 0.75)) // Optuna overwrites a step.
		if g := res(s.GetTrial(tid)).must(t).IntermediateValues[0]; g != 0.75 {
			t.Errorf("overwritten step 0 = %v, want 0.75", g)
		}
	}
}

func testValueComplete(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialValue(tid, 1))
	ok(t, s.SetTrialValue(tid, 0.125))
	ok(t, s.SetTrialState(tid, goptuna.TrialStateComplete))
	tr := res(s.GetTrial(tid)).must(t)
	if tr.State != goptuna.TrialStateComplete || tr.Value != 0.125 {
		t.Errorf("trial = %v %v, want COMPLETE 0.125", tr.State, tr.Value)
	}
	if tr.DatetimeComplete.IsZero() || tr.DatetimeComplete.Before(tr.DatetimeStart) {
		t.Errorf("DatetimeComplete %v (start %v)", tr.DatetimeComplete, tr.DatetimeStart)
	}
}

func testTrialAttrs(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	for k, v := range attrValues {
		ok(t, s.SetTrialUserAttr(tid, k, "old"))
		ok(t, s.SetTrialUserAttr(tid, k, v))
		ok(t, s.SetTrialSystemAttr(tid, k, v+"-sys"))
	}
	user := res(s.GetTrialUserAttrs(tid)).must(t)
	sys := res(s.GetTrialSystemAttrs(tid)).must(t)
	tr := res(s.GetTrial(tid)).must(t)
	if !reflect.DeepEqual(user, attrValues) || !reflect.DeepEqual(tr.UserAttrs, attrValues) {
		t.Errorf("user attrs = %q / %q, want %q", user, tr.UserAttrs, attrValues)
	}
	for k, v := range attrValues {
		if sys[k] != v+"-sys" || tr.SystemAttrs[k] != v+"-sys" {
			t.Errorf("system attr %q = %q / %q", k, sys[k], tr.SystemAttrs[k])
		}
	}
}

// newTrialIn creates a trial in the given unfinished state (RUNNING or WAITING).
func newTrialIn(t *testing.T, s goptuna.Storage, studyID int, state goptuna.TrialState) int {
	t.Helper()
	if state == goptuna.TrialStateRunning {
		return res(s.CreateNewTrial(studyID)).must(t)
	}
	return res(s.CloneTrial(studyID, goptuna.FrozenTrial{
		State: state, DatetimeStart: time.Now(),
		IntermediateValues: map[int]float64{}, InternalParams: map[string]float64{},
		Params: map[string]any{}, Distributions: map[string]any{},
		UserAttrs: map[string]string{}, SystemAttrs: map[string]string{},
	})).must(t)
}

var allStates = []goptuna.TrialState{
	goptuna.TrialStateRunning, goptuna.TrialStateComplete, goptuna.TrialStatePruned,
	goptuna.TrialStateFail, goptuna.TrialStateWaiting,
}

func testTransitions(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	type tc struct {
		from, to goptuna.TrialState
		allowed  bool
		fmtune   bool // checked on fmtune only (InMemoryStorage allows RUNNING -> RUNNING)
	}
	var cases []tc
	for _, from := range allStates {
		for _, to := range allStates {
			c := tc{from: from, to: to, allowed: !from.IsFinished()}
			if to == goptuna.TrialStateRunning && from != goptuna.TrialStateWaiting {
				c.allowed, c.fmtune = false, from == goptuna.TrialStateRunning
			}
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(c.from.String()+"->"+c.to.String(), func(t *testing.T) {
			if c.fmtune && !fmtune {
				t.Skip("InMemoryStorage lets a RUNNING trial be set RUNNING again")
			}
			start := c.from
			if start.IsFinished() {
				start = goptuna.TrialStateRunning
			}
			tid := newTrialIn(t, s, id, start)
			ok(t, s.SetTrialValue(tid, 1))
			if c.from != start {
				ok(t, s.SetTrialState(tid, c.from))
			}
			err := s.SetTrialState(tid, c.to)
			if !c.allowed {
				if err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // goptuna compares with ==
					t.Fatalf("SetTrialState = %v, want goptuna.ErrTrialCannotBeUpdated unwrapped", err)
				}
				if got := res(s.GetTrial(tid)).must(t).State; got != c.from {
					t.Errorf("state after refused transition = %v, want %v", got, c.from)
				}
				return
			}
			ok(t, err)
			tr := res(s.GetTrial(tid)).must(t)
			if tr.State != c.to {
				t.Errorf("state = %v, want %v", tr.State, c.to)
			}
			if c.to.IsFinished() != !tr.DatetimeComplete.IsZero() {
				t.Errorf("state %v with DatetimeComplete %v", tr.State, tr.DatetimeComplete)
			}
		})
	}
}

func testFinishedFrozen(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	dist := goptuna.UniformDistribution{Low: 0, High: 1}
	for _, st := range []goptuna.TrialState{goptuna.TrialStateComplete, goptuna.TrialStatePruned, goptuna.TrialStateFail} {
		t.Run(st.String(), func(t *testing.T) {
			tid := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SetTrialParam(tid, "x", 0.5, dist))
			ok(t, s.SetTrialValue(tid, 0.5))
			ok(t, s.SetTrialState(tid, st))
			before := res(s.GetTrial(tid)).must(t)
			updates := map[string]func() error{
				"SetTrialValue":             func() error { return s.SetTrialValue(tid, 0.1) },
				"SetTrialIntermediateValue": func() error { return s.SetTrialIntermediateValue(tid, 0, 0.1) },
				"SetTrialParam":             func() error { return s.SetTrialParam(tid, "x", 0.1, dist) },
				"SetTrialUserAttr":          func() error { return s.SetTrialUserAttr(tid, "k", "v") },
				"SetTrialSystemAttr":        func() error { return s.SetTrialSystemAttr(tid, "k", "v") },
			}
			for name, update := range updates {
				if err := update(); err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // goptuna compares with ==
					t.Errorf("%s on %v trial = %v, want goptuna.ErrTrialCannotBeUpdated unwrapped", name, st, err)
				}
			}
			after := res(s.GetTrial(tid)).must(t)
			if !reflect.DeepEqual(before, after) {
				t.Errorf("finished trial changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

func testBest(t *testing.T, s goptuna.Storage, dir goptuna.StudyDirection) {
	id := newStudy(t, s, dir)
	sign := 1.0
	if dir == goptuna.StudyDirectionMaximize {
		sign = -1
	}
	// Values are "goodness ranks" turned into the direction's sense: lower rank is better.
	type tr struct {
		state goptuna.TrialState
		rank  float64
	}
	trials := []tr{
		{goptuna.TrialStateComplete, 3},
		{goptuna.TrialStatePruned, -10}, // better value, but pruned
		{goptuna.TrialStateComplete, 1},
		{goptuna.TrialStateFail, -20},    // better value, but failed
		{goptuna.TrialStateRunning, -30}, // better value, but running
		{goptuna.TrialStateComplete, 1},  // ties with #2: the earlier trial wins
		{goptuna.TrialStateComplete, 2},
	}
	for _, x := range trials {
		tid := res(s.CreateNewTrial(id)).must(t)
		ok(t, s.SetTrialValue(tid, sign*x.rank))
		if x.state != goptuna.TrialStateRunning {
			ok(t, s.SetTrialState(tid, x.state))
		}
	}
	best := res(s.GetBestTrial(id)).must(t)
	if best.Number != 2 || best.Value != sign*1 || best.State != goptuna.TrialStateComplete {
		t.Errorf("best = #%d %v %v, want #2 %v COMPLETE", best.Number, best.Value, best.State, sign)
	}
}

func testBestNone(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	if _, err := s.GetBestTrial(id); !errors.Is(err, goptuna.ErrNoCompletedTrials) {
		t.Errorf("GetBestTrial(empty) = %v, want ErrNoCompletedTrials", err)
	}
	for _, st := range []goptuna.TrialState{goptuna.TrialStatePruned, goptuna.TrialStateFail, goptuna.TrialStateRunning} {
		tid := res(s.CreateNewTrial(id)).must(t)
		ok(t, s.SetTrialValue(tid, 1))
		if st != goptuna.TrialStateRunning {
			ok(t, s.SetTrialState(tid, st))
		}
	}
	_, err := s.GetBestTrial(id)
	if !errors.Is(err, goptuna.ErrNoCompletedTrials) || !errors.Is(err, ErrNoCompletedTrials) {
		t.Errorf("GetBestTrial(no COMPLETE) = %v, want ErrNoCompletedTrials", err)
	}
}

func testCloneWaiting(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	res(s.CreateNewTrial(id)).must(t)
	start := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	tid := res(s.CloneTrial(id, goptuna.FrozenTrial{
		State: goptuna.TrialStateWaiting, DatetimeStart: start,
		IntermediateValues: map[int]float64{}, InternalParams: map[string]float64{},
		Params: map[string]any{}, Distributions: map[string]any{},
		UserAttrs:   map[string]string{},
		SystemAttrs: map[string]string{"fixed_params": `{"lr":0.01}`},
	})).must(t)
	tr := res(s.GetTrial(tid)).must(t)
	if tr.State != goptuna.TrialStateWaiting || tr.Number != 1 || tr.SystemAttrs["fixed_params"] != `{"lr":0.01}` {
		t.Errorf("cloned = %v #%d %v", tr.State, tr.Number, tr.SystemAttrs)
	}
	if !tr.DatetimeStart.Equal(start) {
		t.Errorf("DatetimeStart = %v, want %v", tr.DatetimeStart, start)
	}
	ok(t, s.SetTrialState(tid, goptuna.TrialStateRunning))
	if got := res(s.GetTrial(tid)).must(t).State; got != goptuna.TrialStateRunning {
		t.Errorf("state = %v, want RUNNING", got)
	}
	if fmtune {
		if err := s.SetTrialState(tid, goptuna.TrialStateRunning); err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint
			t.Errorf("second claim = %v, want goptuna.ErrTrialCannotBeUpdated unwrapped", err)
		}
	}
}

func testCloneComplete(t *testing.T, s goptuna.Storage, fmtune bool) {
	id := newStudy(t, s, goptuna.StudyDirectionMaximize)
	base := goptuna.FrozenTrial{
		State: goptuna.TrialStateComplete, Value: 0.875,
		DatetimeStart:      time.Now().Add(-time.Hour).Truncate(time.Microsecond),
		DatetimeComplete:   time.Now().Add(-time.Minute).Truncate(time.Microsecond),
		IntermediateValues: map[int]float64{0: 0.5, 1: 0.8},
		InternalParams:     map[string]float64{},
		Params:             map[string]any{},
		Distributions:      map[string]any{},
		UserAttrs:          map[string]string{"source": "manual"},
		SystemAttrs:        map[string]string{"k": "v"},
	}
	for _, c := range paramCases {
		base.InternalParams[c.name], base.Params[c.name], base.Distributions[c.name] = c.ir, c.xr, c.dist
	}
	tid := res(s.CloneTrial(id, base)).must(t)
	got := res(s.GetTrial(tid)).must(t)
	got.ID, got.StudyID, got.Number = base.ID, base.StudyID, base.Number
	got.DatetimeStart, got.DatetimeComplete = got.DatetimeStart.Round(0), got.DatetimeComplete.Round(0)
	if !reflect.DeepEqual(got, base) {
		t.Errorf("cloned trial\n got %+v\nwant %+v", got, base)
	}
	if best := res(s.GetBestTrial(id)).must(t); best.ID != tid {
		t.Errorf("best = %d, want the cloned %d", best.ID, tid)
	}
}

// testOptimize drives the storage through goptuna itself: an enqueued trial, a sampler,
// a median pruner, and failing objectives.
func testOptimize(t *testing.T, s goptuna.Storage, fmtune bool) {
	study, err := goptuna.CreateStudy(studyName(t),
		goptuna.StudyOptionStorage(s),
		goptuna.StudyOptionSampler(goptuna.NewRandomSampler(goptuna.RandomSamplerOptionSeed(1))),
		goptuna.StudyOptionPruner(medianstopping.NewMedianPruner()),
		goptuna.StudyOptionIgnoreError(true),
		goptuna.StudyOptionLogger(nil),
	)
	ok(t, err)
	ok(t, study.EnqueueTrial(map[string]float64{"x": 1.5, "opt": 1}))
	objective := func(trial goptuna.Trial) (float64, error) {
		x, err := trial.SuggestFloat("x", -3, 3)
		if err != nil {
			return 0, err
		}
		opt, err := trial.SuggestCategorical("opt", []string{"sgd", "adam"})
		if err != nil {
			return 0, err
		}
		n, _ := trial.Number()
		if n%7 == 6 {
			return 0, errors.New("diverged")
		}
		v := x * x
		if opt == "adam" {
			v /= 2
		}
		for step := 0; step < 3; step++ {
			if err := trial.ShouldPrune(step, v+float64(3-step)); err != nil {
				return 0, err
			}
		}
		return v, nil
	}
	ok(t, study.Optimize(objective, 20))

	trials := res(s.GetAllTrials(study.ID)).must(t)
	if len(trials) != 20 {
		t.Fatalf("%d trials, want 20", len(trials))
	}
	sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
	counts := map[goptuna.TrialState]int{}
	bestV := math.Inf(1)
	for i, tr := range trials {
		counts[tr.State]++
		if tr.Number != i {
			t.Errorf("trial numbers not 0..19: %d at %d", tr.Number, i)
		}
		if !tr.State.IsFinished() {
			t.Errorf("trial #%d %v after Optimize", tr.Number, tr.State)
		}
		if tr.State == goptuna.TrialStateComplete && tr.Value < bestV {
			bestV = tr.Value
		}
	}
	if first := trials[0]; first.Params["x"] != 1.5 || first.Params["opt"] != "adam" {
		t.Errorf("enqueued trial params = %v, want x=1.5 opt=adam", first.Params)
	}
	if counts[goptuna.TrialStateFail] == 0 || counts[goptuna.TrialStateComplete] == 0 {
		t.Errorf("states %v: want COMPLETE and FAIL trials", counts)
	}
	if got := res(study.GetBestValue()).must(t); got != bestV {
		t.Errorf("GetBestValue = %v, want %v", got, bestV)
	}
}
