package study

import (
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
)

// Kinds of trial source that Compare sets side by side. Grid and retry
// trials count as sampled: the engine chose them, not a person.
const (
	KindManual  = SourceManual
	KindSampled = SourceSampled
)

// SourceKind maps a trial's source to KindManual or KindSampled.
func SourceKind(source string) string {
	if source == SourceManual {
		return KindManual
	}
	return KindSampled
}

// SourceSummary is what one kind of source (manual or sampled) achieved in
// one study: how many trials, how much compute, and its best trial.
type SourceSummary struct {
	Study    string `json:"study"`
	Source   string `json:"source"` // KindManual or KindSampled
	Trials   int    `json:"trials"`
	Complete int    `json:"complete"`
	Pruned   int    `json:"pruned"`
	Fail     int    `json:"fail"`
	Running  int    `json:"running"`
	Waiting  int    `json:"waiting"`
	// Retry counts the trials among Trials that retried an interrupted or
	// crashed one, Grid those of a grid (both are sampled: the engine chose
	// them).
	Retry int `json:"retry"`
	Grid  int `json:"grid"`
	// Epochs is the number of epochs trained, summed over the trials,
	// with the part done of those a failure or an interruption cut short.
	Epochs float64 `json:"epochs"`
	// Seconds is the compute time, summed over the trials (see TrialSeconds).
	Seconds float64 `json:"compute_seconds"`
	// Best is the complete trial with the highest validation accuracy, or
	// nil when this source has no complete trial.
	Best *SourceBest `json:"best"`
}

// SourceBest is the best trial of one source.
type SourceBest struct {
	Trial     int      `json:"trial"`
	ValAcc    float64  `json:"val_accuracy"`
	TestAcc   *float64 `json:"test_accuracy"`
	LR        float64  `json:"lr"`
	Optimizer string   `json:"optimizer"`
	Batch     int      `json:"batch"`
	// SecondsToBest is the compute time of this source's finished trials, in
	// the order they finished, up to and including the best one.
	SecondsToBest float64 `json:"seconds_to_best"`
	// OverfitGap is validation loss minus training loss in the best trial's last epoch
	// (nil without a stored learning curve). A large positive gap means the
	// model fits the training data much better than unseen data.
	OverfitGap *float64 `json:"overfit_gap"`
	TrainLoss  *float64 `json:"final_train_loss"`
	ValLoss    *float64 `json:"final_val_loss"`
	// Repeats, when this source trained some configuration more than once
	// (--repeats), summarises the best configuration's trials: the best
	// configuration is then the one with the highest mean, and Trial its
	// best trial.
	Repeats *RepeatStats `json:"repeats,omitempty"`
}

// Compare summarises each study in names per kind of source: the manual
// trials first, then the sampled ones (grid and retry included). Both kinds
// are always present, with zero trials where a study has none. An unknown
// study is the error of Trials.
func Compare(store goptuna.Storage, names []string) ([]SourceSummary, error) {
	var out []SourceSummary
	for _, name := range names {
		trials, err := Trials(store, name, "")
		if err != nil {
			return nil, err
		}
		out = append(out, CompareTrials(name, trials)...)
	}
	return out, nil
}

// CompareTrials is Compare for the trials of one study, as Trials returns them.
func CompareTrials(name string, trials []TrialInfo) []SourceSummary {
	out := make([]SourceSummary, 0, 2)
	for _, kind := range []string{KindManual, KindSampled} {
		var mine []TrialInfo
		for _, t := range trials {
			if SourceKind(t.Source) == kind {
				mine = append(mine, t)
			}
		}
		out = append(out, summarise(name, kind, mine))
	}
	return out
}

func summarise(name, kind string, trials []TrialInfo) SourceSummary {
	s := SourceSummary{Study: name, Source: kind, Trials: len(trials)}
	var best *TrialInfo
	for i, t := range trials {
		switch t.State {
		case "complete":
			s.Complete++
			if v := *t.ValAcc; !math.IsNaN(v) && !math.IsInf(v, 0) && (best == nil || v > *best.ValAcc) {
				best = &trials[i]
			}
		case "pruned":
			s.Pruned++
		case "fail":
			s.Fail++
		case "running":
			s.Running++
		case "waiting":
			s.Waiting++
		}
		switch t.Source {
		case SourceRetry:
			s.Retry++
		case SourceGrid:
			s.Grid++
		}
		s.Epochs += max(t.EpochsTrained, float64(t.Epochs))
		s.Seconds += TrialSeconds(t)
	}
	if best == nil {
		return s
	}
	// Repeats (--repeats) are sampled trials of one configuration; a person
	// who trains a configuration again (for more epochs, say) is not
	// repeating it.
	var repeats *RepeatStats
	if stats := repeatStats(trials); kind == KindSampled && maxN(stats) > 1 {
		_, repeats = bestByMean(stats)
		best = nil
		for i, t := range trials {
			if slices.Contains(repeats.Trials, t.Number) && (best == nil || *t.ValAcc > *best.ValAcc) {
				best = &trials[i]
			}
		}
		if repeats.N < 2 {
			repeats = nil // a configuration without repeats: its trial says it all
		}
	}
	b := &SourceBest{Trial: best.Number, ValAcc: *best.ValAcc, TestAcc: best.TestAcc, Repeats: repeats}
	if p, err := search.PointFromParams(best.Params); err == nil {
		b.LR, b.Optimizer, b.Batch = p.LR, p.Optimizer, p.Batch
	}
	for _, t := range CompletionOrder(trials) {
		b.SecondsToBest += TrialSeconds(t)
		if t.Number == best.Number {
			break
		}
	}
	if n := len(best.Curve); n > 0 {
		last := best.Curve[n-1]
		gap := last.ValLoss - last.TrainLoss
		b.OverfitGap, b.TrainLoss, b.ValLoss = &gap, &last.TrainLoss, &last.ValLoss
	}
	s.Best = b
	return s
}

// FormatEpochs writes a number of epochs: whole, or to one decimal when a
// trial cut short makes it fractional.
func FormatEpochs(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// TrialSeconds is the compute time of a trial: its stored seconds, or for a
// trial that stored none (a failed one) the sum of its epochs' seconds.
func TrialSeconds(t TrialInfo) float64 {
	if t.Seconds > 0 {
		return t.Seconds
	}
	var s float64
	for _, e := range t.Curve {
		s += e.Seconds
	}
	return s
}

// CompletionOrder returns the finished trials (those with a completion
// time) in the order they finished, by number on a tie.
func CompletionOrder(trials []TrialInfo) []TrialInfo {
	var done []TrialInfo
	for _, t := range trials {
		if t.Completed != nil {
			done = append(done, t)
		}
	}
	sort.SliceStable(done, func(i, j int) bool {
		a, b := *done[i].Completed, *done[j].Completed
		if !a.Equal(b) {
			return a.Before(b)
		}
		return done[i].Number < done[j].Number
	})
	return done
}
