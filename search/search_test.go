//go:debug randseednop=0

package search

import (
	"errors"
	"math/rand"
	"reflect"
	"testing"

	"github.com/c-bata/goptuna"
)

func TestParseDims(t *testing.T) {
	tests := []struct {
		name    string
		integer bool
		in      string
		want    Dim
		wantErr bool
	}{
		{name: "lr choices", in: "0.001,0.01,0.1", want: Dim{Choices: []float64{0.001, 0.01, 0.1}}},
		{name: "lr log range", in: "1e-4:0.3:log", want: Dim{Low: 1e-4, High: 0.3, Log: true}},
		{name: "lr linear range", in: "0.01:0.2", want: Dim{Low: 0.01, High: 0.2}},
		{name: "lr zero", in: "0,0.1", wantErr: true},
		{name: "lr negative range", in: "-1:0.1", wantErr: true},
		{name: "lr empty", in: "", wantErr: true},
		{name: "lr empty choice", in: "0.1,,0.2", wantErr: true},
		{name: "lr repeated", in: "0.1,0.1", wantErr: true},
		{name: "lr reversed range", in: "0.3:1e-4", wantErr: true},
		{name: "lr step on float", in: "0.1:0.3:2", wantErr: true},
		{name: "lr not a number", in: "fast", wantErr: true},
		{name: "batch choices", integer: true, in: "128,256", want: Dim{Choices: []float64{128, 256}}},
		{name: "batch stepped range", integer: true, in: "64:512:64", want: Dim{Low: 64, High: 512, Step: 64}},
		{name: "batch fraction", integer: true, in: "128.5", wantErr: true},
		{name: "batch negative", integer: true, in: "-1", wantErr: true},
		{name: "batch zero step", integer: true, in: "64:512:0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := ParseFloatDim
			if tt.integer {
				parse = ParseIntDim
			}
			got, err := parse("x", tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidSpace) {
					t.Fatalf("parse(%q) error = %v, want ErrInvalidSpace", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			back, err := parse("x", got.String())
			if err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("String() %q does not parse back to the same dim: %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseOptimizers(t *testing.T) {
	valid := []string{"sgd", "adam", "nadam", "rmsprop"}
	if got, err := ParseOptimizers("SGD, adam", valid); err != nil || !reflect.DeepEqual(got, []string{"sgd", "adam"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "sgd,", "adamw", "sgd,sgd"} {
		if _, err := ParseOptimizers(bad, valid); !errors.Is(err, ErrInvalidSpace) {
			t.Errorf("ParseOptimizers(%q) error = %v, want ErrInvalidSpace", bad, err)
		}
	}
}

func TestGridCoversDefaultSpaceOnce(t *testing.T) {
	pts, err := DefaultSpace().Grid()
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 24 {
		t.Fatalf("default grid has %d points, want 24", len(pts))
	}
	seen := map[Point]bool{}
	for _, p := range pts {
		if seen[p] {
			t.Fatalf("grid repeats %v", p)
		}
		seen[p] = true
	}
	space := DefaultSpace()
	space.LR = Dim{Low: 1e-4, High: 0.3, Log: true}
	if _, err := space.Grid(); !errors.Is(err, ErrInvalidSpace) {
		t.Fatalf("grid over a range: error = %v, want ErrInvalidSpace", err)
	}
}

// TestEnqueuedPointIsSuggested checks that FixedParams produce exactly the
// point back through goptuna's enqueue mechanism, for choices and ranges.
func TestEnqueuedPointIsSuggested(t *testing.T) {
	ranged := DefaultSpace()
	ranged.LR = Dim{Low: 1e-4, High: 0.3, Log: true}
	ranged.Batch = Dim{Low: 64, High: 512, Step: 64}
	numeric := DefaultSpace()
	numeric.NumericChoices = true
	for name, tc := range map[string]struct {
		space Space
		point Point
	}{
		"choices": {DefaultSpace(), Point{LR: 0.01, Optimizer: "nadam", Batch: 256}},
		"ranges":  {ranged, Point{LR: 0.0123, Optimizer: "rmsprop", Batch: 192}},
		"numeric": {numeric, Point{LR: 0.1, Optimizer: "adam", Batch: 128}},
	} {
		t.Run(name, func(t *testing.T) {
			study, err := goptuna.CreateStudy("s", goptuna.StudyOptionSampler(goptuna.NewRandomSampler()))
			if err != nil {
				t.Fatal(err)
			}
			fixed, err := tc.space.FixedParams(tc.point)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := tc.space.PointFromFixed(fixed); err != nil || back != tc.point {
				t.Fatalf("PointFromFixed(FixedParams(p)) = %v, %v; want %v", back, err, tc.point)
			}
			if err := study.EnqueueTrial(fixed); err != nil {
				t.Fatal(err)
			}
			var got Point
			err = study.Optimize(func(tr goptuna.Trial) (float64, error) {
				got, err = tc.space.Suggest(&tr)
				return 0, err
			}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.point {
				t.Fatalf("suggested %v, want the enqueued %v", got, tc.point)
			}
			trials, _ := study.GetTrials()
			back, err := PointFromParams(trials[0].Params)
			if err != nil || back != tc.point {
				t.Fatalf("PointFromParams = %v, %v; want %v", back, err, tc.point)
			}
		})
	}
	if _, err := DefaultSpace().FixedParams(Point{LR: 0.5, Optimizer: "sgd", Batch: 128}); !errors.Is(err, ErrInvalidSpace) {
		t.Fatalf("point outside the space: error = %v", err)
	}
}

func TestFactories(t *testing.T) {
	for _, name := range SamplerNames {
		if s, err := NewSampler(name, 1); err != nil || s == nil {
			t.Errorf("NewSampler(%q) = %v, %v", name, s, err)
		}
	}
	for _, name := range PrunerNames {
		p, err := NewPruner(name, 10)
		if err != nil || (p == nil) != (name == "none") {
			t.Errorf("NewPruner(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := NewSampler("cmaes", 1); !errors.Is(err, ErrUnknownName) {
		t.Errorf("unknown sampler: %v", err)
	}
	if _, err := NewPruner("patient", 10); !errors.Is(err, ErrUnknownName) {
		t.Errorf("unknown pruner: %v", err)
	}
}

func TestHyperbandBrackets(t *testing.T) {
	h := NewHyperband(1, 10, 3)
	if len(h.budgets) != 3 {
		t.Fatalf("10 epochs with eta 3: %d brackets, want 3", len(h.budgets))
	}
	counts := make([]int, len(h.budgets))
	for n := 0; n < 17; n++ {
		counts[h.Bracket(n)]++
	}
	if !reflect.DeepEqual(counts, []int{9, 5, 3}) {
		t.Fatalf("bracket allocation over one cycle = %v, want Optuna's [9 5 3]", counts)
	}
	if len(NewHyperband(1, 1, 3).budgets) != 1 {
		t.Fatal("one epoch must give one bracket")
	}
}

// TestHyperbandPrunesWithinBracket runs trials in bracket 0 (first rung at
// step 1): after three trials reach the rung, a trial below the top third is
// pruned, while the best one goes on.
func TestHyperbandPrunesWithinBracket(t *testing.T) {
	h := NewHyperband(1, 9, 3)
	study, err := goptuna.CreateStudy("hb", goptuna.StudyOptionDirection(goptuna.StudyDirectionMaximize),
		goptuna.StudyOptionPruner(h), goptuna.StudyOptionSampler(goptuna.NewRandomSampler()))
	if err != nil {
		t.Fatal(err)
	}
	values := []float64{0.9, 0.8, 0.7, 0.6, 0.95}
	var pruned []bool
	for i, v := range values {
		if h.Bracket(i) != 0 {
			t.Fatalf("trial %d is in bracket %d; the test expects bracket 0", i, h.Bracket(i))
		}
		err := study.Optimize(func(tr goptuna.Trial) (float64, error) {
			err := tr.ShouldPrune(1, v)
			pruned = append(pruned, errors.Is(err, goptuna.ErrTrialPruned))
			return v, nil
		}, 1)
		if err != nil {
			t.Fatal(err)
		}
	}
	// 0.9 first (kept: best so far); 0.8 (2 values, keep best only): pruned;
	// 0.7 pruned; 0.6 pruned; 0.95 the best: kept.
	want := []bool{false, true, true, true, false}
	if !reflect.DeepEqual(pruned, want) {
		t.Fatalf("pruned = %v, want %v", pruned, want)
	}
}

func TestSeedGlobalRand(t *testing.T) {
	if err := SeedGlobalRand(7); err != nil {
		t.Fatal(err)
	}
	a := rand.Int63()
	if err := SeedGlobalRand(7); err != nil {
		t.Fatal(err)
	}
	if b := rand.Int63(); a != b {
		t.Fatal("seeding twice with the same seed gave different draws")
	}
}
