package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"
)

// QueryOptions are the options of best, studies and trials.
type QueryOptions struct {
	f       *Factory
	Study   string
	Storage string
	State   string
	JSON    bool
	CSV     bool
	Out     io.Writer
	// Saving a kept model (keep.go): best --save FILE; trials --save-model
	// N --out FILE.
	Save      string
	SaveModel int
	saveSet   bool
}

func bindQueryFlags(cmd *cobra.Command, opts *QueryOptions) {
	cmd.Flags().StringVar(&opts.Storage, "storage", "", "storage URL (default $FMTUNE_STORAGE, else sqlite:///fmtune.db)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
}

func newBestCmd(f *Factory) *cobra.Command {
	opts := &QueryOptions{f: f}
	cmd := &cobra.Command{
		Use:   "best NAME [--json] [--save FILE.safetensors]",
		Short: "Show the best trial of a study, or save its model",
		Long: `Show the complete trial with the highest validation accuracy: its number,
architecture, parameters, validation and test accuracy, epochs, duration,
seed and data split, and the 'fmtune train' command that trains it again
(retrain_command in --json). Exits 1 when the study has no complete trial
yet.

--save FILE writes the best trial's trained model (kept in the storage, see
--keep-models on tune) to FILE in the safetensors format, for 'fmtune
evaluate', 'fmtune predict' or PyTorch (tensor names and layouts: README).`,
		Args: exactArgs(1, "the study name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Study, opts.Out = args[0], cmd.OutOrStdout()
			if opts.Save != "" {
				return saveModel(cmd.Context(), opts.f, opts.Storage, opts.Study, -1, opts.Save, opts.Out, opts.JSON)
			}
			return bestRun(cmd.Context(), opts)
		},
	}
	bindQueryFlags(cmd, opts)
	cmd.Flags().StringVar(&opts.Save, "save", "", "write the best trial's model to this file (safetensors) instead of showing the trial")
	return cmd
}

func bestRun(ctx context.Context, opts *QueryOptions) error {
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	best, err := study.Best(store, opts.Study)
	if err != nil {
		return err
	}
	rep := bestReport{TrialInfo: best, Study: opts.Study}
	if spec, _, err := study.LoadSpec(store, opts.Study); err == nil {
		rep.Arch, rep.Val, rep.TrainLimit, rep.DataChecksum = spec.Arch, spec.Val, spec.TrainLimit, spec.DataChecksum
		rep.Retrain = retrainCommand(spec, best)
	}
	if opts.JSON {
		return writeJSON(opts.Out, rep)
	}
	w := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "study\t%s\n", opts.Study)
	fmt.Fprintf(w, "trial\t%d (%s)\n", best.Number, best.Source)
	if rep.Arch != "" {
		fmt.Fprintf(w, "arch\t%s\n", rep.Arch)
	}
	fmt.Fprintf(w, "params\t%s\n", formatParams(best.Params))
	fmt.Fprintf(w, "val accuracy\t%s\n", fmtPtr(best.ValAcc))
	fmt.Fprintf(w, "test accuracy\t%s\n", fmtPtr(best.TestAcc))
	if r := best.Repeats; r != nil {
		fmt.Fprintf(w, "over %d repeats\tval %.4f ± %.4f, test %.4f ± %.4f (mean ± std; trials %s)\n", r.N, r.Mean, r.Std, r.TestMean, r.TestStd, joinInts(r.Trials))
	}
	fmt.Fprintf(w, "epochs\t%d\n", best.Epochs)
	fmt.Fprintf(w, "duration\t%.1fs\n", best.Seconds)
	if best.Seed != nil {
		fmt.Fprintf(w, "seed\t%d\n", *best.Seed)
	}
	if rep.Arch != "" {
		train := "the rest for training"
		if rep.TrainLimit > 0 {
			train = fmt.Sprintf("the first %d of the rest for training", rep.TrainLimit)
		}
		fmt.Fprintf(w, "data\tthe last %d training images for validation, %s\n", rep.Val, train)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if rep.Retrain != "" {
		fmt.Fprintf(opts.Out, "\nretrain it (same data, seed and curve):\n  %s\n", rep.Retrain)
	}
	return nil
}

// bestReport is what best prints: the trial, and what it takes to train it
// again (the study's arch and data split; empty for a study fmtune did not
// create).
type bestReport struct {
	study.TrialInfo
	Study        string `json:"study"`
	Arch         string `json:"arch,omitempty"`
	Val          int    `json:"val,omitempty"`
	TrainLimit   int    `json:"train_limit"`
	DataChecksum string `json:"data_checksum,omitempty"`
	Retrain      string `json:"retrain_command,omitempty"`
}

// retrainCommand is the fmtune train command line that trains trial t of
// the study with spec again, with the same configuration, seed and data.
func retrainCommand(spec study.Spec, t study.TrialInfo) string {
	p, err := search.PointFromParams(t.Params)
	if err != nil || t.Seed == nil {
		return ""
	}
	args := []string{"fmtune", "train", "--arch", spec.Arch, "--optimizer", p.Optimizer,
		"--lr", strconv.FormatFloat(p.LR, 'g', -1, 64), "--batch", strconv.Itoa(p.Batch),
		"--epochs", strconv.Itoa(t.Epochs), "--seed", strconv.FormatInt(*t.Seed, 10), "--val", strconv.Itoa(spec.Val)}
	if spec.TrainLimit > 0 {
		args = append(args, "--train-limit", strconv.Itoa(spec.TrainLimit))
	}
	return strings.Join(args, " ")
}

func newStudiesCmd(f *Factory) *cobra.Command {
	opts := &QueryOptions{f: f}
	cmd := &cobra.Command{
		Use:   "studies [--json]",
		Short: "List the studies in the storage",
		Long: `List the studies in one storage: --storage URL, else $FMTUNE_STORAGE, else
fmtune.db in the current directory. The first line names the storage read,
so a study stored elsewhere is not taken for lost.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return studiesRun(cmd.Context(), opts)
		},
	}
	bindQueryFlags(cmd, opts)
	return cmd
}

func studiesRun(ctx context.Context, opts *QueryOptions) error {
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	list, err := study.Studies(store)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.Out, list)
	}
	if len(list) == 0 {
		fmt.Fprintf(opts.Out, "no studies yet in %s; start one with: fmtune tune --study NAME\n", storageText(store))
		return nil
	}
	fmt.Fprintf(opts.Out, "studies in %s (another storage: --storage URL or $FMTUNE_STORAGE)\n\n", storageText(store))
	w := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STUDY\tARCH\tSAMPLER\tCOMPLETE\tPRUNED\tFAIL\tRUNNING\tWAITING\tBEST VAL ACC\tBEST TRIAL\tKEPT MODELS")
	for _, s := range list {
		arch, sampler := s.Arch, s.Sampler
		if !s.Fmtune {
			arch, sampler = "(not fmtune)", "-"
		}
		bestTrial := "-"
		if s.BestTrial != nil {
			bestTrial = strconv.Itoa(*s.BestTrial)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, arch, sampler,
			s.Complete, s.Pruned, s.Fail, s.Running, s.Waiting, fmtPtr(s.Best), bestTrial, keptText(s.KeptModels, s.KeptModelBytes))
	}
	return w.Flush()
}

func newTrialsCmd(f *Factory) *cobra.Command {
	opts := &QueryOptions{f: f}
	cmd := &cobra.Command{
		Use:   "trials NAME [--state complete|pruned|fail|running|waiting] [--json|--csv]",
		Short: "List the trials of a study, one row each",
		Args:  exactArgs(1, "the study name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Study, opts.Out = args[0], cmd.OutOrStdout()
			if opts.JSON && opts.CSV {
				return usagef("choose one of --json and --csv")
			}
			if opts.saveSet = cmd.Flags().Changed("save-model"); opts.saveSet || opts.Save != "" {
				return saveTrialModel(cmd.Context(), opts)
			}
			return trialsRun(cmd.Context(), opts)
		},
	}
	bindQueryFlags(cmd, opts)
	cmd.Flags().StringVar(&opts.State, "state", "", "only trials in this state: "+strings.Join(study.StateNames, ", "))
	cmd.Flags().BoolVar(&opts.CSV, "csv", false, "print CSV")
	cmd.Flags().IntVar(&opts.SaveModel, "save-model", 0, "write the kept model of trial N to --out FILE (safetensors) instead of listing the trials")
	cmd.Flags().StringVar(&opts.Save, "out", "", "the model file --save-model writes")
	return cmd
}

func trialsRun(ctx context.Context, opts *QueryOptions) error {
	if opts.State != "" {
		if err := validState(opts.State); err != nil {
			return err
		}
	}
	store, err := opts.f.openExistingStore(ctx, opts.Storage)
	if err != nil {
		return err
	}
	defer store.Close()
	trials, err := study.Trials(store, opts.Study, opts.State)
	if err != nil {
		return err
	}
	if opts.JSON {
		for i := range trials {
			trials[i].Curve = nil // keep rows short; the curve is in the storage
		}
		return writeJSON(opts.Out, trials)
	}
	// The study's own parameters: fmtune's lr, optimizer and batch, or
	// whatever a study written by Optuna named them.
	names := paramNames(trials)
	missing := "-"
	if opts.CSV {
		missing = "" // pandas reads an empty cell as NaN, "-" as text
	}
	orMissing := func(s string) string {
		if s == "-" {
			return missing
		}
		return s
	}
	header := append(append([]string{"number", "state", "source"}, names...), "val_accuracy", "test_accuracy", "epochs", "seconds", "fail_reason")
	rows := make([][]string, 0, len(trials))
	for _, t := range trials {
		row := []string{strconv.Itoa(t.Number), t.State, t.Source}
		for _, n := range names {
			row = append(row, orMissing(paramText(t.Params, n)))
		}
		row = append(row, orMissing(fmtPtr(t.ValAcc)), orMissing(fmtPtr(t.TestAcc)), study.FormatEpochs(t.EpochsTrained), fmt.Sprintf("%.1f", t.Seconds), t.FailReason)
		rows = append(rows, row)
	}
	if opts.CSV {
		w := csv.NewWriter(opts.Out)
		_ = w.Write(header)
		_ = w.WriteAll(rows)
		return w.Error()
	}
	w := tabwriter.NewWriter(opts.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

func validState(s string) error {
	for _, v := range study.StateNames {
		if v == s {
			return nil
		}
	}
	return usagef("--state %q: valid states are %s", s, strings.Join(study.StateNames, ", "))
}

// paramNames are the parameter names of the trials: lr, optimizer and
// batch first (those present), then the others by name.
func paramNames(trials []study.TrialInfo) []string {
	seen := map[string]bool{}
	var others []string
	for _, t := range trials {
		for k := range t.Params {
			if !seen[k] {
				seen[k] = true
				if k != "lr" && k != "optimizer" && k != "batch" {
					others = append(others, k)
				}
			}
		}
	}
	var names []string
	for _, k := range []string{"lr", "optimizer", "batch"} {
		if seen[k] {
			names = append(names, k)
		}
	}
	sort.Strings(others)
	return append(names, others...)
}

func paramText(params map[string]any, name string) string {
	v, ok := params[name]
	if !ok {
		return "-"
	}
	return fmt.Sprint(v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// joinInts writes 1,2,3.
func joinInts(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}
