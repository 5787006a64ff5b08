package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/study/report"
)

// ReportOptions are the options of fmtune report.
type ReportOptions struct {
	f       *Factory
	Studies []string
	Storage string
	Out     string
	Stdout  io.Writer
}

func newReportCmd(f *Factory) *cobra.Command {
	opts := &ReportOptions{f: f}
	cmd := &cobra.Command{
		Use:   "report NAME... --out report.html",
		Short: "Write an HTML report on studies: manual vs automated, plots",
		Long: `Write one self-contained HTML file (no network: inline SVG plots, no
external fonts or scripts) with, for each study: the manual-versus-automated
table of 'fmtune compare', the optimization history, the learning curves of
the best manual and best sampled trials, accuracy by learning rate, optimizer
and batch size, and the pruning picture.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s needs at least one study name (usage: %s)", cmd.CommandPath(), cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Studies, opts.Stdout = args, cmd.OutOrStdout()
			if opts.Out == "" {
				return usagef("%s needs --out FILE.html", cmd.CommandPath())
			}
			return reportRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "the HTML file to write (required)")
	cmd.Flags().StringVar(&opts.Storage, "storage", "", "storage URL (default $FMTUNE_STORAGE, else sqlite:///fmtune.db)")
	return cmd
}

func reportRun(ctx context.Context, opts *ReportOptions) error {
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	inputs, err := report.Load(store, opts.Studies)
	if err != nil {
		return err
	}
	// Write next to the target and rename, so a failure leaves no half report.
	tmp, err := os.CreateTemp(filepath.Dir(opts.Out), ".fmtune-report-*.html")
	if err != nil {
		return reportWriteError(opts.Out, err)
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := report.Write(bw, inputs, report.Options{}); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return reportWriteError(opts.Out, err)
	}
	if err := tmp.Close(); err != nil {
		return reportWriteError(opts.Out, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return reportWriteError(opts.Out, err)
	}
	if err := os.Rename(tmp.Name(), opts.Out); err != nil {
		return reportWriteError(opts.Out, err)
	}
	fmt.Fprintf(opts.Stdout, "wrote %s\n", opts.Out)
	return nil
}

// reportWriteError names the file the user asked for, not the temporary
// file beside it, and the fix when its directory is missing.
func reportWriteError(out string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	dir := filepath.Dir(out)
	if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("write report %q: the directory %q does not exist; create it (mkdir -p %s) or choose another --out", out, dir, dir)
	}
	return fmt.Errorf("write report %q: %w", out, err)
}
