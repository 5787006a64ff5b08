package study

import (
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// simClock is a clock the test moves.
type simClock struct{ t time.Time }

func (c *simClock) now() time.Time { return c.t }

// TestETAFollowsBatches: two workers train 8 trials of 10 epochs of 50
// batches at 0.1 s a batch (400 s in all). From a few seconds in, the ETA
// is the true time left to within 3% (or a second), and never rises; a second run of the
// same tally (the next step of a plan) starts measuring afresh.
func TestETAFollowsBatches(t *testing.T) {
	const (
		target, workers, epochs, batches = 8, 2, 10, 50
		step                             = 100 * time.Millisecond
	)
	total := time.Duration(target/workers*epochs*batches) * step
	clock := &simClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ty := tally{now: clock.now}
	for run := 1; run <= 2; run++ {
		ty.begin(RunInfo{Study: "s", Workers: workers, Target: target, Epochs: epochs})
		start := clock.t
		if _, ok := ty.eta(); ok {
			t.Fatalf("run %d: an ETA before anything was measured", run)
		}
		last := time.Duration(1 << 62)
		number := 0
		for round := 0; round < target/workers; round++ {
			for e := 1; e <= epochs; e++ {
				for b := 1; b <= batches; b++ {
					clock.t = clock.t.Add(step)
					for w := 0; w < workers; w++ {
						ty.batch(w, e, b, batches)
					}
					elapsed := clock.t.Sub(start)
					eta, ok := ty.eta()
					if !ok {
						if elapsed > etaWarmup+etaSample && elapsed < total {
							t.Fatalf("run %d: no ETA after %s", run, elapsed)
						}
						continue
					}
					if left := total - elapsed; left > 10*time.Second {
						tol := max(0.03*left.Seconds(), 1) // 3%, and the rounding to seconds
						if diff := (eta - left).Seconds(); diff > tol || diff < -tol {
							t.Fatalf("run %d at %s: ETA %s, but %s are left", run, elapsed, eta, left)
						}
					}
					if eta > last+time.Second {
						t.Fatalf("run %d at %s: ETA rose from %s to %s", run, elapsed, last, eta)
					}
					last = eta
				}
			}
			for w := 0; w < workers; w++ {
				ty.add(w, TrialResult{Number: number, State: goptuna.TrialStateComplete, Value: 0.5, Source: SourceSampled})
				number++
			}
		}
		if line := ty.line(); !strings.Contains(line, "8 done/8") || strings.Contains(line, "ETA") {
			t.Fatalf("run %d: the finished study's line is %q", run, line)
		}
	}
}
