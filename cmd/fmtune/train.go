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
)

// TrainOptions are the flags of fmtune train.
type TrainOptions struct {
	Config     models.Config
	Data       string
	Val        int
	TrainLimit int
	JSON       bool

	Out io.Writer
}

func newTrainCmd() *cobra.Command {
	opts := &TrainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train one model on Fashion-MNIST and report its test accuracy",
		Long: `Train one model on the Fashion-MNIST training set, print the learning curve
(loss and accuracy on the training and validation sets) epoch by epoch, then
the accuracy on the test set. The seed fixes the initial weights, the shuffle
and the dropout masks: the same command gives the same curve.

Architectures: ` + strings.Join(models.ArchNames(), ", ") + `
Optimizers:    ` + strings.Join(models.Optimizers(), ", ") + ` (Keras defaults; --momentum for sgd)`,
		Example: `  fmtune train --arch mlp --optimizer sgd --lr 0.1 --batch 128 --epochs 10
  fmtune train --arch cnn --optimizer adam --lr 0.001 --epochs 3 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return trainRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	c := &opts.Config
	f.StringVar(&c.Arch, "arch", "mlp", "architecture: "+strings.Join(models.ArchNames(), ", "))
	f.StringVar(&c.Optimizer, "optimizer", "sgd", "optimizer: "+strings.Join(models.Optimizers(), ", "))
	f.Float64Var(&c.LR, "lr", 0.01, "learning rate")
	f.Float64Var(&c.Momentum, "momentum", 0, "momentum (sgd only)")
	f.IntVar(&c.Batch, "batch", 128, "batch size")
	f.IntVar(&c.Epochs, "epochs", 10, "number of epochs")
	f.Int64Var(&c.Seed, "seed", 1, "seed of the weights, the shuffle and dropout")
	f.StringVar(&opts.Data, "data", "", "directory with the Fashion-MNIST IDX files (default: $FMTUNE_DATA, the system copy, the user cache)")
	f.IntVar(&opts.Val, "val", data.DefaultVal, "validation images, taken from the end of the training file")
	f.IntVar(&opts.TrainLimit, "train-limit", 0, "train on only the first N training images (0: all)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document at the end instead of the table")
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
	dir, err := data.Locate(opts.Data)
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
		fmt.Fprintf(out, "%5s  %10s  %9s  %10s  %9s  %8s  %10s\n",
			"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples/s")
		hooks.OnEpoch = func(e models.EpochStats) error {
			fmt.Fprintf(out, "%5d  %10.4f  %9.4f  %10.4f  %9.4f  %8.1f  %10s\n",
				e.Epoch, e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc, e.Seconds, thousands(int(e.SamplesPerSec+0.5)))
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
