package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// TestSemantics checks, on SQLite and PostgreSQL, what fmtune guarantees beyond goptuna's
// InMemoryStorage: non-finite objectives never complete, atomic claims and numbering under
// concurrency, persistence, heartbeats.
func TestSemantics(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *Storage)
	}{
		{"nan-objective-becomes-fail", testNaNObjective},
		{"infinite-objective-becomes-fail", testInfObjective},
		{"complete-without-value-becomes-fail", testCompleteNoValue},
		{"pruned-with-nan-last-report", testPrunedNaN},
		{"errors-wrap-sentinels", testErrors},
		{"studies-are-isolated", testIsolation},
		{"concurrent-claim-of-waiting-trial", testClaimRace},
		{"concurrent-numbering", testConcurrentNumbers},
		{"heartbeat-and-stale-trials", testHeartbeats},
		{"study-lookup", testStudyHelper},
	}
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.open(t)) })
			}
		})
	}
}

func failReason(t *testing.T, s *Storage, tid int) string {
	t.Helper()
	return res(s.GetTrial(tid)).must(t).SystemAttrs[failReasonKey]
}

func countValues(t *testing.T, s *Storage, tid int) int {
	t.Helper()
	var n int
	ok(t, s.db.QueryRow(s.d.rebind("SELECT COUNT(*) FROM trial_values WHERE trial_id = ?"), tid).Scan(&n))
	return n
}

func testNaNObjective(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	nan := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialValue(nan, math.NaN()))
	ok(t, s.SetTrialState(nan, goptuna.TrialStateComplete))
	tr := res(s.GetTrial(nan)).must(t)
	if tr.State != goptuna.TrialStateFail || !strings.Contains(failReason(t, s, nan), "NaN") {
		t.Errorf("NaN objective: state %v, fail_reason %q; want FAIL with NaN reason", tr.State, failReason(t, s, nan))
	}
	if n := countValues(t, s, nan); n != 0 {
		t.Errorf("NaN objective left %d trial_values rows", n)
	}
	if _, err := s.GetBestTrial(id); !errors.Is(err, ErrNoCompletedTrials) {
		t.Errorf("GetBestTrial with only a NaN trial = %v, want ErrNoCompletedTrials", err)
	}
	good := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialValue(good, 7))
	ok(t, s.SetTrialState(good, goptuna.TrialStateComplete))
	if best := res(s.GetBestTrial(id)).must(t); best.ID != good {
		t.Errorf("best = %d, want %d", best.ID, good)
	}
	// A NaN value overwritten by a finite one completes normally.
	later := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialValue(later, math.NaN()))
	ok(t, s.SetTrialValue(later, 3))
	ok(t, s.SetTrialState(later, goptuna.TrialStateComplete))
	if best := res(s.GetBestTrial(id)).must(t); best.ID != later || best.Value != 3 {
		t.Errorf("best = %d (%v), want %d (3)", best.ID, best.Value, later)
	}
	// CloneTrial of a COMPLETE trial with a NaN value follows the same rule.
	cl := res(s.CloneTrial(id, goptuna.FrozenTrial{State: goptuna.TrialStateComplete, Value: math.NaN(),
		DatetimeStart: time.Now(), DatetimeComplete: time.Now()})).must(t)
	if got := res(s.GetTrial(cl)).must(t).State; got != goptuna.TrialStateFail {
		t.Errorf("cloned NaN COMPLETE trial is %v, want FAIL", got)
	}
}

func testInfObjective(t *testing.T, s *Storage) {
	for _, c := range []struct {
		dir goptuna.StudyDirection
		v   float64
	}{
		{goptuna.StudyDirectionMaximize, math.Inf(1)},
		{goptuna.StudyDirectionMinimize, math.Inf(-1)},
	} {
		t.Run(string(c.dir), func(t *testing.T) {
			id := newStudy(t, s, c.dir)
			good := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SetTrialValue(good, 0.5))
			ok(t, s.SetTrialState(good, goptuna.TrialStateComplete))
			inf := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SetTrialValue(inf, c.v))
			ok(t, s.SetTrialState(inf, goptuna.TrialStateComplete))
			if tr := res(s.GetTrial(inf)).must(t); tr.State != goptuna.TrialStateFail || !strings.Contains(failReason(t, s, inf), "Inf") {
				t.Errorf("%v objective: state %v, reason %q; want FAIL", c.v, tr.State, failReason(t, s, inf))
			}
			if best := res(s.GetBestTrial(id)).must(t); best.ID != good {
				t.Errorf("best = %d, want %d (the finite one)", best.ID, good)
			}
		})
	}
}

func testCompleteNoValue(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialState(tid, goptuna.TrialStateComplete))
	if tr := res(s.GetTrial(tid)).must(t); tr.State != goptuna.TrialStateFail || failReason(t, s, tid) == "" {
		t.Errorf("COMPLETE without value: %v, reason %q; want FAIL with a reason", tr.State, failReason(t, s, tid))
	}
}

func testPrunedNaN(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	ok(t, s.SetTrialIntermediateValue(tid, 0, 1.5))
	ok(t, s.SetTrialIntermediateValue(tid, 1, math.NaN()))
	// goptuna's runTrial sets the last intermediate value, then PRUNED.
	ok(t, s.SetTrialValue(tid, math.NaN()))
	ok(t, s.SetTrialState(tid, goptuna.TrialStatePruned))
	tr := res(s.GetTrial(tid)).must(t)
	if tr.State != goptuna.TrialStatePruned || countValues(t, s, tid) != 0 || !math.IsNaN(tr.IntermediateValues[1]) {
		t.Errorf("pruned with NaN report: %v, %d values, steps %v; want PRUNED without value, NaN kept",
			tr.State, countValues(t, s, tid), tr.IntermediateValues)
	}
	if _, has := tr.SystemAttrs[failReasonKey]; has {
		t.Errorf("pruned trial got a fail_reason")
	}
}

func testErrors(t *testing.T, s *Storage) {
	const missing = 1 << 30
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	tid := res(s.CreateNewTrial(id)).must(t)
	studyCalls := map[string]error{
		"GetStudyNameFromID":  res(s.GetStudyNameFromID(missing)).err,
		"GetStudyDirection":   res(s.GetStudyDirection(missing)).err,
		"GetStudyUserAttrs":   res(s.GetStudyUserAttrs(missing)).err,
		"GetStudySystemAttrs": res(s.GetStudySystemAttrs(missing)).err,
		"GetAllTrials":        res(s.GetAllTrials(missing)).err,
		"GetBestTrial":        res(s.GetBestTrial(missing)).err,
		"CreateNewTrial":      res(s.CreateNewTrial(missing)).err,
		"SetStudyDirection":   s.SetStudyDirection(missing, goptuna.StudyDirectionMaximize),
		"SetStudyUserAttr":    s.SetStudyUserAttr(missing, "k", "v"),
		"DeleteStudy":         s.DeleteStudy(missing),
		"RecoverStaleTrials":  res(s.RecoverStaleTrials(missing, time.Minute, nil)).err,
		"GetStudyIDFromName":  res(s.GetStudyIDFromName("no such study")).err,
	}
	for name, err := range studyCalls {
		if !errors.Is(err, ErrStudyNotFound) {
			t.Errorf("%s(unknown study) = %v, want ErrStudyNotFound", name, err)
		}
	}
	trialCalls := map[string]error{
		"GetTrial":                  res(s.GetTrial(missing)).err,
		"GetTrialNumberFromID":      res(s.GetTrialNumberFromID(missing)).err,
		"GetStudyIDFromTrialID":     res(s.GetStudyIDFromTrialID(missing)).err,
		"GetTrialParam":             res(s.GetTrialParam(missing, "x")).err,
		"GetTrialParams":            res(s.GetTrialParams(missing)).err,
		"GetTrialUserAttrs":         res(s.GetTrialUserAttrs(missing)).err,
		"GetTrialSystemAttrs":       res(s.GetTrialSystemAttrs(missing)).err,
		"SetTrialValue":             s.SetTrialValue(missing, 1),
		"SetTrialIntermediateValue": s.SetTrialIntermediateValue(missing, 0, 1),
		"SetTrialParam":             s.SetTrialParam(missing, "x", 1, goptuna.UniformDistribution{Low: 0, High: 2}),
		"SetTrialState":             s.SetTrialState(missing, goptuna.TrialStateComplete),
		"SetTrialState(RUNNING)":    s.SetTrialState(missing, goptuna.TrialStateRunning),
		"SetTrialUserAttr":          s.SetTrialUserAttr(missing, "k", "v"),
		"RecordHeartbeat":           s.RecordHeartbeat(missing),
	}
	for name, err := range trialCalls {
		if !errors.Is(err, ErrTrialNotFound) || !errors.Is(err, goptuna.ErrInvalidTrialID) {
			t.Errorf("%s(unknown trial) = %v, want ErrTrialNotFound", name, err)
		}
	}
	if err := s.SetTrialParam(tid, "x", 1, struct{}{}); !errors.Is(err, goptuna.ErrUnknownDistribution) {
		t.Errorf("SetTrialParam(unknown distribution) = %v", err)
	}
	if err := s.SetStudyDirection(id, "sideways"); err == nil {
		t.Error("SetStudyDirection(sideways): no error")
	}
	if _, err := s.RecoverStaleTrials(id, 0, nil); err == nil {
		t.Error("RecoverStaleTrials(grace 0): no error")
	}
}

func testIsolation(t *testing.T, s *Storage) {
	a := newStudy(t, s, goptuna.StudyDirectionMinimize)
	b := newStudy(t, s, goptuna.StudyDirectionMaximize)
	for i := 0; i < 3; i++ {
		for _, id := range []int{a, b} {
			tid := res(s.CreateNewTrial(id)).must(t)
			if n := res(s.GetTrialNumberFromID(tid)).must(t); n != i {
				t.Errorf("study %d trial number %d, want %d", id, n, i)
			}
			ok(t, s.SetTrialValue(tid, float64(i+10*id)))
			ok(t, s.SetTrialState(tid, goptuna.TrialStateComplete))
		}
	}
	if got := res(s.GetAllTrials(a)).must(t); len(got) != 3 {
		t.Errorf("study a: %d trials", len(got))
	}
	if ba, bb := res(s.GetBestTrial(a)).must(t), res(s.GetBestTrial(b)).must(t); ba.Number != 0 || bb.Number != 2 || ba.StudyID != a || bb.StudyID != b {
		t.Errorf("best trials #%d (study %d), #%d (study %d)", ba.Number, ba.StudyID, bb.Number, bb.StudyID)
	}
}

// testClaimRace: many goroutines claim the same WAITING trials; each is claimed once.
func testClaimRace(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	const trials, workers = 10, 8
	var ids []int
	for i := 0; i < trials; i++ {
		ids = append(ids, newTrialIn(t, s, id, goptuna.TrialStateWaiting))
	}
	var mu sync.Mutex
	wins := map[int]int{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tid := range ids {
				err := s.SetTrialState(tid, goptuna.TrialStateRunning)
				switch err {
				case nil:
					mu.Lock()
					wins[tid]++
					mu.Unlock()
				case goptuna.ErrTrialCannotBeUpdated:
				default:
					t.Errorf("claim %d: %v (want nil or goptuna.ErrTrialCannotBeUpdated unwrapped)", tid, err)
				}
			}
		}()
	}
	wg.Wait()
	for _, tid := range ids {
		if wins[tid] != 1 {
			t.Errorf("trial %d claimed %d times, want once", tid, wins[tid])
		}
	}
}

// testConcurrentNumbering: trials created and cloned from many goroutines are numbered
// 0..n-1 exactly once.
func testConcurrentNumbers(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var err error
				if i%3 == 0 {
					_, err = s.CloneTrial(id, goptuna.FrozenTrial{State: goptuna.TrialStateWaiting, DatetimeStart: time.Now()})
				} else {
					_, err = s.CreateNewTrial(id)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkNumbers(t, res(s.GetAllTrials(id)).must(t), workers*each)
}

// checkNumbers fails unless trials are numbered 0..n-1 with no gap or duplicate.
func checkNumbers(t *testing.T, trials []goptuna.FrozenTrial, n int) {
	t.Helper()
	nums := make([]int, 0, len(trials))
	for _, tr := range trials {
		nums = append(nums, tr.Number)
	}
	sort.Ints(nums)
	if len(nums) != n {
		t.Errorf("%d trials, want %d", len(nums), n)
	}
	for i, v := range nums {
		if v != i {
			t.Fatalf("trial numbers have a gap or duplicate at %d: got %d", i, v)
		}
	}
}

// ageHeartbeat moves a trial's heartbeat back by d, on the database's own clock.
func ageHeartbeat(t *testing.T, s *Storage, tid int, d time.Duration) {
	t.Helper()
	var err error
	if s.d.kind == kindPostgres {
		_, err = s.db.Exec("UPDATE trial_heartbeats SET heartbeat = heartbeat - make_interval(secs => $1) WHERE trial_id = $2",
			d.Seconds(), tid)
	} else {
		_, err = s.db.Exec("UPDATE trial_heartbeats SET heartbeat = ? WHERE trial_id = ?",
			time.Now().UTC().Add(-d).Format(dbTimeLayout), tid)
	}
	ok(t, err)
}

func testHeartbeats(t *testing.T, s *Storage) {
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	const grace = time.Minute
	dist := goptuna.CategoricalDistribution{Choices: []string{"sgd", "adam"}}
	mk := func(state goptuna.TrialState, start time.Time) int {
		return res(s.CloneTrial(id, goptuna.FrozenTrial{State: state, DatetimeStart: start,
			InternalParams: map[string]float64{"opt": 1}, Distributions: map[string]any{"opt": dist},
			Params: map[string]any{"opt": "adam"}, SystemAttrs: map[string]string{"fixed_params": `{"opt":1}`},
			IntermediateValues: map[int]float64{0: 0.25}})).must(t)
	}
	old := time.Now().Add(-time.Hour)
	alive := mk(goptuna.TrialStateRunning, old)      // beats now
	stale := mk(goptuna.TrialStateRunning, old)      // beat an hour ago
	neverBeat := mk(goptuna.TrialStateRunning, old)  // started an hour ago, never beat
	justStarted := res(s.CreateNewTrial(id)).must(t) // started now, not beaten yet
	finished := mk(goptuna.TrialStateRunning, old)
	waiting := mk(goptuna.TrialStateWaiting, old)
	ok(t, s.SetTrialState(finished, goptuna.TrialStatePruned))
	for _, tid := range []int{alive, stale} {
		ok(t, s.RecordHeartbeat(tid))
		ok(t, s.RecordHeartbeat(tid)) // a second beat updates the one row
	}
	ageHeartbeat(t, s, stale, 2*time.Hour)

	failed := res(s.RecoverStaleTrials(id, grace, nil)).must(t)
	var got []int
	for _, tr := range failed {
		got = append(got, tr.ID)
		if tr.State != goptuna.TrialStateRunning || tr.Params["opt"] != "adam" ||
			tr.SystemAttrs["fixed_params"] != `{"opt":1}` || tr.IntermediateValues[0] != 0.25 {
			t.Errorf("returned trial %d not as before failing: %+v", tr.ID, tr)
		}
	}
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint([]int{stale, neverBeat}) {
		t.Fatalf("RecoverStaleTrials = %v, want %v (stale, never beat)", got, []int{stale, neverBeat})
	}
	want := map[int]goptuna.TrialState{alive: goptuna.TrialStateRunning, stale: goptuna.TrialStateFail,
		neverBeat: goptuna.TrialStateFail, justStarted: goptuna.TrialStateRunning,
		finished: goptuna.TrialStatePruned, waiting: goptuna.TrialStateWaiting}
	for tid, st := range want {
		if got := res(s.GetTrial(tid)).must(t).State; got != st {
			t.Errorf("trial %d is %v, want %v", tid, got, st)
		}
	}
	if !strings.Contains(failReason(t, s, stale), "heartbeat") {
		t.Errorf("fail_reason = %q", failReason(t, s, stale))
	}
	// Programs read the kind, written with the FAIL state, never the reason's text.
	for _, tid := range []int{stale, neverBeat} {
		if kind := res(s.GetTrial(tid)).must(t).SystemAttrs[AttrFailKind]; kind != FailKindStale {
			t.Errorf("trial %d: %s = %q, want %q", tid, AttrFailKind, kind, FailKindStale)
		}
	}
	if again := res(s.RecoverStaleTrials(id, grace, nil)).must(t); len(again) != 0 {
		t.Errorf("second RecoverStaleTrials returned %d trials", len(again))
	}
	// The worker of a trial failed as stale learns it at its next heartbeat or update.
	if err := s.RecordHeartbeat(stale); err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint
		t.Errorf("RecordHeartbeat(failed) = %v, want goptuna.ErrTrialCannotBeUpdated", err)
	}
	// The heartbeat is stored where Optuna looks for it: trial_heartbeats, one row a trial.
	var rows int
	ok(t, s.db.QueryRowContext(context.Background(), s.d.rebind("SELECT COUNT(*) FROM trial_heartbeats WHERE trial_id = ?"), alive).Scan(&rows))
	if rows != 1 {
		t.Errorf("%d heartbeat rows for one trial", rows)
	}
}

func testStudyHelper(t *testing.T, s *Storage) {
	name := studyName(t)
	id := res(s.CreateNewStudy(name)).must(t)
	if got := res(s.GetStudyIDFromName(name)).must(t); got != id {
		t.Errorf("GetStudyIDFromName(%q) = %d, want %d", name, got, id)
	}
	if _, err := s.GetStudyIDFromName(name + "x"); !errors.Is(err, ErrStudyNotFound) {
		t.Errorf("GetStudyIDFromName(unknown) = %v, want ErrStudyNotFound", err)
	}
	if s.String() == "" {
		t.Errorf("String() is empty")
	}
}
