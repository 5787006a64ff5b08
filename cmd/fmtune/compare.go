package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/study"
)

// CompareOptions are the options of fmtune compare.
type CompareOptions struct {
	f       *Factory
	Studies []string
	Storage string
	JSON    bool
	Out     io.Writer
}

func newCompareCmd(f *Factory) *cobra.Command {
	opts := &CompareOptions{f: f}
	cmd := &cobra.Command{
		Use:   "compare NAME... [--json]",
		Short: "Compare manual and automated tuning, per study",
		Long: `Compare the manual trials of each study with the ones the engine chose
(grid points and retries of interrupted or crashed trials count as sampled,
and the TRIALS column says how many of them there are), one row per study
and source:

  trials by state    complete, pruned, failed, running, waiting
  best val / test    the best validation accuracy, and the test accuracy of
                     that same trial
  config             its learning rate, optimizer and batch size
  epochs             epochs trained, summed over the trials (with the part
                     done of an epoch a failure or Ctrl-C cut short)
  compute s          training seconds, summed over the trials, whatever their
                     end (failed and interrupted ones included)
  to best s          compute seconds summed over that source's trials in the
                     order they finished, up to and including the best one
  val-train loss     validation loss minus training loss in the best trial's
                     last epoch: the overfitting signal (large and positive:
                     overfit)`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s needs at least one study name (usage: %s)", cmd.CommandPath(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Studies, opts.Out = args, cmd.OutOrStdout()
			return compareRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Storage, "storage", "", "storage URL (default $FMTUNE_STORAGE, else sqlite:///fmtune.db)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func compareRun(ctx context.Context, opts *CompareOptions) error {
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	rows, err := study.Compare(store, opts.Studies)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.Out, rows)
	}
	w := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STUDY\tSOURCE\tTRIALS\tCOMPLETE\tPRUNED\tFAIL\tRUNNING\tWAITING\tBEST VAL\tTEST\tTRIAL\tCONFIG\tEPOCHS\tCOMPUTE S\tTO BEST S\tVAL-TRAIN LOSS")
	for _, r := range rows {
		bestVal, test, trial, config, toBest, gap := "-", "-", "-", "-", "-", "-"
		if b := r.Best; b != nil {
			bestVal, test, trial = fmtPtr(&b.ValAcc), fmtPtr(b.TestAcc), strconv.Itoa(b.Trial)
			if r := b.Repeats; r != nil {
				bestVal = fmt.Sprintf("%.4f±%.4f (n=%d)", r.Mean, r.Std, r.N)
				test = fmt.Sprintf("%.4f±%.4f", r.TestMean, r.TestStd)
			}
			config = fmt.Sprintf("lr=%s %s batch=%d", strconv.FormatFloat(b.LR, 'g', 4, 64), b.Optimizer, b.Batch)
			toBest = fmt.Sprintf("%.1f", b.SecondsToBest)
			if b.OverfitGap != nil {
				gap = fmt.Sprintf("%+.3f", *b.OverfitGap)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n",
			r.Study, r.Source, trialsText(r), r.Complete, r.Pruned, r.Fail, r.Running, r.Waiting,
			bestVal, test, trial, config, study.FormatEpochs(r.Epochs), r.Seconds, toBest, gap)
	}
	return w.Flush()
}

// trialsText is a source's number of trials, with its grid points and
// retries named: "14 (2 retries)".
func trialsText(r study.SourceSummary) string {
	var parts []string
	if r.Grid > 0 {
		parts = append(parts, plural(r.Grid, "grid point", "grid points"))
	}
	if r.Retry > 0 {
		parts = append(parts, plural(r.Retry, "retry", "retries"))
	}
	if len(parts) == 0 {
		return strconv.Itoa(r.Trials)
	}
	return fmt.Sprintf("%d (%s)", r.Trials, strings.Join(parts, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
