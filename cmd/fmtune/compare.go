package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
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
(sampled, grid and retried trials count as sampled), one row per study and
source:

  trials by state    complete, pruned, failed, running, waiting
  best val / test    the best validation accuracy, and the test accuracy of
                     that same trial
  config             its learning rate, optimizer and batch size
  epochs             epochs trained, summed over the trials
  compute s          training seconds, summed over the trials (a failed trial
                     counts the seconds of the epochs it ran)
  to best s          compute seconds summed over that source's trials in the
                     order they finished, up to and including the best one
  gap                val_loss - train_loss in the best trial's last epoch:
                     the overfitting signal (large and positive: overfit)`,
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
	fmt.Fprintln(w, "STUDY\tSOURCE\tTRIALS\tCOMPLETE\tPRUNED\tFAIL\tRUNNING\tWAITING\tBEST VAL\tTEST\tTRIAL\tCONFIG\tEPOCHS\tCOMPUTE S\tTO BEST S\tGAP")
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
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%.1f\t%s\t%s\n",
			r.Study, r.Source, r.Trials, r.Complete, r.Pruned, r.Fail, r.Running, r.Waiting,
			bestVal, test, trial, config, r.Epochs, r.Seconds, toBest, gap)
	}
	return w.Flush()
}
