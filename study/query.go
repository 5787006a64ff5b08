package study

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// TrialInfo is one stored trial, in the terms a person asks about.
type TrialInfo struct {
	Number  int            `json:"number"`
	State   string         `json:"state"`
	Source  string         `json:"source"`
	Params  map[string]any `json:"params"`
	ValAcc  *float64       `json:"val_accuracy"`
	TestAcc *float64       `json:"test_accuracy"`
	Epochs  int            `json:"epochs"`
	// EpochsTrained counts the part done of an epoch a failed or
	// interrupted trial did not finish (Epochs counts finished ones).
	EpochsTrained float64    `json:"epochs_trained"`
	Seconds       float64    `json:"seconds"`
	Started       *time.Time `json:"started,omitempty"`
	Completed     *time.Time `json:"completed,omitempty"`
	FailReason    string     `json:"fail_reason,omitempty"`
	// PrunedReason says why fmtune stopped a pruned trial itself ("not
	// learning: ..."); empty when the pruner did.
	PrunedReason string              `json:"pruned_reason,omitempty"`
	Seed         *int64              `json:"seed,omitempty"`
	Worker       string              `json:"worker,omitempty"` // host:pid/goroutine that ran it
	Curve        []models.EpochStats `json:"curve,omitempty"`
	// Repeats summarises the trials of this configuration, in a study that
	// repeats each (Best only).
	Repeats *RepeatStats `json:"repeats,omitempty"`
	// Steps are the intermediate values by epoch (the validation accuracy
	// reported for pruning), stored as each epoch ends: a running trial has
	// them before its curve.
	Steps map[int]float64 `json:"-"`
}

// Info converts a goptuna trial.
func Info(t goptuna.FrozenTrial) TrialInfo {
	info := TrialInfo{
		Number:       t.Number,
		State:        stateName(t.State),
		Source:       t.SystemAttrs[AttrSource],
		Params:       t.Params,
		FailReason:   t.SystemAttrs[AttrFailReason],
		PrunedReason: t.UserAttrs["pruned_reason"],
		Worker:       t.SystemAttrs[AttrWorker],
		Steps:        t.IntermediateValues,
	}
	if info.Source == "" {
		info.Source = SourceSampled
	}
	if p, err := search.PointFromParams(t.Params); err == nil {
		// fmtune's parameters typed (older studies stored lr and batch as
		// strings); any others as stored.
		info.Params = make(map[string]any, len(t.Params))
		for k, v := range t.Params {
			info.Params[k] = v
		}
		info.Params[search.ParamLR], info.Params[search.ParamOptimizer], info.Params[search.ParamBatch] = p.LR, p.Optimizer, p.Batch
	}
	if t.State == goptuna.TrialStateComplete || (t.State == goptuna.TrialStatePruned && len(t.IntermediateValues) > 0) {
		v := t.Value
		info.ValAcc = &v
	}
	if v, err := strconv.ParseFloat(t.UserAttrs["test_accuracy"], 64); err == nil {
		info.TestAcc = &v
	}
	info.Epochs, _ = strconv.Atoi(t.UserAttrs["epochs"])
	info.Epochs = max(info.Epochs, len(t.IntermediateValues))
	info.EpochsTrained, _ = strconv.ParseFloat(t.UserAttrs["epochs_trained"], 64)
	info.EpochsTrained = max(info.EpochsTrained, float64(info.Epochs))
	info.Seconds, _ = strconv.ParseFloat(t.UserAttrs["seconds"], 64)
	if s, err := strconv.ParseInt(t.UserAttrs["seed"], 10, 64); err == nil {
		info.Seed = &s
	}
	if !t.DatetimeStart.IsZero() {
		ts := t.DatetimeStart
		info.Started = &ts
	}
	if !t.DatetimeComplete.IsZero() {
		tc := t.DatetimeComplete
		info.Completed = &tc
	}
	if c := t.UserAttrs["curve"]; c != "" {
		_ = json.Unmarshal([]byte(c), &info.Curve)
	}
	return info
}

func stateName(s goptuna.TrialState) string {
	switch s {
	case goptuna.TrialStateComplete:
		return "complete"
	case goptuna.TrialStatePruned:
		return "pruned"
	case goptuna.TrialStateFail:
		return "fail"
	case goptuna.TrialStateRunning:
		return "running"
	case goptuna.TrialStateWaiting:
		return "waiting"
	}
	return strings.ToLower(s.String())
}

// StateNames are the states `fmtune trials --state` accepts.
var StateNames = []string{"complete", "pruned", "fail", "running", "waiting"}

// Trials returns the trials of a study in number order, only those in state
// when state is not "".
func Trials(store goptuna.Storage, name, state string) ([]TrialInfo, error) {
	if state != "" && !contains(StateNames, state) {
		return nil, fmt.Errorf("%w: unknown state %q (valid: %s)", ErrInvalidSpec, state, strings.Join(StateNames, ", "))
	}
	trials, err := allTrials(store, name)
	if err != nil {
		return nil, err
	}
	// Waiting trials have no parameters yet: show the queued ones.
	var space *search.Space
	if id, err := store.GetStudyIDFromName(name); err == nil {
		if spec, ok, _ := readSpec(store, id); ok {
			space = &spec.Space
		}
	}
	var out []TrialInfo
	for _, t := range trials {
		info := Info(t)
		if t.State == goptuna.TrialStateWaiting && space != nil {
			var fixed map[string]float64
			if json.Unmarshal([]byte(t.SystemAttrs[attrFixed]), &fixed) == nil {
				if p, err := space.PointFromFixed(fixed); err == nil {
					info.Params = map[string]any{search.ParamLR: p.LR, search.ParamOptimizer: p.Optimizer, search.ParamBatch: p.Batch}
				}
			}
		}
		if state == "" || info.State == state {
			out = append(out, info)
		}
	}
	return out, nil
}

func allTrials(store goptuna.Storage, name string) ([]goptuna.FrozenTrial, error) {
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		_, nf := studyNotFound(store, name, err)
		return nil, nf
	}
	trials, err := store.GetAllTrials(id)
	if err != nil {
		return nil, fmt.Errorf("read trials of %q: %w", name, err)
	}
	sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
	return trials, nil
}

// ErrNoCompleteTrial is returned by Best for a study without a complete trial.
var ErrNoCompleteTrial = fmt.Errorf("no complete trial yet")

// Best returns the complete trial with the highest validation accuracy
// (the earliest one on a tie). NaN and Inf values never win. In a study
// that repeats each configuration (Spec.Repeats), the best configuration is
// the one with the highest mean over its repeats, and Best returns its best
// trial with the repeats' statistics.
func Best(store goptuna.Storage, name string) (TrialInfo, error) {
	trials, err := allTrials(store, name)
	if err != nil {
		return TrialInfo{}, err
	}
	if spec, ok, _ := readSpec(store, studyIDOf(store, name)); ok && spec.repeats() > 1 {
		infos := make([]TrialInfo, len(trials))
		byNumber := map[int]TrialInfo{}
		for i, t := range trials {
			infos[i] = Info(t)
			byNumber[t.Number] = infos[i]
		}
		if _, stats := bestByMean(repeatStats(infos)); stats != nil {
			best := byNumber[stats.Trials[0]]
			for _, n := range stats.Trials {
				if *byNumber[n].ValAcc > *best.ValAcc {
					best = byNumber[n]
				}
			}
			best.Repeats = stats
			return best, nil
		}
	}
	best := bestOf(trials)
	if best == nil {
		c := countTrials(trials)
		return TrialInfo{}, fmt.Errorf("study %q: %w (%d pruned, %d failed, %d running)", name, ErrNoCompleteTrial, c.Pruned, c.Fail, c.Running)
	}
	for _, t := range trials {
		if t.Number == best.Number {
			return Info(t), nil
		}
	}
	return TrialInfo{}, fmt.Errorf("study %q: best trial vanished", name)
}

// bestOf picks the best complete trial, or nil.
func bestOf(trials []goptuna.FrozenTrial) *TrialResult {
	var best *TrialResult
	for _, t := range trials {
		if t.State != goptuna.TrialStateComplete || math.IsNaN(t.Value) || math.IsInf(t.Value, 0) {
			continue
		}
		if best == nil || t.Value > best.Value || (t.Value == best.Value && t.Number < best.Number) {
			best = &TrialResult{Number: t.Number, Value: t.Value, State: t.State}
		}
	}
	return best
}

// StudyInfo summarises one study of a storage.
type StudyInfo struct {
	Name      string   `json:"name"`
	Arch      string   `json:"arch"`
	Sampler   string   `json:"sampler"`
	Pruner    string   `json:"pruner"`
	Target    int      `json:"target"`
	Complete  int      `json:"complete"`
	Pruned    int      `json:"pruned"`
	Fail      int      `json:"fail"`
	Running   int      `json:"running"`
	Waiting   int      `json:"waiting"`
	Best      *float64 `json:"best_val_accuracy"`
	BestTrial *int     `json:"best_trial"`
	Fmtune    bool     `json:"fmtune"` // false for a study another tool wrote
	// The models the storage keeps for the study, and their bytes.
	KeptModels     int `json:"kept_models"`
	KeptModelBytes int `json:"kept_model_bytes"`
}

// Studies lists every study in the storage, by name.
func Studies(store goptuna.Storage) ([]StudyInfo, error) {
	summaries, err := store.GetAllStudySummaries()
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	out := make([]StudyInfo, 0, len(summaries))
	for _, s := range summaries {
		info := StudyInfo{Name: s.Name}
		if text, ok := s.SystemAttrs[SpecAttr]; ok {
			if spec, err := UnmarshalSpec(text); err == nil {
				info.Fmtune = true
				info.Arch, info.Sampler, info.Pruner, info.Target = spec.Arch, spec.Sampler, spec.Pruner, spec.Target()
			}
		}
		trials, err := store.GetAllTrials(s.ID)
		if err != nil {
			return nil, fmt.Errorf("read trials of %q: %w", s.Name, err)
		}
		c := countTrials(trials)
		info.Complete, info.Pruned, info.Fail, info.Running, info.Waiting = c.Complete, c.Pruned, c.Fail, c.Running, c.Waiting
		if b := bestOf(trials); b != nil {
			v, n := b.Value, b.Number
			info.Best, info.BestTrial = &v, &n
		}
		if err := keptCost(store, s.ID, &info); err != nil {
			return nil, fmt.Errorf("read the kept models of %q: %w", s.Name, err)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// studyIDOf is the ID of the study called name, or -1.
func studyIDOf(store goptuna.Storage, name string) int {
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		return -1
	}
	return id
}
