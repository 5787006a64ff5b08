package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/study"
)

// PlanOptions are the options of `fmtune plan run`.
type PlanOptions struct {
	File       string
	TrainLimit int
	MaxEpochs  int
	RunFlags
}

func newPlanCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Run a written-down experiment: manual runs, tuning and comparisons",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPlanRunCmd(f))
	return cmd
}

func newPlanRunCmd(f *Factory) *cobra.Command {
	opts := &PlanOptions{RunFlags: RunFlags{f: f}}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a plan's steps in order; a rerun continues where it stopped",
		Long: `Run a plan file (YAML): it names studies (arch, search space, sampler,
pruner, epochs, ...) and steps that fill them:

  manual:  {study: S, optimizer: sgd, lr: 0.1, batch: 128[, epochs: N]}
  tune:    {study: S[, trials: N]}
  best_of: {study: S, from: T}     train T's best configuration in S
  compare: [S, T, ...]             print the manual-vs-sampled table

A plan is resumable: a step whose trial is already stored is skipped, and a
tune step continues its study to the target. Running a finished plan again
trains nothing. See examples/fashion-mnist-study.yaml.`,
		Example: `  fmtune plan run examples/fashion-mnist-study.yaml --workers 1   # one CNN trial on both cores is fastest
  fmtune plan run examples/fashion-mnist-study.yaml --train-limit 2000 --max-epochs 2   # a quick look`,
		Args: exactArgs(1, "the plan file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return planRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.TrainLimit, "train-limit", 0, "train every study on the first N training images only (quick checks; stored in the studies' specs)")
	cmd.Flags().IntVar(&opts.MaxEpochs, "max-epochs", 0, "cap every study's and run's epochs (quick checks)")
	opts.RunFlags.bind(cmd)
	return cmd
}

func planRun(ctx context.Context, opts *PlanOptions) error {
	if err := checkRunFlags(&opts.RunFlags); err != nil {
		return err
	}
	if opts.TrainLimit < 0 || opts.MaxEpochs < 0 {
		return usagef("--train-limit and --max-epochs must not be negative")
	}
	plan, err := study.ReadPlan(opts.File)
	if err != nil {
		return err
	}
	storageURL := opts.Storage
	if storageURL == "" {
		storageURL = plan.Storage
	}
	dataDir := opts.Data
	if dataDir == "" {
		dataDir = plan.Data
	}
	store, err := opts.f.openStore(ctx, storageURL)
	if err != nil {
		return err
	}
	defer store.Close()
	var progress study.Progress
	switch {
	case opts.Quiet:
	case isTerminal(opts.Err):
		progress = study.NewTermProgress(opts.Err)
	default:
		progress = study.NewLogProgress(opts.Err)
	}
	if plan.Description != "" {
		fmt.Fprintf(opts.Out, "plan %s: %s\n", opts.File, plan.Description)
	}
	err = study.RunPlan(ctx, store, plan, study.PlanOptions{
		RunOptions: study.RunOptions{Workers: opts.Workers, Threads: opts.Threads, Timeout: opts.Timeout, Heartbeat: opts.Heartbeat, StoragePatience: opts.Patience, Progress: progress, Train: opts.f.Train,
			KeepModels: keepModels(opts.KeepModels)},
		DataDir:    dataDir,
		TrainLimit: opts.TrainLimit,
		MaxEpochs:  opts.MaxEpochs,
		Version:    version,
		Log:        opts.Out,
		Compare: func(names []string) error {
			return compareRun(ctx, &CompareOptions{Studies: names, Storage: storageURL, JSON: opts.JSON, Out: opts.Out, f: opts.f})
		},
	})
	if !opts.JSON {
		nextSteps(opts.Out, store, storageURL, plan.StudyNames()...)
	}
	return err
}
