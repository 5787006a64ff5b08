package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/study"
)

// ResumeOptions are the options of `fmtune resume` and `fmtune worker`.
type ResumeOptions struct {
	Study  string
	Trials int
	RunFlags
}

func newResumeCmd(f *Factory) *cobra.Command {
	opts := &ResumeOptions{RunFlags: RunFlags{f: f}}
	cmd := &cobra.Command{
		Use:   "resume NAME [--trials N] [--workers N] [--timeout D]",
		Short: "Continue a study with its stored spec",
		Long: `Continue a stopped or crashed study exactly as it was launched: the search
space, sampler, pruner, epochs and seed come from the storage. Only the
budget (--trials, the study's total target), --workers and --timeout may
change. Trials left RUNNING by a killed process are marked FAIL once their
heartbeat is stale and their parameters are tried again.`,
		Example: `  fmtune resume demo
  fmtune resume demo --trials 40 --workers 2`,
		Args: exactArgs(1, "the study name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Study = args[0]
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return resumeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Trials, "trials", 0, "new target number of finished trials for the study (0: keep the stored one)")
	opts.RunFlags.bind(cmd)
	return cmd
}

func newWorkerCmd(f *Factory) *cobra.Command {
	opts := &ResumeOptions{RunFlags: RunFlags{f: f}}
	cmd := &cobra.Command{
		Use:   "worker --study NAME --storage URL",
		Short: "Join an existing study as one more worker process (for many machines)",
		Long: `Join a study that was created with 'fmtune tune' and run its trials with
the stored spec, next to any other workers on this or other machines that
share the same storage (use PostgreSQL across machines). This is what a batch
scheduler or a Kubernetes Job runs. It stops when the study's target is
reached or its grid is complete.`,
		Example: `  fmtune worker --study big --storage postgresql://fmtune:secret@db:5432/fmtune --workers 2`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Study == "" {
				return usagef("worker needs --study NAME")
			}
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return resumeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Study, "study", "", "name of the study to join (required)")
	opts.RunFlags.bind(cmd)
	return cmd
}

func resumeRun(ctx context.Context, opts *ResumeOptions) error {
	if err := checkRunFlags(&opts.RunFlags); err != nil {
		return err
	}
	if opts.Trials < 0 {
		return usagef("--trials must be 0 (keep the stored target) or more (got %d)", opts.Trials)
	}
	store, err := opts.f.openStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	spec, _, err := study.LoadSpec(store, opts.Study)
	if err != nil {
		return err
	}
	ds, err := opts.f.loadData(opts.Data, spec.Val, spec.TrainLimit)
	if err != nil {
		return err
	}
	if err := study.CheckData(spec, ds); err != nil {
		return err
	}
	if spec, err = study.SetTarget(store, opts.Study, opts.Trials); err != nil {
		return err
	}
	return runStudy(ctx, store, ds, spec, &opts.RunFlags)
}
