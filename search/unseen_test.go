package search

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/tpe"
)

// studyWithTrials fills an in-memory study with n trials of random points
// of s (complete, or pruned after a few epochs) whose value depends on the
// point, plus noise.
func studyWithTrials(t *testing.T, s Space, n int, seed uint64) *goptuna.Study {
	t.Helper()
	study, err := goptuna.CreateStudy("unseen", goptuna.StudyOptionStorage(goptuna.NewInMemoryStorage()),
		goptuna.StudyOptionSampler(goptuna.NewRandomSampler(goptuna.RandomSamplerOptionSeed(int64(seed)))),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMaximize), goptuna.StudyOptionLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < n; i++ {
		id, err := study.Storage.CreateNewTrial(study.ID)
		if err != nil {
			t.Fatal(err)
		}
		tr := goptuna.Trial{Study: study, ID: id}
		p, err := s.Suggest(&tr)
		if err != nil {
			t.Fatal(err)
		}
		v := 0.5 + 0.1*math.Log10(p.LR) + 0.05*float64(indexOfString(s.Optimizers, p.Optimizer)) + 0.1*rng.Float64()
		if rng.IntN(4) == 0 { // pruned at epoch 1..3
			for e := 1; e <= 1+rng.IntN(3); e++ {
				if err := study.Storage.SetTrialIntermediateValue(id, e, v-0.1/float64(e)); err != nil {
					t.Fatal(err)
				}
			}
			if err := study.Storage.SetTrialState(id, goptuna.TrialStatePruned); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := study.Storage.SetTrialValue(id, v); err != nil {
			t.Fatal(err)
		}
		if err := study.Storage.SetTrialState(id, goptuna.TrialStateComplete); err != nil {
			t.Fatal(err)
		}
	}
	return study
}

// TestTPEOrderStartsWithTPEsProposal: the point TPEOrder prefers is the one
// goptuna's TPE proposes for the same trials, parameter by parameter, with
// few trials and with more than 25 (where goptuna's weights ramp).
func TestTPEOrderStartsWithTPEsProposal(t *testing.T) {
	s := DefaultSpace()
	for _, n := range []int{5, 12, 24, 40, 80} {
		for seed := uint64(1); seed <= 5; seed++ {
			study := studyWithTrials(t, s, n, seed)
			trials, err := study.GetTrials()
			if err != nil {
				t.Fatal(err)
			}
			order, ok := TPEOrder(s, trials, study.Direction())
			if ok != (n >= TPEStartupTrials) {
				t.Fatalf("n=%d: TPEOrder ok=%v", n, ok)
			}
			grid, _ := s.Grid()
			if len(order) != len(grid) {
				t.Fatalf("n=%d: %d points ordered, want %d", n, len(order), len(grid))
			}
			if !ok {
				continue
			}
			sampler := tpe.NewSampler()
			var want Point
			for _, name := range []string{ParamLR, ParamOptimizer, ParamBatch} {
				dist := trials[0].Distributions[name]
				v, err := sampler.Sample(study, goptuna.FrozenTrial{}, name, dist)
				if err != nil {
					t.Fatal(err)
				}
				ext, err := goptuna.ToExternalRepresentation(dist, v)
				if err != nil {
					t.Fatal(err)
				}
				p, err := PointFromParams(map[string]interface{}{ParamLR: "1", ParamOptimizer: "x", ParamBatch: "1", name: ext})
				if err != nil {
					t.Fatal(err)
				}
				switch name {
				case ParamLR:
					want.LR = p.LR
				case ParamOptimizer:
					want.Optimizer = p.Optimizer
				case ParamBatch:
					want.Batch = p.Batch
				}
			}
			if order[0] != want {
				t.Errorf("n=%d seed=%d: TPEOrder prefers %s, goptuna's TPE proposes %s", n, seed, order[0], want)
			}
		}
	}
}

// TestRandomOrderIsAPermutation: every point once, in an order that depends
// on the generator.
func TestRandomOrderIsAPermutation(t *testing.T) {
	s := DefaultSpace()
	a := RandomOrder(s, rand.New(rand.NewPCG(1, 2)))
	b := RandomOrder(s, rand.New(rand.NewPCG(3, 4)))
	grid, _ := s.Grid()
	seen := map[Point]bool{}
	for _, p := range a {
		seen[p] = true
	}
	if len(a) != len(grid) || len(seen) != len(grid) {
		t.Fatalf("%d points, %d distinct, want %d", len(a), len(seen), len(grid))
	}
	same := true
	for i := range a {
		same = same && a[i] == b[i]
	}
	if same {
		t.Error("two generators gave the same order")
	}
}
