package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
)

// BenchOptions are the flags of fmtune bench.
type BenchOptions struct {
	Arch      string
	Optimizer string
	Batch     int
	Batches   int
	Warmup    int
	Threads   int
	Data      string
	Synthetic bool
	Ops       bool
	JSON      bool

	Out, Err io.Writer
}

func newBenchCmd() *cobra.Command {
	opts := &BenchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure training speed (samples/s) of each architecture",
		Long: `Measure training throughput: full training steps (forward, backward and
optimizer update) of one trial on batches of real Fashion-MNIST images, or
synthetic ones with --synthetic or when the data is not installed. A few
untimed warm-up batches come first.

Per architecture it prints samples/s, milliseconds per batch, heap
allocations per step, the matrix products' FLOPs per second of wall time
(GFLOP/S) and the share of the threads' time spent in them (GEMM%), and the
threads the trial used. The BLAS in use (openblas or gonum) is printed;
build with -tags openblas for OpenBLAS.`,
		Example: `  fmtune bench
  fmtune bench --arch cnn --threads 1 --batches 50
  fmtune bench --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return benchRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Arch, "arch", "all", "architecture: all, "+strings.Join(models.ArchNames(), ", "))
	f.StringVar(&opts.Optimizer, "optimizer", "adam", "optimizer: "+strings.Join(models.Optimizers(), ", "))
	f.IntVar(&opts.Batch, "batch", 128, "batch size")
	f.IntVar(&opts.Batches, "batches", 20, "timed batches per architecture")
	f.IntVar(&opts.Warmup, "warmup", 3, "untimed warm-up batches per architecture")
	f.IntVar(&opts.Threads, "threads", 0, "threads of the trial (0: every core)")
	f.StringVar(&opts.Data, "data", "", "directory with the Fashion-MNIST IDX files")
	f.BoolVar(&opts.Synthetic, "synthetic", false, "use random images instead of the real data")
	f.BoolVar(&opts.Ops, "ops", false, "also print the time of each operator per step (forward, backward, optimizer)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON (always with the operators' times)")
	return cmd
}

func benchRun(ctx context.Context, opts *BenchOptions) error {
	archs := models.ArchNames()
	if opts.Arch != "all" {
		if !slices.Contains(archs, opts.Arch) {
			return usagef("unknown architecture %q (valid: all, %s)", opts.Arch, strings.Join(archs, ", "))
		}
		archs = []string{opts.Arch}
	}
	if !slices.Contains(models.Optimizers(), opts.Optimizer) {
		return usagef("unknown optimizer %q (valid: %s)", opts.Optimizer, strings.Join(models.Optimizers(), ", "))
	}
	if opts.Batch < 1 || opts.Batch > models.MaxBatch {
		return usagef("--batch must be in 1..%d (got %d)", models.MaxBatch, opts.Batch)
	}
	if opts.Batches < 1 {
		return usagef("--batches must be at least 1 (got %d)", opts.Batches)
	}
	if opts.Warmup < 0 {
		return usagef("--warmup must not be negative (got %d)", opts.Warmup)
	}
	if opts.Threads < 0 {
		return usagef("--threads must not be negative (got %d; 0 uses every core)", opts.Threads)
	}

	var set *data.Set
	if !opts.Synthetic {
		dir, err := data.Locate(opts.Data)
		switch {
		case err == nil:
			ds, err := data.Load(dir, data.Options{})
			if err != nil {
				return err
			}
			set = ds.Train
		case opts.Data == "" && errors.Is(err, data.ErrNotFound):
			fmt.Fprintln(opts.Err, "fmtune bench: Fashion-MNIST not found, using synthetic images")
		default:
			return err
		}
		if set != nil && set.Len() < opts.Batch {
			return usagef("--batch %d exceeds the %d training images", opts.Batch, set.Len())
		}
	}

	var results []models.BenchResult
	if !opts.JSON {
		src := "real images"
		if set == nil {
			src = "synthetic images"
		}
		blas := "OpenBLAS via cgo, one BLAS thread per fmtune thread"
		if models.BLASName() != "openblas" {
			blas = "pure Go; build with -tags openblas for OpenBLAS"
		}
		fmt.Fprintf(opts.Out, "BLAS %s (%s), GOMAXPROCS %d\noptimizer %s, batch %d, %s; %d warm-up + %d timed batches\n\n",
			models.BLASName(), blas, runtime.GOMAXPROCS(0), opts.Optimizer, opts.Batch, src, opts.Warmup, opts.Batches)
		fmt.Fprintf(opts.Out, "%-12s %9s %11s %9s %7s %8s %6s %8s\n", "ARCH", "PARAMS", "SAMPLES/S", "MS/BATCH", "ALLOCS", "GFLOP/S", "GEMM%", "THREADS")
	}
	for _, arch := range archs {
		r, err := models.Bench(ctx, models.BenchConfig{
			Arch: arch, Optimizer: opts.Optimizer, Batch: opts.Batch,
			Warmup: opts.Warmup, Batches: opts.Batches, Threads: opts.Threads, Seed: 1, Set: set,
		})
		if err != nil {
			return fmt.Errorf("bench %s: %w", arch, err)
		}
		results = append(results, r)
		if !opts.JSON { // a row per architecture as soon as it is measured
			fmt.Fprintf(opts.Out, "%-12s %9s %11s %9.2f %7.0f %8.1f %5.0f%% %8d\n", r.Arch, thousands(r.Params),
				thousands(int(r.SamplesPerSec+0.5)), r.MsPerBatch, r.AllocsPerStep, r.GFLOPS, 100*r.GemmShare, r.Threads)
			if opts.Ops {
				for _, op := range r.Ops {
					fmt.Fprintf(opts.Out, "    %8.3f ms  %s\n", op.Ms, op.Op)
				}
			}
		}
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			BLAS       string               `json:"blas"`
			GOMAXPROCS int                  `json:"gomaxprocs"`
			Results    []models.BenchResult `json:"results"`
		}{models.BLASName(), runtime.GOMAXPROCS(0), results})
	}
	return nil
}
