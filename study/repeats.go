package study

// Repeats: a study that trains each configuration with several seeds is
// judged by the mean over them.

import (
	"math"
	"sort"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
)

// RepeatStats summarise the complete trials of one configuration: their
// validation accuracy's mean and sample standard deviation (0 for one
// trial), the same of their test accuracy, and which trials they are.
type RepeatStats struct {
	N        int     `json:"n"`
	Mean     float64 `json:"mean"`
	Std      float64 `json:"std"`
	TestMean float64 `json:"test_mean"`
	TestStd  float64 `json:"test_std"`
	Trials   []int   `json:"trials"`
}

// meanStd is the mean and sample standard deviation of v.
func meanStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// repeatStats groups the complete trials (finite values) by configuration.
func repeatStats(trials []TrialInfo) map[search.Point]*RepeatStats {
	vals := map[search.Point][]float64{}
	tests := map[search.Point][]float64{}
	nums := map[search.Point][]int{}
	for _, t := range trials {
		if t.State != stateName(goptuna.TrialStateComplete) || t.ValAcc == nil || math.IsNaN(*t.ValAcc) || math.IsInf(*t.ValAcc, 0) {
			continue
		}
		p, err := search.PointFromParams(t.Params)
		if err != nil {
			continue
		}
		vals[p] = append(vals[p], *t.ValAcc)
		nums[p] = append(nums[p], t.Number)
		if t.TestAcc != nil {
			tests[p] = append(tests[p], *t.TestAcc)
		}
	}
	out := map[search.Point]*RepeatStats{}
	for p, v := range vals {
		s := &RepeatStats{N: len(v), Trials: nums[p]}
		s.Mean, s.Std = meanStd(v)
		if len(tests[p]) > 0 {
			s.TestMean, s.TestStd = meanStd(tests[p])
		}
		sort.Ints(s.Trials)
		out[p] = s
	}
	return out
}

// bestByMean is the configuration with the highest mean validation
// accuracy (ties: the one whose first trial is earliest), and its stats.
func bestByMean(stats map[search.Point]*RepeatStats) (search.Point, *RepeatStats) {
	var best search.Point
	var bs *RepeatStats
	for p, s := range stats {
		if bs == nil || s.Mean > bs.Mean || (s.Mean == bs.Mean && s.Trials[0] < bs.Trials[0]) {
			best, bs = p, s
		}
	}
	return best, bs
}

// maxN is the most complete trials of one configuration.
func maxN(stats map[search.Point]*RepeatStats) int {
	n := 0
	for _, s := range stats {
		n = max(n, s.N)
	}
	return n
}
