package study

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"

	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/internal/teststore"
)

func ranking(imp []ParamImportance) string {
	var names []string
	for _, p := range imp {
		names = append(names, p.Param)
	}
	return strings.Join(names, ",")
}

// clearWinner is the accuracy of a study where the optimizer decides almost
// everything, the learning rate a little and the batch size nothing (but a
// little noise).
func clearWinner(lr float64, opt string, batch int, n int) float64 {
	byOpt := map[string]float64{"sgd": -0.15, "adam": 0.02, "nadam": 0.03, "rmsprop": -0.02}
	byLR := map[float64]float64{0.001: -0.012, 0.01: 0.01, 0.1: 0.002}
	noise := float64((n*7919+batch)%11-5) * 0.0004
	return 0.85 + byOpt[opt] + byLR[lr] + noise
}

// gridTrials are two passes over the default grid, all complete, plus a
// pruned and a failed trial that must not count.
func gridTrials() []TrialInfo {
	var out []TrialInfo
	n := 0
	for pass := 0; pass < 2; pass++ {
		for _, lr := range []float64{0.001, 0.01, 0.1} {
			for _, opt := range []string{"sgd", "adam", "nadam", "rmsprop"} {
				for _, batch := range []int{128, 256} {
					v := clearWinner(lr, opt, batch, n)
					out = append(out, TrialInfo{Number: n, State: "complete", ValAcc: &v,
						Params: map[string]any{search.ParamLR: lr, search.ParamOptimizer: opt, search.ParamBatch: batch}})
					n++
				}
			}
		}
	}
	bad := 0.99
	out = append(out,
		TrialInfo{Number: n, State: "pruned", ValAcc: &bad, Params: map[string]any{search.ParamLR: 0.1, search.ParamOptimizer: "sgd", search.ParamBatch: 128}},
		TrialInfo{Number: n + 1, State: "fail", Params: map[string]any{search.ParamLR: 0.1, search.ParamOptimizer: "sgd", search.ParamBatch: 256}})
	return out
}

func TestImportanceClearWinner(t *testing.T) {
	imp := Importance(gridTrials())
	if got := ranking(imp); got != "optimizer,lr,batch" {
		t.Fatalf("ranking %s, want optimizer,lr,batch: %+v", got, imp)
	}
	sum := 0.0
	for _, p := range imp {
		sum += p.Importance
	}
	if math.Abs(sum-1) > 1e-9 || imp[0].Importance < 0.9 {
		t.Fatalf("importances %+v: want a sum of 1 and the optimizer above 0.9", imp)
	}
	// On a full grid the main effects are the per-value means minus the mean.
	for _, l := range imp[0].Levels {
		if l.Label == "sgd" && (l.Trials != 12 || math.Abs(l.Effect-(-0.15-(-0.15+0.02+0.03-0.02)/4)) > 0.002) {
			t.Fatalf("sgd level %+v", l)
		}
	}
}

func TestImportanceEdgeCases(t *testing.T) {
	if imp := Importance(nil); imp != nil {
		t.Fatalf("no trials: %+v", imp)
	}
	v := 0.5
	one := []TrialInfo{{State: "complete", ValAcc: &v, Params: map[string]any{"lr": 0.1}}}
	if imp := Importance(append(one, one[0], one[0])); imp != nil {
		t.Fatalf("a parameter with one value has no effect to rank: %+v", imp)
	}
	// A range with many values is cut into ranges of equal counts.
	var trials []TrialInfo
	for i := 0; i < 60; i++ {
		lr := math.Pow(10, -4+3*float64(i)/59)
		acc := 0.5 + 0.1*math.Log10(lr)
		trials = append(trials, TrialInfo{Number: i, State: "complete", ValAcc: &acc,
			Params: map[string]any{"lr": lr, "batch": 64 + 64*(i%3)}})
	}
	imp := Importance(trials)
	if ranking(imp) != "lr,batch" || len(imp[0].Levels) != maxLevels {
		t.Fatalf("%+v", imp)
	}
	for i, l := range imp[0].Levels {
		if l.Trials != 10 || (i > 0 && l.Effect <= imp[0].Levels[i-1].Effect) {
			t.Fatalf("lr levels %+v: want %d ranges of 10 trials with rising effects", imp[0].Levels, maxLevels)
		}
	}
}

// TestImportanceAgreesWithOptuna stores the clear-winner study in SQLite
// as fmtune does and asks Optuna's get_param_importances (fANOVA on a
// random forest) for its ranking of the same file.
func TestImportanceAgreesWithOptuna(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import optuna, sklearn").CombinedOutput(); err != nil {
		testenv.Skip(t, "optuna", "needs python3-optuna and python3-sklearn (apt-get install python3-optuna python3-sklearn): %v: %s",
			err, strings.TrimSpace(string(out)))
	}
	u := teststore.SQLiteURL(t)
	store := teststore.Open(t, u)
	sid, err := store.CreateNewStudy("winner")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetStudyDirection(sid, goptuna.StudyDirectionMaximize); err != nil {
		t.Fatal(err)
	}
	choices := map[string][]string{
		search.ParamLR: {"0.001", "0.01", "0.1"}, search.ParamOptimizer: {"sgd", "adam", "nadam", "rmsprop"}, search.ParamBatch: {"128", "256"},
	}
	for _, tr := range gridTrials() {
		if tr.State != "complete" {
			continue
		}
		id, err := store.CreateNewTrial(sid)
		if err != nil {
			t.Fatal(err)
		}
		for name, cs := range choices {
			idx := -1
			for i, c := range cs {
				if c == fmt.Sprint(tr.Params[name]) {
					idx = i
				}
			}
			if idx < 0 {
				t.Fatalf("%s=%v is not a choice", name, tr.Params[name])
			}
			if err := store.SetTrialParam(id, name, float64(idx), goptuna.CategoricalDistribution{Choices: cs}); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.SetTrialValue(id, *tr.ValAcc); err != nil {
			t.Fatal(err)
		}
		if err := store.SetTrialState(id, goptuna.TrialStateComplete); err != nil {
			t.Fatal(err)
		}
	}
	ours, err := Trials(store, "winner", "")
	if err != nil {
		t.Fatal(err)
	}
	imp := Importance(ours)

	out, err := exec.Command(python, filepath.Join("testdata", "optuna_importance.py"), u, "winner").Output()
	if err != nil {
		t.Fatalf("optuna_importance.py: %v: %s", err, errText(err))
	}
	var theirs map[string]float64
	if err := json.Unmarshal(out, &theirs); err != nil {
		t.Fatalf("optuna's answer %q: %v", out, err)
	}
	order := make([]ParamImportance, 0, len(theirs))
	for k, v := range theirs {
		order = append(order, ParamImportance{Param: k, Importance: v})
	}
	for i := range order {
		for j := i + 1; j < len(order); j++ {
			if order[j].Importance > order[i].Importance {
				order[i], order[j] = order[j], order[i]
			}
		}
	}
	t.Logf("fmtune: %+v", imp)
	t.Logf("optuna: %v", theirs)
	if ranking(imp) != ranking(order) {
		t.Fatalf("fmtune ranks %s, Optuna %s", ranking(imp), ranking(order))
	}
}

func errText(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
