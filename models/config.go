package models

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrInvalidConfig is wrapped by every error of Config.Validate, so callers
// can tell a bad configuration (a usage mistake) from a training failure.
var ErrInvalidConfig = errors.New("invalid training configuration")

// MaxBatch is the largest accepted batch size.
const MaxBatch = 65536

// Config is one training run: architecture, optimizer and its settings.
type Config struct {
	Arch      string  `json:"arch"`      // one of Archs()
	Optimizer string  `json:"optimizer"` // one of Optimizers()
	LR        float64 `json:"lr"`        // learning rate, > 0
	Momentum  float64 `json:"momentum"`  // sgd only: 0 (plain SGD) <= Momentum < 1
	Batch     int     `json:"batch"`     // batch size, 1..MaxBatch
	Epochs    int     `json:"epochs"`    // >= 1
	Seed      int64   `json:"seed"`      // weight init, shuffling and dropout masks
	// Threads is the most threads one training step uses; 0 shares the
	// cores equally among the trainings running in the process. Results
	// do not depend on it.
	Threads int `json:"-"`
}

// Optimizer names.
const (
	SGD     = "sgd"
	Adam    = "adam"
	Nadam   = "nadam"
	RMSprop = "rmsprop"
)

var optimizers = []string{SGD, Adam, Nadam, RMSprop}

// OptimizerInfo describes one optimizer.
type OptimizerInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// OptimizerInfos describes the optimizers in Optimizers order.
func OptimizerInfos() []OptimizerInfo {
	return []OptimizerInfo{
		{SGD, "stochastic gradient descent, plain or with (non-Nesterov, Keras) momentum > 0"},
		{Adam, "Adam, Keras defaults: beta1 0.9, beta2 0.999, eps 1e-7"},
		{Nadam, "Nadam (Adam with Nesterov momentum, Keras' schedule): beta1 0.9, beta2 0.999, eps 1e-7"},
		{RMSprop, "RMSprop, Keras defaults: rho 0.9, eps 1e-7, no momentum"},
	}
}

// Optimizers lists the optimizer names in a fixed order: sgd, adam, nadam,
// rmsprop.
func Optimizers() []string { return slices.Clone(optimizers) }

// ArchNames lists the architecture names in Archs order.
func ArchNames() []string {
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = a.name
	}
	return names
}

// Validate checks c. Its errors wrap ErrInvalidConfig and name the valid
// choices.
func (c Config) Validate() error {
	var problems []string
	if lookupArch(c.Arch) == nil {
		problems = append(problems, fmt.Sprintf("unknown architecture %q (valid: %s)",
			c.Arch, strings.Join(ArchNames(), ", ")))
	}
	if !slices.Contains(optimizers, c.Optimizer) {
		problems = append(problems, fmt.Sprintf("unknown optimizer %q (valid: %s)",
			c.Optimizer, strings.Join(optimizers, ", ")))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		problems = append(problems, fmt.Sprintf("learning rate %v must be a finite number > 0", c.LR))
	}
	switch {
	case math.IsNaN(c.Momentum) || c.Momentum < 0 || c.Momentum >= 1:
		problems = append(problems, fmt.Sprintf("momentum %v must be in [0, 1)", c.Momentum))
	case c.Momentum != 0 && c.Optimizer != SGD && slices.Contains(optimizers, c.Optimizer):
		problems = append(problems, fmt.Sprintf("momentum applies to sgd only, not %s", c.Optimizer))
	}
	if c.Batch < 1 || c.Batch > MaxBatch {
		problems = append(problems, fmt.Sprintf("batch size %d must be in 1..%d", c.Batch, MaxBatch))
	}
	if c.Threads < 0 {
		problems = append(problems, fmt.Sprintf("threads %d must be >= 0 (0: automatic)", c.Threads))
	}
	if c.Epochs < 1 {
		problems = append(problems, fmt.Sprintf("epochs %d must be >= 1", c.Epochs))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}
	return nil
}
