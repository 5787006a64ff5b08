package search

// Orders of preference over a finite space, so that a study can take the
// best configuration it has not tried yet instead of repeating one.

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/tpe"
)

// TPEStartupTrials is the number of finished trials before which goptuna's
// TPE samples at random (its default, which NewSampler keeps).
const TPEStartupTrials = 10

// Finite reports whether every dimension of the space is a list of
// choices, so that its configurations can be listed (Grid) and exhausted.
func (s Space) Finite() bool { return !s.LR.IsRange() && !s.Batch.IsRange() }

// TPEOrder returns the points of the finite space s in the order goptuna's
// TPE prefers them after trials (of a study in direction dir), best first:
// by l(x)/g(x), the ratio of the densities of x among the best trials and
// among the others, which TPE computes per parameter (independently, for
// categorical parameters exactly as below) and whose largest value is its
// proposal. Ties keep the grid's order, as TPE's argmax keeps the first of
// the choices. ok is false while TPE still samples at random (fewer than
// TPEStartupTrials complete or pruned trials); the order is then the
// grid's.
func TPEOrder(s Space, trials []goptuna.FrozenTrial, dir goptuna.StudyDirection) (order []Point, ok bool) {
	grid, err := s.Grid()
	if err != nil {
		return nil, false
	}
	obs := observations(trials, dir)
	if len(obs) < TPEStartupTrials {
		return grid, false
	}
	lrScore := categoricalScores(obs, len(s.LR.Choices), func(p Point) int { return indexOf(s.LR.Choices, p.LR) })
	optScore := categoricalScores(obs, len(s.Optimizers), func(p Point) int { return indexOfString(s.Optimizers, p.Optimizer) })
	batchScore := categoricalScores(obs, len(s.Batch.Choices), func(p Point) int { return indexOf(s.Batch.Choices, float64(p.Batch)) })
	score := make(map[Point]float64, len(grid))
	for _, p := range grid {
		score[p] = lrScore[indexOf(s.LR.Choices, p.LR)] + optScore[indexOfString(s.Optimizers, p.Optimizer)] +
			batchScore[indexOf(s.Batch.Choices, float64(p.Batch))]
	}
	sort.SliceStable(grid, func(i, j int) bool { return score[grid[i]] > score[grid[j]] })
	return grid, true
}

// RandomOrder returns the points of the finite space s in a random order
// drawn from rng (the random sampler's: every order equally likely).
func RandomOrder(s Space, rng *rand.Rand) []Point {
	grid, err := s.Grid()
	if err != nil {
		return nil
	}
	rng.Shuffle(len(grid), func(i, j int) { grid[i], grid[j] = grid[j], grid[i] })
	return grid
}

// observation is a trial as TPE sees it: its point and its (loss-like)
// score pair, lower is better.
type observation struct {
	point Point
	score [2]float64
}

// observations are the complete and pruned trials with a point, scored as
// goptuna's TPE scores them: a complete trial by (-inf, its value), a
// pruned one by (-its last step, its value there), values negated when
// the study maximizes.
func observations(trials []goptuna.FrozenTrial, dir goptuna.StudyDirection) []observation {
	sign := 1.0
	if dir == goptuna.StudyDirectionMaximize {
		sign = -1
	}
	var obs []observation
	for _, t := range trials {
		if t.State != goptuna.TrialStateComplete && t.State != goptuna.TrialStatePruned {
			continue
		}
		p, err := PointFromParams(t.Params)
		if err != nil {
			continue
		}
		o := observation{point: p}
		switch {
		case t.State == goptuna.TrialStateComplete:
			o.score = [2]float64{math.Inf(-1), sign * t.Value}
		case len(t.IntermediateValues) > 0:
			step := -1
			for k := range t.IntermediateValues {
				step = max(step, k)
			}
			o.score = [2]float64{float64(-step), sign * t.IntermediateValues[step]}
		default:
			o.score = [2]float64{math.Inf(1), 0}
		}
		obs = append(obs, o)
	}
	return obs
}

// categoricalScores is log l(c) - log g(c) for each of n choices of one
// parameter (index gives a point's choice, or -1), computed as goptuna's
// TPE does for a categorical parameter: the best DefaultGamma(len(obs))
// observations are "below", the rest "above"; each side's weight of
// choice c is the prior weight 1 plus its bincount, normalised. (goptuna's
// bincount indexes its weights by the choice rather than by the
// observation; with fewer than 25 observations all weights are 1 and it
// makes no difference. It is reproduced, so that the best-scored point is
// always TPE's own proposal.)
func categoricalScores(obs []observation, n int, index func(Point) int) []float64 {
	order := make([]int, len(obs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		x, y := obs[order[a]].score, obs[order[b]].score
		if x[0] == y[0] {
			return x[1] < y[1]
		}
		return x[0] < y[0]
	})
	nBelow := tpe.DefaultGamma(len(obs))
	below, above := append([]int{}, order[:nBelow]...), append([]int{}, order[nBelow:]...)
	sort.Ints(below)
	sort.Ints(above)
	weights := func(side []int) []float64 {
		var idx []int
		for _, i := range side {
			if c := index(obs[i].point); c >= 0 {
				idx = append(idx, c)
			}
		}
		w := tpe.DefaultWeights(len(idx))
		counts := make([]float64, n)
		for _, c := range idx {
			if c < len(w) {
				counts[c] += w[c]
			} else {
				counts[c]++
			}
		}
		var sum float64
		for c := range counts {
			counts[c]++ // the prior
			sum += counts[c]
		}
		for c := range counts {
			counts[c] = math.Log(counts[c] / sum)
		}
		return counts
	}
	l, g := weights(below), weights(above)
	out := make([]float64, n)
	for c := range out {
		out[c] = l[c] - g[c]
	}
	return out
}

func indexOfString(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
