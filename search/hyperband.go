package search

import (
	"math"
	"sort"
	"strconv"

	"github.com/c-bata/goptuna"
)

// Hyperband is Optuna's HyperbandPruner on goptuna: several successive-halving
// brackets with growing minimum early-stopping rates; each trial belongs to
// one bracket (by its number, weighted by the bracket's budget) and competes
// only with trials of its own bracket.
type Hyperband struct {
	minResource, reduction int
	budgets                []int // trials allotted to each bracket per cycle
}

var _ goptuna.Pruner = (*Hyperband)(nil)

// NewHyperband returns a Hyperband pruner for trials of up to maxResource
// steps, halving by reduction from minResource.
func NewHyperband(minResource, maxResource, reduction int) *Hyperband {
	n := 1
	if maxResource > minResource {
		n = int(math.Floor(math.Log(float64(maxResource)/float64(minResource))/math.Log(float64(reduction)))) + 1
	}
	h := &Hyperband{minResource: minResource, reduction: reduction}
	for s := 0; s < n; s++ {
		// Optuna's allocation: brackets that stop early get more trials.
		b := math.Ceil(float64(n) * math.Pow(float64(reduction), float64(n-1-s)) / float64(n-s))
		h.budgets = append(h.budgets, int(b))
	}
	return h
}

// Bracket returns the bracket of the trial with this number.
func (h *Hyperband) Bracket(trialNumber int) int {
	total := 0
	for _, b := range h.budgets {
		total += b
	}
	k := trialNumber % total
	for s, b := range h.budgets {
		if k < b {
			return s
		}
		k -= b
	}
	return len(h.budgets) - 1
}

func rungKey(rung int) string { return "fmtune:hyperband_rung_" + strconv.Itoa(rung) }

// Prune applies successive halving within the trial's bracket.
func (h *Hyperband) Prune(study *goptuna.Study, trial goptuna.FrozenTrial) (bool, error) {
	step, ok := trial.GetLatestStep()
	if !ok {
		return false, nil
	}
	value := trial.IntermediateValues[step]
	bracket := h.Bracket(trial.Number)
	rung := 0
	for {
		if _, done := trial.SystemAttrs[rungKey(rung)]; !done {
			break
		}
		rung++
	}
	var all []goptuna.FrozenTrial
	for {
		promotion := h.minResource * int(math.Pow(float64(h.reduction), float64(bracket+rung)))
		if step < promotion {
			return false, nil
		}
		if all == nil {
			var err error
			if all, err = study.GetTrials(); err != nil {
				return false, err
			}
		}
		key := rungKey(rung)
		if err := study.Storage.SetTrialSystemAttr(trial.ID, key, strconv.FormatFloat(value, 'g', -1, 64)); err != nil {
			return false, err
		}
		competing := []float64{value}
		for _, t := range all {
			if t.ID == trial.ID || h.Bracket(t.Number) != bracket {
				continue
			}
			if s, ok := t.SystemAttrs[key]; ok {
				if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) {
					competing = append(competing, v)
				}
			}
		}
		if !h.promotable(value, competing, study.Direction()) {
			return true, nil
		}
		rung++
	}
}

// promotable reports whether value is in the top 1/reduction of competing
// (at least the best one when fewer than reduction trials reached the rung).
func (h *Hyperband) promotable(value float64, competing []float64, dir goptuna.StudyDirection) bool {
	if dir == goptuna.StudyDirectionMaximize {
		sort.Sort(sort.Reverse(sort.Float64Slice(competing)))
	} else {
		sort.Float64s(competing)
	}
	idx := max(len(competing)/h.reduction-1, 0)
	if dir == goptuna.StudyDirectionMaximize {
		return value >= competing[idx]
	}
	return value <= competing[idx]
}
