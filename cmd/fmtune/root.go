package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// Exit codes: the only place they are decided is run.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

// version is the fmtune version, stamped at build time with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// usageError marks a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes fmtune with args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, defaultFactory(), args, stdout, stderr)
}

// execute runs the command line args with what f provides until ctx ends,
// prints the error (if any) and returns the exit code.
func execute(ctx context.Context, f *Factory, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(f, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	err = unknownCommand(root, err)
	switch {
	case isUsageError(err):
		fmt.Fprintln(stderr, "fmtune:", message(err))
		return exitUsage
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "fmtune: interrupted")
		return exitInterrupted
	default:
		fmt.Fprintln(stderr, "fmtune:", message(err))
		return exitFailure
	}
}

// flagNames are the flags that set the fields a study.FieldError names.
var flagNames = map[string]string{
	study.FieldName:       "study",
	study.FieldEpochs:     "epochs",
	study.FieldTrials:     "trials",
	study.FieldVal:        "val",
	study.FieldTrainLimit: "train-limit",
	study.FieldOptimizers: "optimizers",
	study.FieldWorkers:    "workers",
	study.FieldThreads:    "threads",
	study.FieldRepeats:    "repeats",
	study.FieldDeadAfter:  "dead-after",
}

// message is err's text as the command line says it: the field of a
// study.FieldError is named by its flag (--trials).
func message(err error) string {
	msg := err.Error()
	var fe *study.FieldError
	if errors.As(err, &fe) {
		flag, ok := flagNames[fe.Field]
		if !ok {
			flag = fe.Field
		}
		msg = strings.Replace(msg, fe.Error(), fmt.Sprintf("%s: --%s %s", study.ErrInvalidSpec, flag, fe.Msg), 1)
	}
	var dm *study.DataMismatchError
	if errors.As(err, &dm) {
		msg += "; point --data at the original files"
	}
	return msg
}

// isUsageError reports whether err is a mistake in what the user asked for,
// as opposed to a failure while doing it.
func isUsageError(err error) bool {
	var uerr *usageError
	return errors.As(err, &uerr) ||
		errors.Is(err, models.ErrInvalidConfig) ||
		errors.Is(err, search.ErrInvalidSpace) ||
		errors.Is(err, search.ErrUnknownName) ||
		errors.Is(err, study.ErrInvalidSpec) ||
		errors.Is(err, study.ErrSpecMismatch) ||
		errors.Is(err, study.ErrManualMismatch) ||
		errors.Is(err, storage.ErrInvalidURL)
}

// newRootCmd builds the command tree.
func newRootCmd(f *Factory, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "fmtune",
		Short: "Hyperparameter search for Fashion-MNIST classifiers",
		Long: `fmtune tunes learning rate, optimizer and batch size of small Fashion-MNIST
classifiers (mlp, deep, cnn, cnn-dropout), trains them with gorgonia, and
keeps every trial in an Optuna-compatible SQLite or PostgreSQL storage.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Flag parsing errors are usage errors (exit 2).
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newDataCmd(),
		newModelsCmd(),
		newTrainCmd(f),
		newBenchCmd(),
		newTuneCmd(f),
		newResumeCmd(f),
		newWorkerCmd(f),
		newBestCmd(f),
		newStudiesCmd(f),
		newTrialsCmd(f),
		newEnqueueCmd(f),
		newPlanCmd(f),
		newCompareCmd(f), newReportCmd(f),
		newEvaluateCmd(f), newPredictCmd(),
		newDashboardCmd(f),
	)
	return root
}
