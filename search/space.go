// Package search defines what a study searches over and how: the search
// space (learning rate, optimizer, batch size as choices or ranges), its grid,
// and the samplers and pruners chosen by name. It knows goptuna, not models
// or storage.
package search

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/numchoice"
)

// ErrInvalidSpace marks a search space the user wrote wrongly.
var ErrInvalidSpace = errors.New("invalid search space")

// Parameter names as stored in trials (Optuna's trial_params.param_name).
const (
	ParamLR        = "lr"
	ParamOptimizer = "optimizer"
	ParamBatch     = "batch"
)

// Dim is one numeric dimension: either a list of choices or a range.
type Dim struct {
	Choices []float64 `json:"choices,omitempty"`
	Low     float64   `json:"low,omitempty"`
	High    float64   `json:"high,omitempty"`
	Log     bool      `json:"log,omitempty"`
	Step    int       `json:"step,omitempty"` // integer ranges only; 0 means 1
}

// IsRange reports whether d is a continuous (or integer) range rather than choices.
func (d Dim) IsRange() bool { return len(d.Choices) == 0 }

// values are the choices, or the two ends of a range.
func (d Dim) values() []float64 {
	if d.IsRange() {
		return []float64{d.Low, d.High}
	}
	return d.Choices
}

// String gives d back in the form the flags accept.
func (d Dim) String() string {
	if !d.IsRange() {
		parts := make([]string, len(d.Choices))
		for i, c := range d.Choices {
			parts[i] = formatFloat(c)
		}
		return strings.Join(parts, ",")
	}
	s := formatFloat(d.Low) + ":" + formatFloat(d.High)
	if d.Log {
		s += ":log"
	}
	if d.Step > 1 {
		s += ":" + strconv.Itoa(d.Step)
	}
	return s
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// ParseFloatDim parses a learning-rate style dimension: "0.001,0.01,0.1"
// (choices) or "1e-4:0.3" / "1e-4:0.3:log" (range). Every value must be > 0.
func ParseFloatDim(name, s string) (Dim, error) {
	d, err := parseDim(name, s, false)
	if err != nil {
		return Dim{}, err
	}
	for _, v := range d.values() {
		if v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return Dim{}, fmt.Errorf("%w: --%s %q: every value must be a finite number > 0", ErrInvalidSpace, name, s)
		}
	}
	return d, nil
}

// ParseIntDim parses a batch-size style dimension: "128,256" (choices),
// "64:512" or "64:512:64" (integer range with an optional step). Values must be
// whole numbers >= 1.
func ParseIntDim(name, s string) (Dim, error) {
	d, err := parseDim(name, s, true)
	if err != nil {
		return Dim{}, err
	}
	for _, v := range d.values() {
		if v < 1 || v != math.Trunc(v) {
			return Dim{}, fmt.Errorf("%w: --%s %q: every value must be a whole number >= 1", ErrInvalidSpace, name, s)
		}
	}
	return d, nil
}

func parseDim(name, s string, integer bool) (Dim, error) {
	s = strings.TrimSpace(s)
	example := "0.001,0.01,0.1 or 1e-4:0.3:log"
	if integer {
		example = "128,256 or 64:512:64"
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: --%s %q: %s (write choices or a range, e.g. %s)", ErrInvalidSpace, name, s, why, example)
	}
	if s == "" {
		return Dim{}, bad("empty")
	}
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			return Dim{}, bad("a range has at most three parts")
		}
		low, err1 := strconv.ParseFloat(strings.TrimSpace(parts[0]), 64)
		high, err2 := strconv.ParseFloat(strings.TrimSpace(parts[1]), 64)
		if err1 != nil || err2 != nil {
			return Dim{}, bad("range ends must be numbers")
		}
		d := Dim{Low: low, High: high}
		if len(parts) == 3 {
			opt := strings.TrimSpace(parts[2])
			switch {
			case opt == "log":
				d.Log = true
			case integer:
				step, err := strconv.Atoi(opt)
				if err != nil || step < 1 {
					return Dim{}, bad("the third part must be a step >= 1 or \"log\"")
				}
				d.Step = step
			default:
				return Dim{}, bad("the third part may only be \"log\"")
			}
		}
		if !(low < high) {
			return Dim{}, bad("the low end must be below the high end")
		}
		return d, nil
	}
	var d Dim
	seen := map[float64]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return Dim{}, bad("empty choice")
		}
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return Dim{}, bad(fmt.Sprintf("%q is not a number", p))
		}
		if seen[v] {
			return Dim{}, bad(fmt.Sprintf("%q is listed twice", p))
		}
		seen[v] = true
		d.Choices = append(d.Choices, v)
	}
	return d, nil
}

// Space is the whole search space of a study.
type Space struct {
	LR         Dim      `json:"lr"`
	Optimizers []string `json:"optimizers"`
	Batch      Dim      `json:"batch"`
	// NumericChoices stores lr and batch choices as numeric categorical
	// choices (Optuna reads 0.01 and 128); false stores them as strings, as
	// studies created before it did. A study keeps the way it was created.
	NumericChoices bool `json:"numeric_choices,omitempty"`
}

// DefaultSpace is 3 learning rates x 4 optimizers x 2 batch sizes.
func DefaultSpace() Space {
	return Space{
		LR:         Dim{Choices: []float64{0.001, 0.01, 0.1}},
		Optimizers: []string{"sgd", "adam", "nadam", "rmsprop"},
		Batch:      Dim{Choices: []float64{128, 256}},
	}
}

// ParseOptimizers parses "sgd,adam": a non-empty list without repeats, each
// one of valid.
func ParseOptimizers(s string, valid []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			return nil, fmt.Errorf("%w: --optimizers %q: empty choice (valid: %s)", ErrInvalidSpace, s, strings.Join(valid, ", "))
		}
		if !contains(valid, p) {
			return nil, fmt.Errorf("%w: --optimizers: unknown optimizer %q (valid: %s)", ErrInvalidSpace, p, strings.Join(valid, ", "))
		}
		if seen[p] {
			return nil, fmt.Errorf("%w: --optimizers: %q is listed twice", ErrInvalidSpace, p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Point is one configuration drawn from a Space.
type Point struct {
	LR        float64 `json:"lr"`
	Optimizer string  `json:"optimizer"`
	Batch     int     `json:"batch"`
}

func (p Point) String() string {
	return fmt.Sprintf("lr=%s optimizer=%s batch=%d", formatFloat(p.LR), p.Optimizer, p.Batch)
}

// Suggester is the part of a goptuna trial that proposes parameter values.
type Suggester interface {
	SuggestCategorical(name string, choices []string) (string, error)
	SuggestLogFloat(name string, low, high float64) (float64, error)
	SuggestFloat(name string, low, high float64) (float64, error)
	SuggestStepInt(name string, low, high, step int) (int, error)
}

var _ Suggester = (*goptuna.Trial)(nil)

// Suggest asks t for one point of the space. Choices become categorical
// parameters (so samplers treat 0.001 and 0.1 as distinct options), ranges
// become float (log or linear) or stepped int parameters.
func (s Space) Suggest(t Suggester) (Point, error) {
	var p Point
	var err error
	if p.LR, err = s.suggestFloat(t, ParamLR, s.LR); err != nil {
		return Point{}, err
	}
	if p.Optimizer, err = t.SuggestCategorical(ParamOptimizer, s.Optimizers); err != nil {
		return Point{}, fmt.Errorf("suggest %s: %w", ParamOptimizer, err)
	}
	var batch float64
	if s.Batch.IsRange() {
		step := max(s.Batch.Step, 1)
		var b int
		b, err = t.SuggestStepInt(ParamBatch, int(s.Batch.Low), int(s.Batch.High), step)
		batch = float64(b)
	} else {
		batch, err = s.suggestChoice(t, ParamBatch, s.Batch.Choices, true)
	}
	if err != nil {
		return Point{}, fmt.Errorf("suggest %s: %w", ParamBatch, err)
	}
	p.Batch = int(batch)
	return p, nil
}

func (s Space) suggestFloat(t Suggester, name string, d Dim) (float64, error) {
	if !d.IsRange() {
		return s.suggestChoice(t, name, d.Choices, false)
	}
	var v float64
	var err error
	if d.Log {
		v, err = t.SuggestLogFloat(name, d.Low, d.High)
	} else {
		v, err = t.SuggestFloat(name, d.Low, d.High)
	}
	if err != nil {
		return 0, fmt.Errorf("suggest %s: %w", name, err)
	}
	return v, nil
}

// suggestChoice suggests one of choices as a categorical parameter: numeric
// choices (ints when integer) or, in a study stored the old way, strings.
func (s Space) suggestChoice(t Suggester, name string, choices []float64, integer bool) (float64, error) {
	labels := make([]string, len(choices))
	for i, c := range choices {
		switch {
		case !s.NumericChoices:
			labels[i] = formatFloat(c)
		case integer:
			labels[i] = numchoice.Int(int(c))
		default:
			labels[i] = numchoice.Float(c)
		}
	}
	label, err := t.SuggestCategorical(name, labels)
	if err != nil {
		return 0, fmt.Errorf("suggest %s: %w", name, err)
	}
	if v, ok := numchoice.Value(label); ok {
		return v, nil
	}
	return strconv.ParseFloat(label, 64)
}

// Grid lists every point of the space in a fixed order (lr, then optimizer,
// then batch). A space with a range has no grid.
func (s Space) Grid() ([]Point, error) {
	if s.LR.IsRange() || s.Batch.IsRange() {
		return nil, fmt.Errorf("%w: the grid sampler needs choices, not ranges (got --lr %s --batch %s); list the values, e.g. --lr 0.001,0.01,0.1", ErrInvalidSpace, s.LR, s.Batch)
	}
	var pts []Point
	for _, lr := range s.LR.Choices {
		for _, opt := range s.Optimizers {
			for _, b := range s.Batch.Choices {
				pts = append(pts, Point{LR: lr, Optimizer: opt, Batch: int(b)})
			}
		}
	}
	return pts, nil
}

// FixedParams gives p in goptuna's internal representation for this space,
// as goptuna's EnqueueTrial wants it (categorical values by index). p must lie
// in the space.
func (s Space) FixedParams(p Point) (map[string]float64, error) {
	out := map[string]float64{}
	if s.LR.IsRange() {
		out[ParamLR] = p.LR
	} else {
		i := indexOf(s.LR.Choices, p.LR)
		if i < 0 {
			return nil, fmt.Errorf("%w: lr %s is not one of %s", ErrInvalidSpace, formatFloat(p.LR), s.LR)
		}
		out[ParamLR] = float64(i)
	}
	oi := -1
	for i, o := range s.Optimizers {
		if o == p.Optimizer {
			oi = i
		}
	}
	if oi < 0 {
		return nil, fmt.Errorf("%w: optimizer %s is not one of %s", ErrInvalidSpace, p.Optimizer, strings.Join(s.Optimizers, ","))
	}
	out[ParamOptimizer] = float64(oi)
	if s.Batch.IsRange() {
		out[ParamBatch] = float64(p.Batch)
	} else {
		i := indexOf(s.Batch.Choices, float64(p.Batch))
		if i < 0 {
			return nil, fmt.Errorf("%w: batch %d is not one of %s", ErrInvalidSpace, p.Batch, s.Batch)
		}
		out[ParamBatch] = float64(i)
	}
	return out, nil
}

// PointFromFixed is the inverse of FixedParams.
func (s Space) PointFromFixed(fixed map[string]float64) (Point, error) {
	lr, okLR := fixed[ParamLR]
	oi, okOpt := fixed[ParamOptimizer]
	b, okBatch := fixed[ParamBatch]
	if !okLR || !okOpt || !okBatch {
		return Point{}, fmt.Errorf("%w: fixed parameters %v lack lr, optimizer or batch", ErrInvalidSpace, fixed)
	}
	at := func(list []float64, i float64) (float64, error) {
		if i < 0 || int(i) >= len(list) || i != math.Trunc(i) {
			return 0, fmt.Errorf("%w: choice index %v out of range", ErrInvalidSpace, i)
		}
		return list[int(i)], nil
	}
	var err error
	if !s.LR.IsRange() {
		if lr, err = at(s.LR.Choices, lr); err != nil {
			return Point{}, err
		}
	}
	if !s.Batch.IsRange() {
		if b, err = at(s.Batch.Choices, b); err != nil {
			return Point{}, err
		}
	}
	if oi < 0 || int(oi) >= len(s.Optimizers) {
		return Point{}, fmt.Errorf("%w: optimizer index %v out of range", ErrInvalidSpace, oi)
	}
	return Point{LR: lr, Optimizer: s.Optimizers[int(oi)], Batch: int(b)}, nil
}

// Contains reports whether p lies in the space.
func (s Space) Contains(p Point) bool {
	_, err := s.FixedParams(p)
	if err != nil {
		return false
	}
	if s.LR.IsRange() && (p.LR < s.LR.Low || p.LR > s.LR.High) {
		return false
	}
	if s.Batch.IsRange() && (float64(p.Batch) < s.Batch.Low || float64(p.Batch) > s.Batch.High) {
		return false
	}
	return true
}

func indexOf(list []float64, v float64) int {
	for i, c := range list {
		if c == v {
			return i
		}
	}
	return -1
}

// PointFromParams reads a point back from a trial's external params.
func PointFromParams(params map[string]interface{}) (Point, error) {
	var p Point
	var err error
	if p.LR, err = numberParam(params, ParamLR); err != nil {
		return Point{}, err
	}
	opt, ok := params[ParamOptimizer].(string)
	if !ok {
		return Point{}, fmt.Errorf("trial has no %q parameter", ParamOptimizer)
	}
	p.Optimizer = opt
	b, err := numberParam(params, ParamBatch)
	if err != nil {
		return Point{}, err
	}
	p.Batch = int(b)
	return p, nil
}

func numberParam(params map[string]interface{}, name string) (float64, error) {
	switch v := params[name].(type) {
	case float64:
		return v, nil
	case int:
		return float64(v), nil
	case string:
		if f, ok := numchoice.Value(v); ok {
			return f, nil
		}
		return strconv.ParseFloat(v, 64)
	default:
		return 0, fmt.Errorf("trial has no numeric %q parameter", name)
	}
}
