package study

// Dead trials: a trial that is not learning after Spec.DeadAfter epochs is
// stopped as PRUNED, whatever the pruner's start-up.

import (
	"fmt"
	"math"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
)

// DeadMargin is how close to chance (1 / number of classes) a validation
// accuracy must be for a trial to count as not learning.
const DeadMargin = 0.02

// ReasonNotLearning starts the reason of a trial stopped as not learning.
const ReasonNotLearning = "not learning"

// notLearning says why a trial is not learning at the end of epoch e, or
// "": its loss is not finite, or its validation accuracy is within
// DeadMargin of chance.
func notLearning(e models.EpochStats) string {
	chance := 1.0 / data.Classes
	switch {
	case !finite(e.TrainLoss) || !finite(e.ValLoss):
		return fmt.Sprintf("%s: loss not finite at epoch %d (train %v, val %v)", ReasonNotLearning, e.Epoch, e.TrainLoss, e.ValLoss)
	case math.Abs(e.ValAcc-chance) <= DeadMargin:
		return fmt.Sprintf("%s: val accuracy %.4f at epoch %d, within %.2f of chance (%.2f)", ReasonNotLearning, e.ValAcc, e.Epoch, DeadMargin, chance)
	}
	return ""
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// deadCheck reports why the trial should stop after epoch e as not
// learning, or "": only from epoch Spec.DeadAfter on (0: never), before its
// last epoch (stopping then saves nothing), and never for a manual trial
// (a person asked for all of it).
func (t *trialRun) deadCheck(e models.EpochStats) string {
	after := t.r.spec.DeadAfter
	if after <= 0 || e.Epoch < after || e.Epoch >= t.epochs || t.source == SourceManual {
		return ""
	}
	return notLearning(e)
}

// notLearningError stops a trial that is not learning.
type notLearningError struct{ reason string }

func (e *notLearningError) Error() string { return e.reason }
