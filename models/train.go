package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models/kernels"
)

// EpochStats is the learning curve at the end of one epoch.
type EpochStats struct {
	Epoch         int     `json:"epoch"`           // 1-based
	TrainLoss     float64 `json:"train_loss"`      // mean over the epoch's batches, weighted by batch size, dropout on
	TrainAcc      float64 `json:"train_accuracy"`  // likewise
	ValLoss       float64 `json:"val_loss"`        // exact over the validation set, dropout off (0 without one)
	ValAcc        float64 `json:"val_accuracy"`    // likewise
	Seconds       float64 `json:"seconds"`         // wall time of the epoch, validation included
	SamplesPerSec float64 `json:"samples_per_sec"` // training examples per second of training time
}

// Hooks lets the caller watch and stop training.
type Hooks struct {
	// OnEpoch, if set, is called after each epoch. A non-nil error stops
	// training; Train then returns an error wrapping it.
	OnEpoch func(EpochStats) error
	// OnBatch, if set, is called after each training batch (1-based epoch
	// and batch). It must be cheap.
	OnBatch func(epoch, batch, batches int)
	// OnCheckpoint, if set, is called after OnEpoch of every epoch but the
	// last with the training's whole state. The checkpoint shares the
	// training's buffers: encode it before returning. A non-nil error
	// stops training, as OnEpoch's does.
	OnCheckpoint func(*Checkpoint) error
	// Resume, if set, continues a training from a checkpoint of the same
	// configuration instead of starting it: training goes on at epoch
	// Resume.Epoch+1 and the returned history includes the checkpoint's.
	Resume *Checkpoint
}

// Result is the outcome of Train.
type Result struct {
	History []EpochStats
	Model   *Model
}

// ErrDiverged is matched (errors.Is) by a *DivergedError.
var ErrDiverged = errors.New("training diverged")

// DivergedError reports a NaN or infinite training loss.
type DivergedError struct {
	Epoch, Batch int     // 1-based
	Loss         float64 // NaN or ±Inf
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("training diverged: loss %v at epoch %d, batch %d", e.Loss, e.Epoch, e.Batch)
}

// Is makes errors.Is(err, ErrDiverged) true.
func (e *DivergedError) Is(target error) bool { return target == ErrDiverged }

// randSource holds the random streams of one run, all derived from the
// seed: weights (NewModel), the shuffle of each epoch and dropout masks.
type randSource struct {
	seed int64
	drop *kernels.PCG // math/rand/v2's PCG stream, drawn from in C too
}

func newRandSource(seed int64) *randSource {
	return &randSource{seed: seed, drop: kernels.NewPCG(uint64(seed), 0xd1b54a32d192ed03)}
}

// shuffleSeed is the seed of epoch's shuffle.
func (r *randSource) shuffleSeed(epoch int) int64 {
	return int64(splitmix64(uint64(r.seed) ^ 0x9e3779b97f4a7c15 + uint64(epoch)))
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Train trains a new model of cfg.Arch on train for cfg.Epochs epochs,
// evaluating on val (may be nil) after each. Weights, the shuffle of each
// epoch and dropout masks all derive from cfg.Seed: the same seed, config
// and data give the same history on the same build.
//
// The training set is shuffled every epoch; the last batch of an epoch may
// be smaller than cfg.Batch and is trained on like the others (padded,
// with a loss that is the mean over its real examples).
//
// Train checks ctx before every batch; on cancellation it returns an error
// wrapping ctx.Err(). A NaN or infinite loss stops it with a
// *DivergedError. On any error after training started, the returned Result
// holds the epochs completed so far.
func Train(ctx context.Context, cfg Config, train, val *data.Set, hooks Hooks) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if train == nil || train.Len() == 0 {
		return nil, errors.New("models: train: empty training set")
	}
	model, err := NewModel(cfg.Arch, cfg.Seed)
	if err != nil {
		return nil, err
	}
	tr, err := newTrainer(model, cfg, min(cfg.Batch, train.Len()))
	if err != nil {
		return nil, err
	}
	defer tr.close()
	rs := newRandSource(cfg.Seed)
	res := &Result{Model: model}
	batches := (train.Len() + tr.tg.batch - 1) / tr.tg.batch
	first := 1
	if c := hooks.Resume; c != nil {
		if err := c.fits(cfg, len(model.flat)); err != nil {
			return nil, err
		}
		if err := tr.restore(c, rs); err != nil {
			return nil, err
		}
		res.History = append(res.History, c.History...)
		first = c.Epoch + 1
	}

	for epoch := first; epoch <= cfg.Epochs; epoch++ {
		start := time.Now()
		var lossSum float64
		var correct, bi int
		err := train.Batches(tr.tg.batch, rs.shuffleSeed(epoch), true, func(idx []int) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			bi++
			loss, c, err := tr.step(train, idx, rs)
			if err != nil {
				return fmt.Errorf("models: epoch %d batch %d: %w", epoch, bi, err)
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return &DivergedError{Epoch: epoch, Batch: bi, Loss: loss}
			}
			lossSum += loss * float64(len(idx))
			correct += c
			if hooks.OnBatch != nil {
				hooks.OnBatch(epoch, bi, batches)
			}
			return nil
		})
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return res, fmt.Errorf("models: training interrupted in epoch %d: %w", epoch, err)
			}
			return res, err
		}
		trainTime := time.Since(start).Seconds()
		n := float64(train.Len())
		st := EpochStats{
			Epoch:         epoch,
			TrainLoss:     lossSum / n,
			TrainAcc:      float64(correct) / n,
			SamplesPerSec: n / trainTime,
		}
		if val != nil && val.Len() > 0 {
			if st.ValLoss, st.ValAcc, err = model.evaluate(ctx, val); err != nil {
				if ctx.Err() != nil {
					return res, fmt.Errorf("models: training interrupted in epoch %d: %w", epoch, err)
				}
				return res, err
			}
		}
		st.Seconds = time.Since(start).Seconds()
		res.History = append(res.History, st)
		if hooks.OnEpoch != nil {
			if err := hooks.OnEpoch(st); err != nil {
				return res, fmt.Errorf("models: training stopped after epoch %d: %w", epoch, err)
			}
		}
		if hooks.OnCheckpoint != nil && epoch < cfg.Epochs {
			if err := hooks.OnCheckpoint(tr.checkpoint(cfg, epoch, res.History, rs)); err != nil {
				return res, fmt.Errorf("models: training stopped after epoch %d: %w", epoch, err)
			}
		}
	}
	return res, nil
}

// trainer runs training steps of one model: its training graph, the
// optimizer on the flat weights and the team of threads both use.
type trainer struct {
	model  *Model
	tg     *trainGraph
	solver solver // its one slot is all the weights, model.flat
	stepF  func(int, int)
}

// optimizerChunk is the number of weights per chunk of an optimizer step.
const optimizerChunk = 1 << 15

// newTrainer builds model's training graph for batch and the optimizer of
// cfg, and counts the model's team among the active ones (close undoes it).
func newTrainer(model *Model, cfg Config, batch int) (*trainer, error) {
	s, err := newSolver(cfg)
	if err != nil {
		return nil, err
	}
	model.team.Threads = cfg.Threads
	_, tg, err := model.build(batch, true, &model.team)
	if err != nil {
		return nil, err
	}
	t := &trainer{model: model, tg: tg, solver: s}
	s.prepare([]int{len(model.flat)})
	t.stepF = t.updateChunk
	model.team.Activate()
	return t, nil
}

func (t *trainer) close() { t.model.team.Deactivate() }

// step trains on the examples idx of set: forward, backward and the
// optimizer's update. It returns the batch's mean loss and the number of
// correct predictions (before the update).
func (t *trainer) step(set *data.Set, idx []int, r *randSource) (loss float64, correct int, err error) {
	loss, correct, err = t.tg.step(set, idx, r)
	if err != nil {
		return 0, 0, err
	}
	t.solver.begin()
	t.model.team.Run(kernels.Chunks(len(t.model.flat), optimizerChunk), t.stepF)
	return loss, correct, nil
}

func (t *trainer) updateChunk(c, _ int) {
	lo := c * optimizerChunk
	t.solver.update(0, t.model.flat, t.tg.grad, lo, min(lo+optimizerChunk, len(t.model.flat)))
}
