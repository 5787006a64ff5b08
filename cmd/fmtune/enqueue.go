package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"
)

// EnqueueOptions are the options of `fmtune enqueue`.
type EnqueueOptions struct {
	Study     string
	Storage   string
	LR        float64
	Optimizer string
	Batch     int
	Epochs    int
	Seed      int64
	Out       io.Writer
	changed   func(string) bool
	f         *Factory
}

func newEnqueueCmd(f *Factory) *cobra.Command {
	opts := &EnqueueOptions{f: f}
	cmd := &cobra.Command{
		Use:   "enqueue NAME --lr LR --optimizer OPT --batch N",
		Short: "Queue a hand-picked configuration for the next workers of a study",
		Long: `Queue a configuration you chose by hand: the next worker of the study (a
'tune', 'resume' or 'worker' process) trains it before anything sampled, and
it is recorded as a manual trial, never pruned, in addition to the study's
target of sampled trials. The configuration must lie in the study's search
space, so that it compares with the sampled trials.`,
		Example: `  fmtune enqueue demo --lr 0.1 --optimizer sgd --batch 128
  fmtune resume demo`,
		Args: exactArgs(1, "the study name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Study, opts.Out, opts.changed = args[0], cmd.OutOrStdout(), cmd.Flags().Changed
			for _, flag := range []string{"lr", "optimizer", "batch"} {
				if !opts.changed(flag) {
					return usagef("enqueue needs --lr, --optimizer and --batch (missing --%s)", flag)
				}
			}
			return enqueueRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.Float64Var(&opts.LR, "lr", 0, "learning rate")
	fl.StringVar(&opts.Optimizer, "optimizer", "", "optimizer: sgd, adam, nadam or rmsprop")
	fl.IntVar(&opts.Batch, "batch", 0, "batch size")
	fl.IntVar(&opts.Epochs, "epochs", 0, "epochs (default: the study's)")
	fl.Int64Var(&opts.Seed, "seed", 0, "training seed (default: derived from the study seed and the trial number)")
	fl.StringVar(&opts.Storage, "storage", "", "storage URL (default $FMTUNE_STORAGE, else sqlite:///fmtune.db)")
	return cmd
}

func enqueueRun(ctx context.Context, opts *EnqueueOptions) error {
	if opts.Epochs < 1 && opts.changed != nil && opts.changed("epochs") {
		return usagef("--epochs must be at least 1 (got %d); leave it out for the study's", opts.Epochs)
	}
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	spec, id, err := study.LoadSpec(store, opts.Study)
	if err != nil {
		return err
	}
	m := study.Manual{Arch: spec.Arch, Point: search.Point{LR: opts.LR, Optimizer: opts.Optimizer, Batch: opts.Batch}}
	if err := study.CheckManual(spec, m); err != nil {
		return err
	}
	q := study.Queued{Point: m.Point, Source: study.SourceManual, RetryOf: -1, Epochs: opts.Epochs}
	if opts.changed("seed") {
		q.Seed = &opts.Seed
	}
	if err := study.Enqueue(store, id, spec.Space, q); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "queued %s in study %s (manual); run it with: fmtune resume %s\n", m.Point, opts.Study, opts.Study)
	return nil
}
