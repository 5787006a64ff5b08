package study

// Recording a trial's outcome: its curve and attributes, its value, and its
// final state (or FAIL with a reason and, perhaps, its retry).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
	"github.com/fmtune/fmtune/models"
)

// finish stores the learning curve and attributes, the value, then the final
// state of a complete or pruned trial, each write waiting out a storage
// outage.
func (r *runner) finish(ctx context.Context, w, id int, res TrialResult, curve []models.EpochStats, extra map[string]string) error {
	attrs := curveAttrs(ran{curve: curve, seconds: res.Seconds})
	for k, v := range extra {
		attrs[k] = v
	}
	err := r.patient(ctx, w, fmt.Sprintf("store the result of trial %d", res.Number), func() error {
		if err := r.setAttrs(id, attrs); err != nil {
			return err
		}
		// A trial pruned in its first epoch (its loss not finite) has no value.
		if res.State == goptuna.TrialStateComplete || len(curve) > 0 {
			if err := r.store.SetTrialValue(id, res.Value); err != nil {
				return err
			}
		}
		fault.Point(fault.DuringCompletion)
		err := r.store.SetTrialState(id, res.State)
		if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
			// Finished already: by this very write, when a lost connection
			// hid its COMMIT, or by another worker that gave the trial up.
			if t, gerr := r.store.GetTrial(id); gerr == nil && t.State == res.State {
				return nil
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("trial %d: store the result: %w", res.Number, err)
	}
	return nil
}

// ran is the training a trial did before it ended, however it ended.
type ran struct {
	curve   []models.EpochStats
	epochs  float64 // epochs trained, the part done of an unfinished one included
	seconds float64 // wall time of the training
	resumed int     // epochs of the curve continued from a checkpoint, not trained here
}

// fail is failAfter for a trial that trained nothing.
func (r *runner) fail(ctx context.Context, w, id, number int, reason, kind string, curve []models.EpochStats, retry *goptuna.FrozenTrial) error {
	return r.failAfter(ctx, w, id, number, reason, kind, ran{curve: curve}, retry)
}

// failAfter records the training done (its curve, epochs and seconds, if
// any), then the reason (Optuna's fail_reason), its kind (AttrFailKind,
// unless "") and the FAIL state, together with the retry to queue (if any)
// in one transaction. Each write waits out a storage outage, unless ctx has
// ended.
func (r *runner) failAfter(ctx context.Context, w, id, number int, reason, kind string, done ran, retry *goptuna.FrozenTrial) error {
	err := r.patient(ctx, w, fmt.Sprintf("mark trial %d FAIL", number), func() error {
		if len(done.curve) > 0 || done.seconds > 0 {
			if err := r.setAttrs(id, curveAttrs(done)); err != nil {
				return err
			}
		}
		_, err := r.store.FailTrial(id, reason, kind, retry)
		if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
			if t, gerr := r.store.GetTrial(id); gerr == nil && t.State == goptuna.TrialStateFail && t.SystemAttrs[AttrFailReason] == reason {
				return nil // this very write, whose COMMIT a lost connection hid
			}
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("trial %d: mark FAIL (%s): %w", number, describeReason(reason), err)
	}
	return nil
}

func (r *runner) setAttrs(id int, attrs map[string]string) error {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := r.store.SetTrialUserAttr(id, k, attrs[k]); err != nil {
			return fmt.Errorf("trial %d: set %s: %w", id, k, err)
		}
	}
	return nil
}

// curveAttrs are the user attributes that describe a training run: epochs
// (complete ones), epochs_trained (with the part of an unfinished one),
// seconds, the curve and its last epoch.
func curveAttrs(done ran) map[string]string {
	curve, seconds := done.curve, done.seconds
	attrs := map[string]string{
		"epochs":         strconv.Itoa(len(curve)),
		"epochs_trained": formatFloat(max(done.epochs, float64(len(curve)-done.resumed))),
	}
	if b, err := jsonString(curve); err == nil {
		attrs["curve"] = b
	}
	if len(curve) > 0 {
		last := curve[len(curve)-1]
		attrs["val_accuracy"] = formatFloat(last.ValAcc)
		attrs["val_loss"] = formatFloat(last.ValLoss)
		attrs["train_accuracy"] = formatFloat(last.TrainAcc)
		attrs["train_loss"] = formatFloat(last.TrainLoss)
		var sps float64
		for _, e := range curve {
			sps += e.SamplesPerSec
		}
		attrs["samples_per_sec"] = formatFloat(sps / float64(len(curve)))
	}
	if seconds > 0 {
		attrs["seconds"] = formatFloat(seconds)
	}
	return attrs
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// describeReason shortens a failure reason for one line of output.
func describeReason(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
