package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// TrainOptions are the flags of fmtune train.
type TrainOptions struct {
	Config     models.Config
	Data       string
	Val        int
	TrainLimit int
	JSON       bool
	Study      string // record the run as a manual trial of this study
	Storage    string
	KeepModels int // --keep-models, with --study

	Out     io.Writer
	changed func(flag string) bool
	f       *Factory
}

func newTrainCmd(f *Factory) *cobra.Command {
	opts := &TrainOptions{f: f}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train one model on Fashion-MNIST and report its test accuracy",
		Long: `Train one model on the Fashion-MNIST training set, print the learning curve
(loss and accuracy on the training and validation sets) epoch by epoch, then
the accuracy on the test set. The seed fixes the initial weights, the shuffle
and the dropout masks: the same command gives the same curve, whatever the
number of threads (--threads; by default every core).

Architectures: ` + strings.Join(models.ArchNames(), ", ") + `
Optimizers:    ` + strings.Join(models.Optimizers(), ", ") + ` (Keras defaults; --momentum for sgd)`,
		Example: `  fmtune train --arch mlp --optimizer sgd --lr 0.1 --batch 128 --epochs 10
  fmtune train --arch cnn --optimizer adam --lr 0.001 --epochs 3 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			opts.changed = cmd.Flags().Changed
			return trainRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	c := &opts.Config
	fl.StringVar(&c.Arch, "arch", "mlp", "architecture: "+strings.Join(models.ArchNames(), ", "))
	fl.StringVar(&c.Optimizer, "optimizer", "sgd", "optimizer: "+strings.Join(models.Optimizers(), ", "))
	fl.Float64Var(&c.LR, "lr", 0.01, "learning rate")
	fl.Float64Var(&c.Momentum, "momentum", 0, "momentum (sgd only)")
	fl.IntVar(&c.Batch, "batch", 128, "batch size")
	fl.IntVar(&c.Epochs, "epochs", 10, "number of epochs")
	fl.Int64Var(&c.Seed, "seed", 1, "seed of the weights, the shuffle and dropout")
	fl.IntVar(&c.Threads, "threads", 0, "threads the training uses (0: every core); the results do not depend on it")
	fl.StringVar(&opts.Data, "data", "", "directory with the Fashion-MNIST IDX files (default: $FMTUNE_DATA, the system copy, the user cache)")
	fl.IntVar(&opts.Val, "val", data.DefaultVal, "validation images, taken from the end of the training file")
	fl.IntVar(&opts.TrainLimit, "train-limit", 0, "train on only the first N training images (0: all)")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON document at the end instead of the table")
	fl.StringVar(&opts.Study, "study", "", "record the run as a manual trial of this study (created with the default search space if it does not exist)")
	fl.StringVar(&opts.Storage, "storage", "", "storage URL for --study (default $FMTUNE_STORAGE, else "+storage.DefaultURL+")")
	bindKeepModels(cmd, &opts.KeepModels)
	return cmd
}

// trainReport is the --json document.
type trainReport struct {
	Config       models.Config       `json:"config"`
	Params       int                 `json:"params"`
	BLAS         string              `json:"blas"`
	DataDir      string              `json:"data_dir"`
	DataChecksum string              `json:"data_checksum"`
	TrainSize    int                 `json:"train_size"`
	ValSize      int                 `json:"val_size"`
	TestSize     int                 `json:"test_size"`
	History      []models.EpochStats `json:"history"`
	TestLoss     float64             `json:"test_loss"`
	TestAccuracy float64             `json:"test_accuracy"`
	Seconds      float64             `json:"seconds"`
}

func trainRun(ctx context.Context, opts *TrainOptions) error {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	if opts.Val < 1 {
		return usagef("--val must be at least 1 (got %d)", opts.Val)
	}
	if opts.TrainLimit < 0 {
		return usagef("--train-limit must not be negative (got %d; 0 means all)", opts.TrainLimit)
	}
	if err := checkKeepModels(opts.KeepModels); err != nil {
		return err
	}
	if opts.Study != "" {
		return trainInStudy(ctx, opts)
	}
	dir, err := opts.f.DataDir(opts.Data)
	if err != nil {
		return err
	}
	ds, err := data.Load(dir, data.Options{Val: opts.Val, TrainLimit: opts.TrainLimit})
	if errors.Is(err, data.ErrOptions) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}

	start := time.Now()
	params := 0
	for _, a := range models.Archs() {
		if a.Name == cfg.Arch {
			params = a.Params
		}
	}
	rep := trainReport{
		Config: cfg, Params: params, BLAS: models.BLASName(),
		DataDir: ds.Dir, DataChecksum: ds.Checksum,
		TrainSize: ds.Train.Len(), ValSize: ds.Val.Len(), TestSize: ds.Test.Len(),
	}
	out := opts.Out
	var hooks models.Hooks
	if !opts.JSON {
		momentum := ""
		if cfg.Momentum != 0 {
			momentum = fmt.Sprintf(" momentum %g", cfg.Momentum)
		}
		fmt.Fprintf(out, "arch %s (%s parameters), optimizer %s lr %g%s, batch %d, %d epochs, seed %d\n",
			cfg.Arch, thousands(params), cfg.Optimizer, cfg.LR, momentum, cfg.Batch, cfg.Epochs, cfg.Seed)
		fmt.Fprintf(out, "data %s: %d train, %d validation, %d test images; BLAS %s\n\n",
			ds.Dir, ds.Train.Len(), ds.Val.Len(), ds.Test.Len(), models.BLASName())
		printTableHeader(out)
		hooks.OnEpoch = func(e models.EpochStats) error {
			printEpochRow(out, e)
			return nil
		}
	}
	res, err := models.Train(ctx, cfg, ds.Train, ds.Val, hooks)
	if err != nil {
		return err
	}
	rep.History = res.History
	if rep.TestLoss, rep.TestAccuracy, err = res.Model.Evaluate(ds.Test); err != nil {
		return err
	}
	rep.Seconds = time.Since(start).Seconds()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "\ntest accuracy %.4f, test loss %.4f (%d images); %.1f s in all\n",
		rep.TestAccuracy, rep.TestLoss, ds.Test.Len(), rep.Seconds)
	return nil
}

// trainInStudy trains the configuration as a manual trial of opts.Study, on
// the same data split as the study's other trials.
func trainInStudy(ctx context.Context, opts *TrainOptions) error {
	cfg := opts.Config
	if cfg.Momentum != 0 {
		return usagef("--momentum is not part of a study's search space; train with momentum without --study")
	}
	store, err := opts.f.openStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	m := study.Manual{Arch: cfg.Arch, Point: search.Point{LR: cfg.LR, Optimizer: cfg.Optimizer, Batch: cfg.Batch}, Epochs: cfg.Epochs, Seed: cfg.Seed}
	spec, created, err := study.StudyForManual(store, opts.Study, m, opts.Val, opts.TrainLimit, func(key string) bool { return opts.changed(flagOfKey(key)) })
	if err != nil {
		return err
	}
	ds, err := opts.f.loadData(opts.Data, spec.Val, spec.TrainLimit)
	if err != nil {
		return err
	}
	if created {
		spec.DataChecksum, spec.Version = ds.Checksum, version
		if spec, err = study.Prepare(store, spec); err != nil {
			return err
		}
		fmt.Fprintf(opts.Out, "created study %s (arch %s, default search space)\n", spec.Name, spec.Arch)
	} else if err := study.CheckData(spec, ds); err != nil {
		return err
	}
	var progress study.Progress
	if !opts.JSON {
		progress = &epochTable{out: opts.Out}
		printTableHeader(opts.Out)
	}
	info, err := study.RunManual(ctx, store, ds, spec, m, study.RunOptions{Threads: opts.Config.Threads, Progress: progress, Train: opts.f.Train, KeepModels: keepModels(opts.KeepModels)})
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.Out, map[string]any{"study": spec.Name, "trial": info})
	}
	fmt.Fprintf(opts.Out, "\nrecorded as trial %d of study %s (manual): %s", info.Number, spec.Name, info.State)
	if info.TestAcc != nil {
		fmt.Fprintf(opts.Out, ", val accuracy %s, test accuracy %.4f", fmtPtr(info.ValAcc), *info.TestAcc)
	}
	if info.FailReason != "" {
		fmt.Fprintf(opts.Out, " (%s)", info.FailReason)
	}
	fmt.Fprintln(opts.Out)
	return nil
}

// epochTable prints a manual trial's epochs as rows of the train table.
type epochTable struct {
	study.NopProgress
	out io.Writer
}

func (p *epochTable) Epoch(_, _ int, e models.EpochStats) { printEpochRow(p.out, e) }

func printTableHeader(out io.Writer) {
	fmt.Fprintf(out, "%5s  %10s  %9s  %10s  %9s  %8s  %10s\n",
		"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples/s")
}

func printEpochRow(out io.Writer, e models.EpochStats) {
	fmt.Fprintf(out, "%5d  %10.4f  %9.4f  %10.4f  %9.4f  %8.1f  %10s\n",
		e.Epoch, e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc, e.Seconds, thousands(int(e.SamplesPerSec+0.5)))
}

// thousands formats n with comma separators: 225034 -> 225,034.
func thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
