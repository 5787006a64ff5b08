package study

// Checkpoints of running trials: saved at the end of every epoch, and the
// starting point of a retry, which continues where the trial stopped.

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
	"github.com/fmtune/fmtune/models"
)

// User attributes of a trial that continued from a checkpoint.
const (
	AttrResumedFromTrial = "resumed_from_trial" // number of the trial whose checkpoint it continued
	AttrResumedFromEpoch = "resumed_from_epoch" // the epoch that checkpoint was taken after
)

// checkpointCost adds up what writing a trial's checkpoints cost.
type checkpointCost struct {
	count   int
	bytes   int // of the last one
	seconds float64
}

// runAttrs are the user attributes that say what this run of the trial
// trained: epochs_trained (fewer than epochs when it continued a
// checkpoint) and what its checkpoints cost.
func (t *trialRun) runAttrs(curve []models.EpochStats) map[string]string {
	trained := len(curve)
	if t.resume != nil {
		trained -= t.resume.Epoch
	}
	return withAttrs(map[string]string{"epochs_trained": strconv.Itoa(trained)}, t.ckpt.attrs())
}

// attrs are the cost as user attributes of the trial.
func (c checkpointCost) attrs() map[string]string {
	if c.count == 0 {
		return nil
	}
	return map[string]string{
		"checkpoints":        strconv.Itoa(c.count),
		"checkpoint_bytes":   strconv.Itoa(c.bytes),
		"checkpoint_seconds": formatFloat(c.seconds),
	}
}

// loadCheckpoint returns the checkpoint this trial inherited from the trial
// it retries (moved to it when that trial was failed and re-queued), if it
// continues the configuration cfg, or nil to train from the start.
func (t *trialRun) loadCheckpoint(cfg models.Config) (*models.Checkpoint, error) {
	var state []byte
	err := t.store(fmt.Sprintf("read the checkpoint of trial %d", t.number), func() (err error) {
		_, state, err = t.r.store.LoadCheckpoint(t.id)
		return err
	})
	if err != nil || state == nil {
		return nil, err
	}
	c, err := models.UnmarshalCheckpoint(state)
	if err == nil {
		err = c.Continues(cfg)
	}
	if err != nil {
		t.r.progress.Note(fmt.Sprintf("worker %d: trial %d: its checkpoint cannot be continued (%v); training from epoch 1", t.w, t.number, err))
		return nil, nil
	}
	return c, nil
}

// resumeFrom makes the trial continue c: its stored curve gets c's epochs,
// and its attributes say where it continued from.
func (t *trialRun) resumeFrom(c *models.Checkpoint) error {
	from := t.sys[AttrRetryOf]
	err := t.store(fmt.Sprintf("continue trial %d from its checkpoint", t.number), func() error {
		for _, e := range c.History {
			if err := t.r.store.SetTrialIntermediateValue(t.id, e.Epoch, e.ValAcc); err != nil {
				return err
			}
		}
		return t.r.setAttrs(t.id, map[string]string{AttrResumedFromTrial: from, AttrResumedFromEpoch: strconv.Itoa(c.Epoch)})
	})
	if err != nil {
		return err
	}
	t.r.progress.Note(fmt.Sprintf("worker %d: trial %d continues trial %s from its checkpoint after epoch %d of %d", t.w, t.number, from, c.Epoch, t.epochs))
	return nil
}

// saveCheckpoint stores c as the trial's checkpoint.
func (t *trialRun) saveCheckpoint(c *models.Checkpoint) error {
	start := time.Now()
	b, err := c.MarshalBinary()
	if err != nil {
		return err
	}
	err = t.store(fmt.Sprintf("checkpoint epoch %d of trial %d", c.Epoch, t.number), func() error {
		return t.r.store.SaveCheckpoint(t.id, c.Epoch, b)
	})
	if errors.Is(err, goptuna.ErrTrialCannotBeUpdated) {
		return errGivenUp
	}
	if err != nil {
		return &hookStorageError{err}
	}
	t.ckpt.count++
	t.ckpt.bytes = len(b)
	t.ckpt.seconds += time.Since(start).Seconds()
	fault.PointAt(fault.AfterCheckpoint, c.Epoch)
	return nil
}
