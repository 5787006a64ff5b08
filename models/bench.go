package models

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fmtune/fmtune/data"
)

// BenchConfig describes a training-throughput measurement.
type BenchConfig struct {
	Arch      string
	Optimizer string // default adam
	Batch     int    // default 128
	Warmup    int    // untimed batches first; default 3
	Batches   int    // timed batches; default 20
	Seed      int64
	// Set is the data to train on; nil means synthetic images (uniform
	// pixels, random labels), which cost the same to train on.
	Set *data.Set
}

// BenchResult is the measured training throughput.
type BenchResult struct {
	Arch          string  `json:"arch"`
	Params        int     `json:"params"`
	Batch         int     `json:"batch"`
	Batches       int     `json:"batches"`
	Seconds       float64 `json:"seconds"`
	SamplesPerSec float64 `json:"samples_per_sec"`
	BLAS          string  `json:"blas"`
	Data          string  `json:"data"` // "real" or "synthetic"
}

// Bench measures training samples per second: full training steps
// (forward, backward, optimizer update) on batches of cfg.Batch examples,
// after cfg.Warmup untimed steps. It checks ctx between batches.
func Bench(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	if cfg.Optimizer == "" {
		cfg.Optimizer = Adam
	}
	if cfg.Batch == 0 {
		cfg.Batch = 128
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 3
	}
	if cfg.Batches == 0 {
		cfg.Batches = 20
	}
	tc := Config{Arch: cfg.Arch, Optimizer: cfg.Optimizer, LR: 0.001, Batch: cfg.Batch, Epochs: 1, Seed: cfg.Seed}
	if err := tc.Validate(); err != nil {
		return BenchResult{}, err
	}
	if cfg.Warmup < 0 || cfg.Batches < 1 {
		return BenchResult{}, fmt.Errorf("%w: warm-up %d must be >= 0 and batches %d >= 1", ErrInvalidConfig, cfg.Warmup, cfg.Batches)
	}
	res := BenchResult{Arch: cfg.Arch, Batch: cfg.Batch, Batches: cfg.Batches, BLAS: BLASName(), Data: "real"}
	set := cfg.Set
	if set == nil {
		set = syntheticSet(cfg.Batch, cfg.Seed)
		res.Data = "synthetic"
	}
	if set.Len() < cfg.Batch {
		return res, errors.New("models: bench: fewer examples than one batch")
	}
	model, err := NewModel(cfg.Arch, cfg.Seed)
	if err != nil {
		return res, err
	}
	res.Params = model.NumParams()
	solver, err := NewSolver(tc)
	if err != nil {
		return res, err
	}
	_, tg, err := model.build(cfg.Batch, true)
	if err != nil {
		return res, err
	}
	rs := newRandSource(cfg.Seed)
	step := func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		from := (i * cfg.Batch) % (set.Len() - cfg.Batch + 1)
		b := set.Slice(from, from+cfg.Batch)
		if _, _, err := tg.step(b.Images, b.Labels, rs); err != nil {
			return err
		}
		return solver.Step(tg.vgs)
	}
	for i := range cfg.Warmup {
		if err := step(i); err != nil {
			return res, err
		}
	}
	start := time.Now()
	for i := range cfg.Batches {
		if err := step(cfg.Warmup + i); err != nil {
			return res, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.SamplesPerSec = float64(cfg.Batches*cfg.Batch) / res.Seconds
	return res, nil
}

// syntheticSet is n random images with random labels.
func syntheticSet(n int, seed int64) *data.Set {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	s := &data.Set{Images: make([]float32, n*data.Pixels), Labels: make([]uint8, n)}
	for i := range s.Images {
		s.Images[i] = r.Float32()
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(r.IntN(data.Classes))
	}
	return s
}
