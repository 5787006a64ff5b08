package study

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// ImportanceMethod says in one line how Importance ranks the parameters,
// for whoever reads the ranking.
const ImportanceMethod = "functional ANOVA main effects of an additive model fitted to the complete trials " +
	"(each parameter's share of the variance explained, summing to 1)"

// ParamImportance is one parameter's share of the objective's variance.
type ParamImportance struct {
	Param      string  `json:"param"`
	Importance float64 `json:"importance"` // in [0, 1]; the parameters' shares sum to 1
	// Levels are the values (or, for a parameter with many values, the
	// ranges) the effect was estimated on, with the effect of each.
	Levels []Level `json:"levels"`
}

// Level is one value (or range of values) of a parameter and its main
// effect: how far the objective moves from the mean there.
type Level struct {
	Label  string  `json:"label"`
	Trials int     `json:"trials"`
	Effect float64 `json:"effect"`
}

// maxLevels is how many levels a numeric parameter keeps as they are; one
// with more distinct values is cut into that many ranges of equal counts.
const maxLevels = 6

// Importance ranks the parameters of the complete trials by their main
// effect on the validation accuracy, most important first; nil with fewer
// than 3 complete trials.
//
// The method is a functional ANOVA restricted to main effects: the
// accuracy is modelled as a mean plus one function of each parameter
// (piecewise constant over its levels), fitted by backfitting (least
// squares, so that a sampler that tried good values of one parameter more
// often with good values of another does not credit the wrong one), and a
// parameter's importance is the variance of its function over its levels,
// each level weighted alike as fANOVA's marginals over the search space
// are, divided by the sum over the parameters. It needs no random forest,
// is deterministic and cheap enough to redraw every second; on a full grid
// it is exactly fANOVA's main effects of the measured table. Interactions
// are left out.
func Importance(trials []TrialInfo) []ParamImportance {
	var ys []float64
	var rows []map[string]any
	names := map[string]bool{}
	for _, t := range trials {
		if t.State != "complete" || t.ValAcc == nil || math.IsNaN(*t.ValAcc) || math.IsInf(*t.ValAcc, 0) {
			continue
		}
		ys = append(ys, *t.ValAcc)
		rows = append(rows, t.Params)
		for k := range t.Params {
			names[k] = true
		}
	}
	if len(ys) < 3 || len(names) == 0 {
		return nil
	}
	type factor struct {
		name   string
		labels []string
		level  []int // per trial; -1: the trial lacks the parameter
		effect []float64
		count  []int
	}
	var factors []*factor
	for name := range names {
		labels, level := levels(name, rows)
		if len(labels) < 2 {
			continue // one value: no effect to measure
		}
		f := &factor{name: name, labels: labels, level: level, effect: make([]float64, len(labels)), count: make([]int, len(labels))}
		for _, l := range level {
			if l >= 0 {
				f.count[l]++
			}
		}
		factors = append(factors, f)
	}
	if len(factors) == 0 {
		return nil
	}
	sort.Slice(factors, func(i, j int) bool { return factors[i].name < factors[j].name })

	mean := 0.0
	for _, y := range ys {
		mean += y
	}
	mean /= float64(len(ys))
	// Backfitting: each function in turn becomes the mean residual of its
	// levels, centred, until nothing moves.
	resid := make([]float64, len(ys))
	for iter := 0; iter < 200; iter++ {
		change := 0.0
		for _, f := range factors {
			for i := range ys {
				resid[i] = ys[i] - mean
				for _, g := range factors {
					if g != f && g.level[i] >= 0 {
						resid[i] -= g.effect[g.level[i]]
					}
				}
			}
			sum := make([]float64, len(f.labels))
			for i, l := range f.level {
				if l >= 0 {
					sum[l] += resid[i]
				}
			}
			centre := 0.0
			for l := range sum {
				sum[l] /= float64(f.count[l])
				centre += sum[l] * float64(f.count[l])
			}
			centre /= float64(len(ys))
			for l := range sum {
				v := sum[l] - centre
				change = math.Max(change, math.Abs(v-f.effect[l]))
				f.effect[l] = v
			}
		}
		if change < 1e-12 {
			break
		}
	}

	out := make([]ParamImportance, 0, len(factors))
	total := 0.0
	for _, f := range factors {
		// The variance of the effect over the levels, each weighted alike.
		m := 0.0
		for _, e := range f.effect {
			m += e
		}
		m /= float64(len(f.effect))
		v := 0.0
		p := ParamImportance{Param: f.name}
		for l, e := range f.effect {
			v += (e - m) * (e - m)
			p.Levels = append(p.Levels, Level{Label: f.labels[l], Trials: f.count[l], Effect: e})
		}
		p.Importance = v / float64(len(f.effect))
		total += p.Importance
		out = append(out, p)
	}
	for i := range out {
		if total > 0 {
			out[i].Importance /= total
		} else {
			out[i].Importance = 1 / float64(len(out))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Importance > out[j].Importance })
	return out
}

// levels gives the levels of parameter name over rows: each distinct value
// of a string or of a number with few values; otherwise maxLevels ranges
// holding about as many distinct values each, each range from its lower
// bound (included) to the next one.
func levels(name string, rows []map[string]any) (labels []string, level []int) {
	level = make([]int, len(rows))
	nums := make([]float64, len(rows))
	numeric := true
	for i, r := range rows {
		v, ok := r[name]
		if !ok {
			level[i] = -1
			continue
		}
		f, isNum := toFloat(v)
		if !isNum {
			numeric = false
		}
		nums[i] = f
	}
	if !numeric {
		index := map[string]int{}
		for i, r := range rows {
			if level[i] < 0 {
				continue
			}
			s := fmt.Sprint(r[name])
			if _, ok := index[s]; !ok {
				index[s] = len(labels)
				labels = append(labels, s)
			}
		}
		sort.Strings(labels)
		for i, l := range labels {
			index[l] = i
		}
		for i, r := range rows {
			if level[i] >= 0 {
				level[i] = index[fmt.Sprint(r[name])]
			}
		}
		return labels, level
	}
	var distinct []float64
	seen := map[float64]bool{}
	for i, f := range nums {
		if level[i] >= 0 && !seen[f] {
			seen[f] = true
			distinct = append(distinct, f)
		}
	}
	sort.Float64s(distinct)
	if len(distinct) <= maxLevels {
		for _, f := range distinct {
			labels = append(labels, strconv.FormatFloat(f, 'g', 4, 64))
		}
		for i, f := range nums {
			if level[i] >= 0 {
				level[i] = sort.SearchFloat64s(distinct, f)
			}
		}
		return labels, level
	}
	// Equal-count ranges: cut points at quantiles of the distinct values.
	var cuts []float64 // upper bounds of all ranges but the last
	for k := 1; k < maxLevels; k++ {
		cuts = append(cuts, distinct[k*len(distinct)/maxLevels])
	}
	lo := distinct[0]
	for k := 0; k <= len(cuts); k++ {
		hi := distinct[len(distinct)-1]
		if k < len(cuts) {
			hi = cuts[k]
		}
		labels = append(labels, fmt.Sprintf("%s–%s", strconv.FormatFloat(lo, 'g', 3, 64), strconv.FormatFloat(hi, 'g', 3, 64)))
		lo = hi
	}
	for i, f := range nums {
		if level[i] >= 0 {
			level[i] = sort.SearchFloat64s(cuts, f)
			if level[i] < len(cuts) && f == cuts[level[i]] {
				level[i]++
			}
		}
	}
	return labels, level
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}
