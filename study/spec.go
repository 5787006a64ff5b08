// Package study is the tuning engine: the study spec, the worker goroutines
// that claim or create trials, the objective that trains a model per trial and
// reports each epoch for pruning, recovery of interrupted and crashed trials,
// and the queries (best trial, studies, trials) over a storage.
package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fmtune/fmtune/search"
)

// ErrInvalidSpec marks a spec the user wrote wrongly (exit code 2).
var ErrInvalidSpec = errors.New("invalid study spec")

// Fields of a spec or of the run options that a FieldError names.
const (
	FieldName       = "name"
	FieldEpochs     = "epochs"
	FieldTrials     = "trials"
	FieldVal        = "val"
	FieldTrainLimit = "train_limit"
	FieldOptimizers = "optimizers"
	FieldWorkers    = "workers"
	FieldThreads    = "threads"
	FieldRepeats    = "repeats"
	FieldDeadAfter  = "dead_after"
)

// MaxRepeats is the most repeats a study may ask for.
const MaxRepeats = 100

// FieldError is a wrong value of one field of a spec (or of RunOptions). It
// is an ErrInvalidSpec. A command line turns Field into its flag's name.
type FieldError struct {
	Field string // one of the Field constants
	Msg   string // what is wrong, after the field's name: "must be at least 1 (got 0)"
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s %s", ErrInvalidSpec, e.Field, e.Msg) }

// Unwrap makes a FieldError an ErrInvalidSpec.
func (e *FieldError) Unwrap() error { return ErrInvalidSpec }

// SpecAttr is the study system attribute that holds the stored spec as JSON.
const SpecAttr = "fmtune:spec"

// Spec is everything that defines a study. It is stored with the study, so
// a resumed study runs exactly as it was launched.
type Spec struct {
	Name       string       `json:"name"`
	Arch       string       `json:"arch"`
	Space      search.Space `json:"space"`
	Sampler    string       `json:"sampler"`
	Pruner     string       `json:"pruner"`
	Epochs     int          `json:"epochs"`
	Seed       int64        `json:"seed"`
	Val        int          `json:"val"`
	TrainLimit int          `json:"train_limit,omitempty"`
	// Trials is the target number of finished trials (0: see Target).
	Trials int `json:"trials,omitempty"`
	// Repeats is how many times each configuration is trained, each time
	// with its own seed (0 and 1: once). In a finite space no
	// configuration is trained more often.
	Repeats int `json:"repeats,omitempty"`
	// DeadAfter stops a trial that is not learning after this many epochs
	// (see NotLearning; 0: never).
	DeadAfter int `json:"dead_after,omitempty"`

	// Set when the study is created, never changed afterwards.
	DataChecksum string    `json:"data_checksum,omitempty"`
	Version      string    `json:"fmtune_version,omitempty"`
	Created      time.Time `json:"created,omitempty"`
}

// DefaultSpec returns the defaults of `fmtune tune`.
func DefaultSpec() Spec {
	return Spec{
		Arch:    "mlp",
		Space:   search.DefaultSpace(),
		Sampler: "tpe",
		Pruner:  "median",
		Epochs:  10,
		Seed:    1,
		Val:     10000,
		// A study stored before dead_after existed reads 0 (off) and
		// keeps running as it did.
		DeadAfter: DefaultDeadAfter,
	}
}

// DefaultDeadAfter is the default of Spec.DeadAfter.
const DefaultDeadAfter = 2

// repeats is Repeats with its default.
func (s Spec) repeats() int { return max(s.Repeats, 1) }

// Validate checks the spec against the valid choices of archs and optimizers.
func (s Spec) Validate(archs, optimizers []string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case strings.TrimSpace(s.Name) == "":
		return &FieldError{Field: FieldName, Msg: "is required: a study needs a name, e.g. --study demo (fmtune studies lists the existing ones)"}
	case !contains(archs, s.Arch):
		return bad("unknown arch %q (valid: %s)", s.Arch, strings.Join(archs, ", "))
	case s.Epochs < 1:
		return &FieldError{Field: FieldEpochs, Msg: fmt.Sprintf("must be at least 1 (got %d)", s.Epochs)}
	case s.Trials < 0:
		return &FieldError{Field: FieldTrials, Msg: fmt.Sprintf("must be 0 (the default target: %s) or more (got %d)", defaultTargetText, s.Trials)}
	case s.Val < 1:
		return &FieldError{Field: FieldVal, Msg: fmt.Sprintf("must be at least 1 (got %d)", s.Val)}
	case s.TrainLimit < 0:
		return &FieldError{Field: FieldTrainLimit, Msg: fmt.Sprintf("must be 0 (all) or more (got %d)", s.TrainLimit)}
	case s.Repeats < 0 || s.Repeats > MaxRepeats:
		return &FieldError{Field: FieldRepeats, Msg: fmt.Sprintf("must be between 1 and %d trainings of each configuration (got %d)", MaxRepeats, s.Repeats)}
	case s.DeadAfter < 0:
		return &FieldError{Field: FieldDeadAfter, Msg: fmt.Sprintf("must be an epoch (1 or more) or 0 to never stop trials that are not learning (got %d)", s.DeadAfter)}
	}
	if err := search.CheckName("sampler", s.Sampler, search.SamplerNames); err != nil {
		return bad("%v", err)
	}
	if err := search.CheckName("pruner", s.Pruner, search.PrunerNames); err != nil {
		return bad("%v", err)
	}
	if len(s.Space.Optimizers) == 0 {
		return &FieldError{Field: FieldOptimizers, Msg: "needs at least one of " + strings.Join(optimizers, ", ")}
	}
	for _, o := range s.Space.Optimizers {
		if !contains(optimizers, o) {
			return bad("unknown optimizer %q (valid: %s)", o, strings.Join(optimizers, ", "))
		}
	}
	if s.Sampler == "grid" {
		if _, err := s.Space.Grid(); err != nil {
			return bad("%v", err)
		}
	}
	return nil
}

// DefaultRangeTrials is the default target of a study whose space has a range.
const DefaultRangeTrials = 50

// defaultTargetText says what Trials 0 means, for messages.
var defaultTargetText = fmt.Sprintf("the number of combinations, or %d when lr or batch is a range", DefaultRangeTrials)

// Target is the number of finished trials the study aims for: Trials when
// set, else the number of combinations of a space of choices (24 for the
// defaults), else DefaultRangeTrials; with Repeats, each configuration
// counts that many times (Trials rounds up to whole configurations).
func (s Spec) Target() int {
	if s.Trials > 0 {
		// Whole configurations: every one trained Repeats times.
		n := s.repeats()
		return (s.Trials + n - 1) / n * n
	}
	if grid, err := s.Space.Grid(); err == nil {
		return len(grid) * s.repeats()
	}
	return DefaultRangeTrials * s.repeats()
}

// Mismatch names the first field in which other (a spec asked for now)
// differs from s (the stored spec), or "" when they define the same study.
// The budget (Trials) may differ.
func (s Spec) Mismatch(other Spec) string {
	a, b := s.identity(), other.identity()
	for _, f := range []struct {
		name string
		x, y any
	}{
		{"arch", a.Arch, b.Arch},
		{"sampler", a.Sampler, b.Sampler},
		{"pruner", a.Pruner, b.Pruner},
		{"lr", a.Space.LR.String(), b.Space.LR.String()},
		{"optimizers", strings.Join(a.Space.Optimizers, ","), strings.Join(b.Space.Optimizers, ",")},
		{"batch", a.Space.Batch.String(), b.Space.Batch.String()},
		{"epochs", a.Epochs, b.Epochs},
		{"seed", a.Seed, b.Seed},
		{"val", a.Val, b.Val},
		{"train-limit", a.TrainLimit, b.TrainLimit},
		{"repeats", a.repeats(), b.repeats()},
		{"data checksum", a.DataChecksum, b.DataChecksum},
	} {
		if f.x != f.y {
			return fmt.Sprintf("%s: stored %v, asked %v", f.name, f.x, f.y)
		}
	}
	return ""
}

// identity is s without the fields that may change between runs.
func (s Spec) identity() Spec {
	s.Trials, s.Version, s.Created, s.Name = 0, "", time.Time{}, ""
	return s
}

// MarshalSpec encodes the spec as stored.
func MarshalSpec(s Spec) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// UnmarshalSpec decodes a stored spec.
func UnmarshalSpec(text string) (Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return Spec{}, fmt.Errorf("stored study spec is unreadable: %w", err)
	}
	return s, nil
}

// SpecKeys are the keys of a study spec as written in YAML (a spec file's,
// a plan's defaults and studies), in the flags' words. Every key is optional.
type SpecKeys struct {
	Arch       string   `yaml:"arch"`
	LR         ListText `yaml:"lr"`
	Optimizers ListText `yaml:"optimizers"`
	Batch      ListText `yaml:"batch"`
	Sampler    string   `yaml:"sampler"`
	Pruner     string   `yaml:"pruner"`
	Epochs     int      `yaml:"epochs"`
	Trials     int      `yaml:"trials"`
	Seed       *int64   `yaml:"seed"`
	Val        int      `yaml:"val"`
	TrainLimit int      `yaml:"train_limit"`
	Repeats    int      `yaml:"repeats"`
	DeadAfter  *int     `yaml:"dead_after"`
}

// File is a study spec as written in a YAML file (fmtune tune -f FILE):
// the spec keys plus the run's. Unknown keys are refused.
type File struct {
	Study    string `yaml:"study"`
	SpecKeys `yaml:",inline"`
	Timeout  string `yaml:"timeout"`
	Workers  int    `yaml:"workers"`
	Data     string `yaml:"data"`
	Storage  string `yaml:"storage"`
}

// ListText accepts either "a,b,c" or a YAML list [a, b, c] and keeps the
// comma-separated text that the flags take.
type ListText string

func (l *ListText) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = ListText(n.Value)
	case yaml.SequenceNode:
		parts := make([]string, len(n.Content))
		for i, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a list of plain values is expected", c.Line)
			}
			parts[i] = c.Value
		}
		*l = ListText(strings.Join(parts, ","))
	default:
		return fmt.Errorf("line %d: expected a value or a list", n.Line)
	}
	return nil
}

// ReadFile reads a YAML spec file strictly: an unknown key is an error that
// names it.
func ReadFile(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("read spec file: %w", err)
	}
	if err := decodeStrict(b, &f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("%w: %s: %v", ErrInvalidSpec, path, err)
	}
	return f, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
