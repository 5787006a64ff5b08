package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
)

// EvaluateOptions are the options of fmtune evaluate.
type EvaluateOptions struct {
	f        *Factory
	File     string
	Data     string
	JSON     bool
	Out, Err io.Writer
}

func newEvaluateCmd(f *Factory) *cobra.Command {
	opts := &EvaluateOptions{f: f}
	cmd := &cobra.Command{
		Use:   "evaluate FILE.safetensors [--data DIR] [--json]",
		Short: "Evaluate a saved model on the Fashion-MNIST test set",
		Long: `Evaluate a model file written by 'fmtune best --save' or 'fmtune trials
--save-model' on the 10,000 test images: the accuracy, the mean cross-entropy
loss, the accuracy of each class and the confusion matrix (rows: the true
class, columns: the predicted one). A file that is not an fmtune model (or
whose tensors do not fit its architecture) is refused with the reason. When
the data's checksum differs from the one the model was trained with, a note
says so.`,
		Example: `  fmtune best demo --save best.safetensors
  fmtune evaluate best.safetensors
  fmtune evaluate best.safetensors --json | jq .test_accuracy`,
		Args: exactArgs(1, "the model file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File, opts.Out, opts.Err = args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()
			return evaluateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Data, "data", "", "Fashion-MNIST directory (default: $FMTUNE_DATA, "+data.SystemDir+", user cache)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// classResult is one class of the --json document.
type classResult struct {
	Class    int     `json:"class"`
	Name     string  `json:"name"`
	Images   int     `json:"images"`
	Accuracy float64 `json:"accuracy"`
}

// evaluation is the --json document of fmtune evaluate.
type evaluation struct {
	File         string            `json:"file"`
	Arch         string            `json:"arch"`
	Metadata     map[string]string `json:"metadata"`
	DataDir      string            `json:"data_dir"`
	DataChecksum string            `json:"data_checksum"`
	DataMatches  *bool             `json:"data_matches"` // null: the file names no checksum
	TestImages   int               `json:"test_images"`
	TestAccuracy float64           `json:"test_accuracy"`
	TestLoss     float64           `json:"test_loss"`
	Classes      []classResult     `json:"classes"`
	Confusion    models.Confusion  `json:"confusion"` // [true][predicted]
}

func evaluateRun(ctx context.Context, opts *EvaluateOptions) error {
	m, meta, err := models.ReadModelFile(opts.File)
	if err != nil {
		return err
	}
	dir, err := opts.f.DataDir(opts.Data)
	if err != nil {
		return err
	}
	// Only the test set is used; the training file is read for the checksum.
	ds, err := data.Load(dir, data.Options{Val: 1})
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	loss, conf, err := m.EvaluateConfusion(ds.Test)
	if err != nil {
		return err
	}
	acc := conf.Accuracy()
	ev := evaluation{File: opts.File, Arch: m.Arch(), Metadata: meta, DataDir: ds.Dir, DataChecksum: ds.Checksum,
		TestImages: ds.Test.Len(), TestAccuracy: acc, TestLoss: loss, Confusion: conf}
	if sum := meta["data_sha256"]; sum != "" {
		same := sum == ds.Checksum
		ev.DataMatches = &same
		if !same {
			fmt.Fprintf(opts.Err, "note: the model was trained on other data (checksum %s) than %s (%s)\n", prefixOf(sum, 12), ds.Dir, prefixOf(ds.Checksum, 12))
		}
	}
	perClass := conf.ClassAccuracy()
	for c := range data.Classes {
		n := 0
		for _, v := range conf[c] {
			n += v
		}
		ev.Classes = append(ev.Classes, classResult{Class: c, Name: data.ClassNames[c], Images: n, Accuracy: perClass[c]})
	}
	if opts.JSON {
		return writeJSON(opts.Out, ev)
	}
	w := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "model\t%s (%s%s)\n", opts.File, m.Arch(), describeMeta(meta))
	fmt.Fprintf(w, "test set\t%d images in %s\n", ds.Test.Len(), ds.Dir)
	fmt.Fprintf(w, "accuracy\t%.4f\n", acc)
	fmt.Fprintf(w, "loss\t%.4f\n", loss)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(opts.Out)
	w = tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CLASS\tNAME\tACCURACY\tIMAGES")
	for _, c := range ev.Classes {
		fmt.Fprintf(w, "%d\t%s\t%.4f\t%d\n", c.Class, c.Name, c.Accuracy, c.Images)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(opts.Out)
	return writeConfusion(opts.Out, conf)
}

// writeConfusion prints a confusion matrix with the class names: rows are
// the true classes, columns the predicted ones (by number).
func writeConfusion(out io.Writer, conf models.Confusion) error {
	var b strings.Builder
	b.WriteString("confusion matrix (rows: true class; columns: predicted class)\n")
	fmt.Fprintf(&b, "%-14s", "")
	for c := range data.Classes {
		fmt.Fprintf(&b, "%6d", c)
	}
	b.WriteString("\n")
	for c, row := range conf {
		fmt.Fprintf(&b, "%-14s", fmt.Sprintf("%d %s", c, data.ClassNames[c]))
		for _, v := range row {
			fmt.Fprintf(&b, "%6d", v)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// describeMeta is ", study S trial N: params" from a model file's metadata.
func describeMeta(meta map[string]string) string {
	if meta["study"] == "" {
		return ""
	}
	s := fmt.Sprintf(", study %s trial %s", meta["study"], meta["trial"])
	var params map[string]any
	if json.Unmarshal([]byte(meta["params"]), &params) == nil && len(params) > 0 {
		s += ": " + formatParams(params)
	}
	return s
}

func prefixOf(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
