package models

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models/kernels"
)

// BenchConfig describes a training-throughput measurement.
type BenchConfig struct {
	Arch      string
	Optimizer string // default adam
	Batch     int    // default 128
	Warmup    int    // untimed batches first; default 3
	Batches   int    // timed batches; default 20
	Threads   int    // threads of the trial; 0: automatic (all cores)
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
	Threads       int     `json:"threads"`
	Seconds       float64 `json:"seconds"`
	SamplesPerSec float64 `json:"samples_per_sec"`
	MsPerBatch    float64 `json:"ms_per_batch"`
	AllocsPerStep float64 `json:"allocs_per_step"` // heap allocations per training step
	BytesPerStep  float64 `json:"bytes_per_step"`  // heap bytes allocated per training step
	GFLOPS        float64 `json:"gflops"`          // matrix-product FLOPs per second of wall time
	FlopsPerStep  int64   `json:"flops_per_step"`  // matrix-product FLOPs of one step
	GemmShare     float64 `json:"gemm_share"`      // share of the threads' time spent in matrix products
	BLAS          string  `json:"blas"`
	Data          string  `json:"data"` // "real" or "synthetic"
	// Ops is the time per step of each operator of the training graph, in
	// execution order (forward, then backward), and of the optimizer.
	Ops []OpTime `json:"ops"`
}

// OpTime is the wall time one operator takes per training step.
type OpTime struct {
	Op string  `json:"op"`
	Ms float64 `json:"ms"`
}

// BLASName is the BLAS implementation in use: "openblas" when built with
// -tags openblas, "gonum" (pure Go) otherwise.
func BLASName() string { return kernels.BLASName() }

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
	tc := Config{Arch: cfg.Arch, Optimizer: cfg.Optimizer, LR: 0.001, Batch: cfg.Batch, Epochs: 1, Seed: cfg.Seed, Threads: cfg.Threads}
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
	tr, err := newTrainer(model, tc, cfg.Batch)
	if err != nil {
		return res, err
	}
	defer tr.close()
	res.Threads = model.team.Size()
	rs := newRandSource(cfg.Seed)
	idx := make([]int, cfg.Batch)
	step := func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		from := (i * cfg.Batch) % (set.Len() - cfg.Batch + 1)
		for k := range idx {
			idx[k] = from + k
		}
		_, _, err := tr.step(set, idx, rs)
		return err
	}
	for i := range cfg.Warmup {
		if err := step(i); err != nil {
			return res, err
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	kernels.StartGemmTiming()
	start := time.Now()
	for i := range cfg.Batches {
		if err := step(cfg.Warmup + i); err != nil {
			kernels.StopGemmTiming()
			return res, err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	gemm := kernels.StopGemmTiming()
	runtime.ReadMemStats(&after)

	// The same steps again, timing each operator: the breakdown.
	tr.tg.plan.timed = true
	opStart := time.Now()
	for i := range cfg.Batches {
		if err := step(cfg.Warmup + cfg.Batches + i); err != nil {
			return res, err
		}
	}
	var inGraph time.Duration
	for _, s := range tr.tg.plan.steps {
		if s.took > 0 {
			res.Ops = append(res.Ops, OpTime{Op: s.name, Ms: 1000 * s.took.Seconds() / float64(cfg.Batches)})
			inGraph += s.took
		}
	}
	rest := time.Since(opStart) - inGraph
	res.Ops = append(res.Ops, OpTime{Op: "gather batch + optimizer (" + cfg.Optimizer + ")", Ms: 1000 * rest.Seconds() / float64(cfg.Batches)})
	n := float64(cfg.Batches)
	res.SamplesPerSec = n * float64(cfg.Batch) / res.Seconds
	res.MsPerBatch = 1000 * res.Seconds / n
	res.AllocsPerStep = float64(after.Mallocs-before.Mallocs) / n
	res.BytesPerStep = float64(after.TotalAlloc-before.TotalAlloc) / n
	res.FlopsPerStep = gemm.Flops / int64(cfg.Batches)
	res.GFLOPS = float64(gemm.Flops) / res.Seconds / 1e9
	res.GemmShare = gemm.Seconds / (res.Seconds * float64(res.Threads))
	return res, nil
}

// syntheticSet is n random images with random labels.
func syntheticSet(n int, seed int64) *data.Set {
	r := rand.New(rand.NewPCG(uint64(seed), 42))
	s := &data.Set{Images: make([]uint8, n*data.Pixels), Labels: make([]uint8, n)}
	for i := range s.Images {
		s.Images[i] = uint8(r.IntN(256))
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(r.IntN(data.Classes))
	}
	return s
}
