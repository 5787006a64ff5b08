package study

// Building a spec from what a person wrote: the defaults, then a file (a
// spec file, a plan's defaults and study), then the flags that were set.

import (
	"fmt"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// Spec keys as written in YAML files; a command line's flags are named the
// same, with "-" for "_".
const (
	KeyArch       = "arch"
	KeyLR         = "lr"
	KeyOptimizers = "optimizers"
	KeyBatch      = "batch"
	KeySampler    = "sampler"
	KeyPruner     = "pruner"
	KeyEpochs     = "epochs"
	KeyTrials     = "trials"
	KeySeed       = "seed"
	KeyVal        = "val"
	KeyTrainLimit = "train_limit"
	KeyRepeats    = "repeats"
	KeyDeadAfter  = "dead_after"
)

// defaultOptimizers is the optimizers of DefaultSpec, as written.
const defaultOptimizers = "sgd,adam,nadam,rmsprop"

// Layer is one source of spec keys. Set says which of Keys are set (a flag
// given on the command line); nil means those that are not zero (a file's).
type Layer struct {
	Keys SpecKeys
	Set  func(key string) bool
}

// BuildSpec is DefaultSpec named name with the keys set in each layer
// applied in order (later layers win), its search space parsed and the
// whole validated. Errors are ErrInvalidSpec (a FieldError names the field)
// or the search package's.
func BuildSpec(name string, layers ...Layer) (Spec, error) {
	spec := DefaultSpec()
	spec.Name = name
	lr, opts, batch := spec.Space.LR.String(), defaultOptimizers, spec.Space.Batch.String()
	for _, l := range layers {
		k := l.Keys
		set := l.Set
		if set == nil {
			set = func(key string) bool { return k.nonZero(key) }
		}
		str := func(key string, dst *string, v string) {
			if set(key) {
				*dst = v
			}
		}
		num := func(key string, dst *int, v int) {
			if set(key) {
				*dst = v
			}
		}
		str(KeyArch, &spec.Arch, k.Arch)
		str(KeyLR, &lr, string(k.LR))
		str(KeyOptimizers, &opts, string(k.Optimizers))
		str(KeyBatch, &batch, string(k.Batch))
		str(KeySampler, &spec.Sampler, k.Sampler)
		str(KeyPruner, &spec.Pruner, k.Pruner)
		num(KeyEpochs, &spec.Epochs, k.Epochs)
		num(KeyTrials, &spec.Trials, k.Trials)
		num(KeyVal, &spec.Val, k.Val)
		num(KeyTrainLimit, &spec.TrainLimit, k.TrainLimit)
		num(KeyRepeats, &spec.Repeats, k.Repeats)
		if set(KeyDeadAfter) && k.DeadAfter != nil {
			spec.DeadAfter = *k.DeadAfter
		}
		if set(KeySeed) && k.Seed != nil {
			spec.Seed = *k.Seed
		}
	}
	var err error
	if spec.Space.LR, err = search.ParseFloatDim("lr", lr); err != nil {
		return Spec{}, err
	}
	if spec.Space.Optimizers, err = search.ParseOptimizers(opts, models.Optimizers()); err != nil {
		return Spec{}, err
	}
	if spec.Space.Batch, err = search.ParseIntDim("batch", batch); err != nil {
		return Spec{}, err
	}
	if err := spec.Validate(models.ArchNames(), models.Optimizers()); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// nonZero reports whether key has a value other than its zero.
func (k SpecKeys) nonZero(key string) bool {
	switch key {
	case KeyArch:
		return k.Arch != ""
	case KeyLR:
		return k.LR != ""
	case KeyOptimizers:
		return k.Optimizers != ""
	case KeyBatch:
		return k.Batch != ""
	case KeySampler:
		return k.Sampler != ""
	case KeyPruner:
		return k.Pruner != ""
	case KeyEpochs:
		return k.Epochs != 0
	case KeyTrials:
		return k.Trials != 0
	case KeySeed:
		return k.Seed != nil
	case KeyVal:
		return k.Val != 0
	case KeyTrainLimit:
		return k.TrainLimit != 0
	case KeyRepeats:
		return k.Repeats != 0
	case KeyDeadAfter:
		return k.DeadAfter != nil
	}
	panic(fmt.Sprintf("study: unknown spec key %q", key))
}
