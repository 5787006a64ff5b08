package search

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/medianstopping"
	"github.com/c-bata/goptuna/successivehalving"
	"github.com/c-bata/goptuna/tpe"
)

// Sampler and pruner names accepted by --sampler and --pruner.
var (
	SamplerNames = []string{"tpe", "grid", "random"}
	PrunerNames  = []string{"median", "asha", "hyperband", "none"}
)

// ErrUnknownName marks an unknown sampler or pruner name.
var ErrUnknownName = errors.New("unknown name")

// Pruning defaults, in epochs (a trial reports once per epoch, from step 1).
const (
	MedianStartupTrials = 5 // completed trials before the median rule prunes
	MedianWarmupEpochs  = 1 // epochs a trial always gets before the median rule applies
	HalvingMinResource  = 1 // epochs before the first successive-halving rung
	HalvingReduction    = 3 // keep the top 1/3 at each rung
)

// NewSampler returns the goptuna sampler called name, seeded with seed. The
// grid sampler is a random sampler here: grid points reach trials as
// enqueued fixed parameters (see Space.Grid), so it only ever samples what a
// grid study cannot have, which is nothing.
func NewSampler(name string, seed int64) (goptuna.Sampler, error) {
	switch name {
	case "tpe":
		return tpe.NewSampler(tpe.SamplerOptionSeed(seed)), nil
	case "random", "grid":
		return goptuna.NewRandomSampler(goptuna.RandomSamplerOptionSeed(seed)), nil
	}
	return nil, fmt.Errorf("%w: sampler %q (valid: %s)", ErrUnknownName, name, strings.Join(SamplerNames, ", "))
}

// NewPruner returns the pruner called name for trials of maxEpochs epochs, or
// nil for "none".
func NewPruner(name string, maxEpochs int) (goptuna.Pruner, error) {
	switch name {
	case "none":
		return nil, nil
	case "median":
		p := medianstopping.NewMedianPruner()
		p.NStartUpTrials = MedianStartupTrials
		p.NWarmUpSteps = MedianWarmupEpochs
		return p, nil
	case "asha":
		return successivehalving.NewPruner(
			successivehalving.OptionMinResource(HalvingMinResource),
			successivehalving.OptionReductionFactor(HalvingReduction),
			successivehalving.OptionMinEarlyStoppingRate(0))
	case "hyperband":
		return NewHyperband(HalvingMinResource, maxEpochs, HalvingReduction), nil
	}
	return nil, fmt.Errorf("%w: pruner %q (valid: %s)", ErrUnknownName, name, strings.Join(PrunerNames, ", "))
}

// CheckName returns an error unless name is one of valid.
func CheckName(kind, name string, valid []string) error {
	if contains(valid, name) {
		return nil
	}
	return fmt.Errorf("%w: %s %q (valid: %s)", ErrUnknownName, kind, name, strings.Join(valid, ", "))
}

// SeedGlobalRand seeds the global math/rand generator, which goptuna's TPE
// and random samplers draw some values from (categorical draws, mixture
// components). Since Go 1.24 rand.Seed is a no-op unless the program is built
// with //go:debug randseednop=0 (cmd/fmtune is); SeedGlobalRand says so when
// it had no effect, so reproducibility never fails silently.
func SeedGlobalRand(seed int64) error {
	// Deliberate: goptuna draws from the global source.
	//lint:ignore SA1019 goptuna's samplers use the global math/rand
	rand.Seed(seed)
	a := rand.Int63()
	//lint:ignore SA1019 as above
	rand.Seed(seed)
	b := rand.Int63()
	//lint:ignore SA1019 as above
	rand.Seed(seed)
	if a != b {
		return errors.New("the global math/rand cannot be seeded (build with //go:debug randseednop=0); sampling is not reproducible")
	}
	return nil
}
