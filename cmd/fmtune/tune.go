package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// TuneOptions are the options of `fmtune tune`.
type TuneOptions struct {
	File                  string
	Study, Arch           string
	LR, Optimizers, Batch string
	Sampler, Pruner       string
	Epochs, Trials        int
	Seed                  int64
	Val, TrainLimit       int
	Repeats, DeadAfter    int
	RunFlags
	changed func(name string) bool
}

// RunFlags are the flags shared by tune, resume and worker.
type RunFlags struct {
	Storage   string
	Data      string
	Workers   int
	Threads   int
	Timeout   time.Duration
	Heartbeat time.Duration
	Patience  time.Duration
	Quiet     bool
	JSON      bool
	Out, Err  io.Writer

	KeepModels int // --keep-models (keep.go)

	f *Factory
}

func (f *RunFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.Storage, "storage", "", "storage URL: sqlite:///file.db, sqlite:////abs/file.db or postgresql://user:pass@host:port/db (default $FMTUNE_STORAGE, else "+storage.DefaultURL+")")
	cmd.Flags().StringVar(&f.Data, "data", "", "Fashion-MNIST directory (default: $FMTUNE_DATA, "+data.SystemDir+", user cache)")
	cmd.Flags().IntVar(&f.Workers, "workers", runtime.NumCPU(), "trials trained in parallel in this process (goroutines)")
	cmd.Flags().IntVar(&f.Threads, "threads", 0, "threads per trial (0: the cores shared among the trials running, so the last trials take the cores the others left); results do not depend on it")
	cmd.Flags().DurationVar(&f.Timeout, "timeout", 0, "start no new trial after this long, e.g. 30m (0: no limit)")
	cmd.Flags().DurationVar(&f.Heartbeat, "heartbeat", study.DefaultHeartbeat, "how often running trials record a heartbeat; a trial silent for 4x this is taken for crashed")
	cmd.Flags().DurationVar(&f.Patience, "storage-patience", study.DefaultStoragePatience, "how long to keep retrying while the storage is unreachable (a PostgreSQL restart, a network cut) before stopping")
	cmd.Flags().BoolVarP(&f.Quiet, "quiet", "q", false, "print no progress")
	cmd.Flags().BoolVar(&f.JSON, "json", false, "print the outcome as JSON on stdout")
	_ = cmd.Flags().MarkHidden("heartbeat")
	bindKeepModels(cmd, &f.KeepModels)
}

func newTuneCmd(f *Factory) *cobra.Command {
	opts := &TuneOptions{RunFlags: RunFlags{f: f}}
	def := study.DefaultSpec()
	cmd := &cobra.Command{
		Use:   "tune --study NAME [--arch mlp] [flags]",
		Short: "Launch (or continue) a tuning study",
		Long: `Launch a tuning study: a sampler proposes learning rate, optimizer and batch
size; each trial trains the architecture for --epochs and reports validation
accuracy every epoch so weak trials can be pruned. Everything is stored, so a
stopped study continues with 'fmtune resume NAME'.

Search space: choices "0.001,0.01,0.1" or ranges "1e-4:0.3:log" (lr) and
"64:512:64" (batch). Samplers: tpe, grid (every combination once), random.
Pruners: median, asha, hyperband, none.

No epoch is wasted: in a space of choices no configuration is trained twice
(TPE takes its best untried one, random a random untried one, and the study
ends "space exhausted" once all are tried; --repeats N asks for N seeds
each). A trial that is not learning is stopped after --dead-after epochs.
Every epoch a running trial stores a checkpoint in the study's database, so
a trial stopped by Ctrl-C, kill or a lost machine continues from its last
finished epoch when the study is resumed, here or on another machine.

A spec can also come from a YAML file (-f); flags override it. Keys: study,
arch, lr, optimizers, batch, sampler, pruner, epochs, trials, repeats,
dead_after, timeout, workers, seed, data, val, train_limit, storage.`,
		Example: `  fmtune tune --study demo --arch mlp --trials 12 --epochs 3 --workers 2 --train-limit 10000
  fmtune tune --study grid-mlp --sampler grid --epochs 5
  fmtune tune --study wide --lr 1e-4:0.3:log --batch 64:512:64 --trials 40
  fmtune tune -f examples/study.yaml --trials 30`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts.changed = cmd.Flags().Changed
			return tuneRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.File, "file", "f", "", "read the study spec from this YAML file")
	fl.StringVar(&opts.Study, "study", "", "study name (required)")
	fl.StringVar(&opts.Arch, "arch", def.Arch, "architecture: mlp, deep, cnn, cnn-dropout")
	fl.StringVar(&opts.LR, "lr", def.Space.LR.String(), "learning rates: choices or a range low:high[:log]")
	fl.StringVar(&opts.Optimizers, "optimizers", "sgd,adam,nadam,rmsprop", "optimizers to choose from")
	fl.StringVar(&opts.Batch, "batch", def.Space.Batch.String(), "batch sizes: choices or a range low:high[:step]")
	fl.StringVar(&opts.Sampler, "sampler", def.Sampler, "tpe, grid or random")
	fl.StringVar(&opts.Pruner, "pruner", def.Pruner, "median, asha, hyperband or none")
	fl.IntVar(&opts.Epochs, "epochs", def.Epochs, "epochs per trial")
	fl.IntVar(&opts.Trials, "trials", 0, "target number of finished trials in the study (default: the number of combinations, 24 for the default space; 50 when --lr or --batch is a range)")
	fl.Int64Var(&opts.Seed, "seed", def.Seed, "seed of the sampler and of every trial's training")
	fl.IntVar(&opts.Val, "val", def.Val, "validation set: the last N training images")
	fl.IntVar(&opts.TrainLimit, "train-limit", 0, "train on the first N training images only (0: all), for quick looks")
	fl.IntVar(&opts.Repeats, "repeats", 1, "train each configuration this many times, each with its own seed; best, compare and report then show mean ± std and rank by the mean (--trials counts every training)")
	fl.IntVar(&opts.DeadAfter, "dead-after", def.DeadAfter, "from this epoch on, stop as PRUNED (\"not learning\") a trial whose val accuracy is within 2 points of chance (10%) or whose loss is not finite, whatever the pruner; 0: never")
	opts.RunFlags.bind(cmd)
	return cmd
}

// specFromOptions builds the spec (study.BuildSpec): defaults, then the
// file, then the flags that were set. The file's run keys (data, storage,
// workers, timeout) fill the options whose flags were not set.
func specFromOptions(opts *TuneOptions) (study.Spec, error) {
	set := func(flag string) bool { return opts.changed != nil && opts.changed(flag) }
	var layers []study.Layer
	if opts.File != "" {
		file, err := study.ReadFile(opts.File)
		if err != nil {
			return study.Spec{}, err
		}
		layers = append(layers, study.Layer{Keys: file.SpecKeys})
		if file.Study != "" && !set("study") {
			opts.Study = file.Study
		}
		if file.Data != "" && !set("data") {
			opts.Data = file.Data
		}
		if file.Storage != "" && !set("storage") {
			opts.Storage = file.Storage
		}
		if file.Workers != 0 && !set("workers") {
			opts.Workers = file.Workers
		}
		if file.Timeout != "" && !set("timeout") {
			d, err := time.ParseDuration(file.Timeout)
			if err != nil {
				return study.Spec{}, usagef("%s: timeout %q: %v (write e.g. 30m or 2h)", opts.File, file.Timeout, err)
			}
			opts.Timeout = d
		}
	}
	seed := opts.Seed
	flags := study.SpecKeys{
		Arch: opts.Arch, LR: study.ListText(opts.LR), Optimizers: study.ListText(opts.Optimizers), Batch: study.ListText(opts.Batch),
		Sampler: opts.Sampler, Pruner: opts.Pruner, Epochs: opts.Epochs, Trials: opts.Trials, Seed: &seed,
		Val: opts.Val, TrainLimit: opts.TrainLimit, Repeats: opts.Repeats, DeadAfter: &opts.DeadAfter,
	}
	layers = append(layers, study.Layer{Keys: flags, Set: func(key string) bool { return set(flagOfKey(key)) }})
	return study.BuildSpec(opts.Study, layers...)
}

// flagOfKey is the flag that sets a spec key: train_limit is --train-limit.
func flagOfKey(key string) string { return strings.ReplaceAll(key, "_", "-") }

func tuneRun(ctx context.Context, opts *TuneOptions) error {
	spec, err := specFromOptions(opts)
	if err != nil {
		return err
	}
	if err := checkRunFlags(&opts.RunFlags); err != nil {
		return err
	}
	ds, err := opts.f.loadData(opts.Data, spec.Val, spec.TrainLimit)
	if err != nil {
		return err
	}
	spec.DataChecksum, spec.Version = ds.Checksum, version
	store, err := opts.f.openStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	spec, err = study.Prepare(store, spec)
	if err != nil {
		return err
	}
	return runStudy(ctx, store, ds, spec, &opts.RunFlags)
}

func checkRunFlags(f *RunFlags) error {
	if f.Workers < 1 {
		return usagef("--workers must be at least 1 (got %d)", f.Workers)
	}
	if f.Threads < 0 {
		return usagef("--threads must not be negative (got %d; 0 shares the cores among the running trials)", f.Threads)
	}
	if f.Timeout < 0 {
		return usagef("--timeout must not be negative (got %s)", f.Timeout)
	}
	if f.Heartbeat <= 0 {
		return usagef("--heartbeat must be positive (got %s)", f.Heartbeat)
	}
	if f.Patience <= 0 {
		return usagef("--storage-patience must be positive (got %s)", f.Patience)
	}
	return checkKeepModels(f.KeepModels)
}

// runStudy runs a prepared study with progress on stderr and prints the
// outcome and the best trial.
func runStudy(ctx context.Context, store *storage.Storage, ds *data.Dataset, spec study.Spec, f *RunFlags) error {
	var progress study.Progress
	switch {
	case f.Quiet:
	case isTerminal(f.Err):
		progress = study.NewTermProgress(f.Err)
	default:
		progress = study.NewLogProgress(f.Err)
	}
	out, err := study.Run(ctx, store, ds, spec, study.RunOptions{
		Workers: f.Workers, Threads: f.Threads, Timeout: f.Timeout, Heartbeat: f.Heartbeat, StoragePatience: f.Patience, Progress: progress, Train: f.f.Train,
		KeepModels: keepModels(f.KeepModels),
	})
	if out == nil {
		return err
	}
	best, berr := study.Best(store, spec.Name)
	if f.JSON {
		doc := map[string]any{"study": spec.Name, "reason": out.Reason, "finished_this_run": out.Finished, "counts": out.Counts}
		if berr == nil {
			doc["best"] = best
		}
		enc := json.NewEncoder(f.Out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(doc); jerr != nil && err == nil {
			err = jerr
		}
		return err
	}
	c := out.Counts
	fmt.Fprintf(f.Out, "study %s: %s; %d trials this run; %d complete, %d pruned, %d failed, %d waiting\n",
		spec.Name, out.Reason, out.Finished, c.Complete, c.Pruned, c.Fail, c.Waiting)
	if berr == nil {
		fmt.Fprintf(f.Out, "best: trial %d, val accuracy %.4f, test accuracy %s, %s\n", best.Number, *best.ValAcc, fmtPtr(best.TestAcc), formatParams(best.Params))
	}
	nextSteps(f.Out, store, f.Storage, spec.Name)
	if err != nil && out.Reason == "interrupted" {
		fmt.Fprintf(f.Err, "interrupted: running trials were marked FAIL and queued again; continue with: fmtune resume %s\n", spec.Name)
	}
	return err
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
