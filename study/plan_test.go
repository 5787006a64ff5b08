package study

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const testPlan = `
description: a small plan
defaults: {epochs: 1, val: 500, train_limit: 1500, seed: 3}
studies:
  a: {arch: mlp, trials: 3}
  b: {arch: deep}
steps:
  - manual: {study: a, optimizer: sgd, lr: 0.1, batch: 128}
  - manual: {study: a, optimizer: adam, lr: 0.01, batch: 256, epochs: 2}
  - tune: {study: a}
  - best_of: {study: b, from: a}
  - compare: [a, b]
`

func TestPlanRunsAndRerunDoesNothingNew(t *testing.T) {
	smallData(t) // skips without the data
	store := openStore(t)
	path := filepath.Join(t.TempDir(), "plan.yaml")
	writeFile(t, path, testPlan)
	plan, err := ReadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	var compared [][]string
	opt := PlanOptions{RunOptions: RunOptions{Workers: 2}, Compare: func(names []string) error {
		compared = append(compared, names)
		return nil
	}}
	if err := RunPlan(context.Background(), store, plan, opt); err != nil {
		t.Fatal(err)
	}
	a, err := Trials(store, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	manual, sampled := 0, 0
	for _, tr := range a {
		if tr.Source == SourceManual {
			manual++
		} else {
			sampled++
		}
	}
	if manual != 2 || sampled != 3 {
		t.Fatalf("study a: %d manual and %d sampled trials, want 2 and 3", manual, sampled)
	}
	if a[1].Epochs != 2 || a[0].Epochs != 1 {
		t.Fatalf("manual epochs %d and %d, want 1 (the study's) and 2 (the step's)", a[0].Epochs, a[1].Epochs)
	}
	best, err := Best(store, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Trials(store, "b", "")
	if err != nil || len(b) != 1 || b[0].Source != SourceManual {
		t.Fatalf("study b: %+v, %v; want one manual trial", b, err)
	}
	if b[0].Params["lr"] != best.Params["lr"] || b[0].Params["optimizer"] != best.Params["optimizer"] || b[0].Params["batch"] != best.Params["batch"] {
		t.Fatalf("best_of trained %v, want a's best %v", b[0].Params, best.Params)
	}
	if len(compared) != 1 || strings.Join(compared[0], ",") != "a,b" {
		t.Fatalf("compare steps: %v", compared)
	}

	// Again: nothing new is trained.
	if err := RunPlan(context.Background(), store, plan, opt); err != nil {
		t.Fatal(err)
	}
	a2, _ := Trials(store, "a", "")
	b2, _ := Trials(store, "b", "")
	if len(a2) != len(a) || len(b2) != len(b) {
		t.Fatalf("rerun added trials: a %d -> %d, b %d -> %d", len(a), len(a2), len(b), len(b2))
	}
}

func TestReadPlanRefusesMistakes(t *testing.T) {
	for name, text := range map[string]string{
		"unknown key":        "studies: {a: {arch: mlp}}\nsteps: [{tune: {study: a}}]\nworkers: 3\n",
		"unknown study key":  "studies: {a: {arch: mlp, learning_rate: 0.1}}\nsteps: [{tune: {study: a}}]\n",
		"unknown step study": "studies: {a: {arch: mlp}}\nsteps: [{tune: {study: b}}]\n",
		"two kinds in step":  "studies: {a: {arch: mlp}}\nsteps: [{tune: {study: a}, compare: [a]}]\n",
		"no steps":           "studies: {a: {arch: mlp}}\n",
		"bad arch":           "studies: {a: {arch: resnet}}\nsteps: [{tune: {study: a}}]\n",
		"grid over a range":  "studies: {a: {arch: mlp, sampler: grid, lr: '1e-4:0.1:log'}}\nsteps: [{tune: {study: a}}]\n",
		"empty":              "",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plan.yaml")
			writeFile(t, path, text)
			if _, err := ReadPlan(path); !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("ReadPlan: %v, want ErrInvalidSpec", err)
			}
		})
	}
}

// TestPlanUnknownKeysNamed: every unknown key is named with its line and
// the keys valid in its place, whatever the nesting.
func TestPlanUnknownKeysNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.yaml")
	writeFile(t, path, "studies:\n  a: {arch: mlp, epoch: 3}\nsteps:\n  - manual: {study: a, optimiser: sgd}\n")
	_, err := ReadPlan(path)
	for _, want := range []string{
		`line 2: unknown key "epoch" (valid: arch, lr, optimizers, batch, sampler, pruner, epochs, trials, seed, val, train_limit, repeats, dead_after)`,
		`line 4: unknown key "optimiser" (valid: study, optimizer, lr, batch, epochs, seed)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadPlan: %v\nwant it to say %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "study.") {
		t.Errorf("the message names Go types: %v", err)
	}
}

func TestExamplePlanIsValid(t *testing.T) {
	plan, err := ReadPlan(filepath.Join("..", "examples", "fashion-mnist-study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manual := 0
	for _, s := range plan.Steps {
		if s.Manual != nil {
			manual++
		}
	}
	if manual != 9 {
		t.Fatalf("the example's manual series has %d runs, want the 9 of the published study", manual)
	}
}
