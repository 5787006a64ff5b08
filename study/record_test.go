package study

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
)

// TestCutShortTrialsRecordTheirTraining: a trial interrupted (Ctrl-C) and
// one that fails (diverged) halfway through their second epoch are stored
// with the seconds they trained and 1.5 epochs, and compare counts both.
func TestCutShortTrialsRecordTheirTraining(t *testing.T) {
	for _, c := range []struct {
		name  string
		cause error // nil: the run is cancelled
	}{
		{"interrupted", nil},
		{"diverged", fmt.Errorf("loss NaN: %w", models.ErrDiverged)},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := openStore(t)
			spec := testSpec("cut")
			spec.Trials, spec.Epochs = 1, 3
			spec.DeadAfter = 0 // a diverged trial fails (with it, it is pruned as not learning)
			spec = prepare(t, store, spec)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const batch = 20 * time.Millisecond
			train := func(tctx context.Context, cfg models.Config, _, _ *data.Set, hooks models.Hooks) (Evaluator, error) {
				for e := 1; e <= cfg.Epochs; e++ {
					for b := 1; b <= 4; b++ {
						time.Sleep(batch)
						hooks.OnBatch(e, b, 4)
						if e == 2 && b == 2 {
							if c.cause != nil {
								return nil, c.cause
							}
							cancel()
						}
						if err := tctx.Err(); err != nil {
							return nil, err
						}
					}
					if err := hooks.OnEpoch(models.EpochStats{Epoch: e, ValAcc: 0.5, Seconds: 4 * batch.Seconds()}); err != nil {
						return nil, err
					}
				}
				return fakeModel{0.5}, nil
			}
			_, err := Run(ctx, store, noData, spec, RunOptions{Workers: 1, Train: train})
			if (c.cause == nil) != errors.Is(err, context.Canceled) {
				t.Fatalf("run: %v", err)
			}
			trials, err := Trials(store, "cut", "fail")
			if err != nil || len(trials) != 1 {
				t.Fatalf("failed trials: %+v, %v", trials, err)
			}
			tr := trials[0]
			if tr.Epochs != 1 || tr.EpochsTrained != 1.5 || tr.Seconds < 6*batch.Seconds() {
				t.Fatalf("trial cut short in epoch 2 after 6 batches of %s: epochs %d, epochs_trained %v, seconds %v", batch, tr.Epochs, tr.EpochsTrained, tr.Seconds)
			}
			rows, err := Compare(store, []string{"cut"})
			if err != nil {
				t.Fatal(err)
			}
			if s := rows[1]; s.Fail != 1 || s.Epochs != 1.5 || s.Seconds != tr.Seconds {
				t.Fatalf("compare: %+v; want 1 failed trial, 1.5 epochs, %v s", s, tr.Seconds)
			}
		})
	}
}
