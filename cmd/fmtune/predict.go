package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
)

// PredictOptions are the options of fmtune predict.
type PredictOptions struct {
	File, Images string
	Out          string // "" or "-": stdout
	Stdout       io.Writer
}

func newPredictCmd() *cobra.Command {
	opts := &PredictOptions{}
	cmd := &cobra.Command{
		Use:   "predict FILE.safetensors IMAGES [--out FILE.csv]",
		Short: "Classify images with a saved model (CSV out)",
		Long: `Classify every image of an IDX image file (28x28 unsigned bytes, gzipped
when its name ends in .gz, like Fashion-MNIST's own) with a model file
written by 'fmtune best --save', and write one CSV row per image, in order:
index (from 0), class (0-9) and the class name.`,
		Example: `  fmtune predict best.safetensors /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > predictions.csv`,
		Args:    exactArgs(2, "the model file and the IDX image file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File, opts.Images, opts.Stdout = args[0], args[1], cmd.OutOrStdout()
			return predictRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Out, "out", "o", "", "write the CSV to this file (default: standard output)")
	return cmd
}

func predictRun(ctx context.Context, opts *PredictOptions) error {
	m, _, err := models.ReadModelFile(opts.File)
	if err != nil {
		return err
	}
	set, err := data.ReadImages(opts.Images)
	if err != nil {
		return fmt.Errorf("read images: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pred, err := m.Predict(set)
	if err != nil {
		return err
	}
	write := func(w io.Writer) error {
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"index", "class", "name"})
		for i, p := range pred {
			_ = cw.Write([]string{strconv.Itoa(i), strconv.Itoa(int(p)), data.ClassNames[p]})
		}
		cw.Flush()
		return cw.Error()
	}
	if opts.Out == "" || opts.Out == "-" {
		return write(opts.Stdout)
	}
	return writeFileAtomic(opts.Out, write)
}

// writeFileAtomic writes path through fill: a temporary file in the same
// directory, renamed over path only when fill succeeded.
func writeFileAtomic(path string, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fmtune-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := fill(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
