package study

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/internal/teststore"
	"github.com/fmtune/fmtune/search"
)

// optunaView is how Optuna reads a study (testdata/optuna_params.py).
type optunaView struct {
	BestParams map[string][2]any `json:"best_params"` // value, Python type name
	Dtypes     map[string]string `json:"dtypes"`
}

// readWithOptuna runs Debian's Optuna 3.1 (with pandas) on the study.
func readWithOptuna(t *testing.T, dbPath, name string) optunaView {
	t.Helper()
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import optuna, pandas").CombinedOutput(); err != nil {
		testenv.Skip(t, "optuna", "needs Optuna and pandas (apt-get install python3-optuna python3-pandas): %v: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command(python, filepath.Join("testdata", "optuna_params.py"), dbPath, name).Output()
	if err != nil {
		t.Fatalf("optuna_params.py: %v\n%s", err, out)
	}
	var v optunaView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("optuna_params.py printed %s: %v", out, err)
	}
	return v
}

// runFake runs spec's study to its target with the fake trainer.
func runFake(t *testing.T, store Store, spec Spec) {
	t.Helper()
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Train: (&fakeTrainer{}).Train}); err != nil {
		t.Fatal(err)
	}
}

// TestOptunaSeesNumbers checks that a new study's lr and batch choices
// reach Optuna as numbers, and that a study stored the old way (string
// choices) still runs and reads back, with strings in Optuna as before.
func TestOptunaSeesNumbers(t *testing.T) {
	for _, c := range []struct {
		name    string
		numeric bool
		params  map[string]string // Python type per parameter
		dtypes  map[string]string
	}{
		{"new", true, map[string]string{"lr": "float", "batch": "int", "optimizer": "str"},
			map[string]string{"params_lr": "float64", "params_batch": "int64", "params_optimizer": "object"}},
		{"old", false, map[string]string{"lr": "str", "batch": "str", "optimizer": "str"},
			map[string]string{"params_lr": "object", "params_batch": "object", "params_optimizer": "object"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fmtune.db")
			store := teststore.Open(t, "sqlite:///"+path)
			spec := testSpec("s")
			spec.Trials = 6
			spec = prepare(t, store, spec)
			if !spec.Space.NumericChoices {
				t.Fatal("a new study does not store numeric choices")
			}
			if !c.numeric {
				// A study created before numeric choices: its stored spec lacks the field.
				spec.Space.NumericChoices = false
				text, err := MarshalSpec(spec)
				if err != nil {
					t.Fatal(err)
				}
				id, err := store.GetStudyIDFromName("s")
				if err != nil {
					t.Fatal(err)
				}
				if err := store.SetStudySystemAttr(id, SpecAttr, strings.Replace(text, `,"numeric_choices":true`, "", 1)); err != nil {
					t.Fatal(err)
				}
			}
			runFake(t, store, prepare(t, store, spec))
			best, err := Best(store, "s")
			if err != nil {
				t.Fatal(err)
			}
			p, err := search.PointFromParams(best.Params)
			if err != nil || !search.DefaultSpace().Contains(p) {
				t.Fatalf("best params %v read back as %v, %v", best.Params, p, err)
			}
			got := readWithOptuna(t, path, "s")
			types := map[string]string{}
			for k, v := range got.BestParams {
				types[k] = v[1].(string)
			}
			if !reflect.DeepEqual(types, c.params) || !reflect.DeepEqual(got.Dtypes, c.dtypes) {
				t.Fatalf("Optuna reads best_params %v and dtypes %v; want types %v and dtypes %v", got.BestParams, got.Dtypes, c.params, c.dtypes)
			}
		})
	}
}
