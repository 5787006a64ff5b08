package main

// Kept models on the command line: --keep-models for the commands that run
// trials, and saving a kept model to a file (best --save, trials
// --save-model).

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/study"
)

// bindKeepModels binds --keep-models to n.
func bindKeepModels(cmd *cobra.Command, n *int) {
	cmd.Flags().IntVar(n, "keep-models", study.DefaultKeepModels, "keep the weights of the study's best N complete trials in the storage, for 'best --save' and 'trials --save-model' (0: none; a model pushed out of the top is deleted)")
}

// checkKeepModels refuses a negative --keep-models.
func checkKeepModels(n int) error {
	if n < 0 {
		return usagef("--keep-models must be 0 (keep none) or more (got %d)", n)
	}
	return nil
}

// keepModels is the study.RunOptions.KeepModels of --keep-models n.
func keepModels(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// saveModel writes the kept model of trial number of the study (negative:
// the best trial) to path and says so on out (as JSON with asJSON).
func saveModel(ctx context.Context, f *Factory, storageFlag, name string, number int, path string, out io.Writer, asJSON bool) error {
	store, err := f.openExistingStore(ctx, storageFlag)
	if err != nil {
		return err
	}
	defer store.Close()
	m, meta, err := study.KeptModelOf(store, name, number)
	if err != nil {
		return err
	}
	if err := models.WriteModelFile(path, m, meta.FileMetadata(version)); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, map[string]any{"file": path, "study": name, "trial": meta.Trial, "arch": meta.Arch,
			"params": meta.Params, "val_accuracy": meta.ValAcc, "test_accuracy": meta.TestAcc})
	}
	fmt.Fprintf(out, "wrote %s: trial %d of study %s (%s, %s), val accuracy %.4f, test accuracy %.4f\n",
		path, meta.Trial, name, meta.Arch, formatParams(meta.Params), meta.ValAcc, meta.TestAcc)
	return nil
}

// saveTrialModel is trials --save-model N --out FILE.
func saveTrialModel(ctx context.Context, opts *QueryOptions) error {
	switch {
	case !opts.saveSet:
		return usagef("--out names the file of --save-model N; add --save-model with the trial's number")
	case opts.Save == "":
		return usagef("--save-model %d needs --out FILE.safetensors", opts.SaveModel)
	case opts.SaveModel < 0:
		return usagef("--save-model takes a trial number (0 or more), got %d", opts.SaveModel)
	case opts.CSV:
		return usagef("--save-model writes a model file; --csv does not apply")
	}
	return saveModel(ctx, opts.f, opts.Storage, opts.Study, opts.SaveModel, opts.Save, opts.Out, opts.JSON)
}

// keptText is the kept models of a study and their size: "3 (2.7 MB)".
func keptText(n, bytes int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d (%.1f MB)", n, float64(bytes)/1e6)
}
