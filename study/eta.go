package study

import (
	"math"
	"time"
)

// etaMeter estimates the time a run has left from the work done so far and
// its measured speed. Work is counted in trials, running trials by the part
// of their batches done, so the estimate moves with every batch rather than
// with every finished trial; the speed is smoothed over about etaTau.
type etaMeter struct {
	lastT    time.Time
	lastDone float64
	rate     float64       // trials per second, smoothed
	measured time.Duration // how long the speed has been measured
}

const (
	etaSample  = time.Second      // the shortest interval measured
	etaTau     = 30 * time.Second // the smoothing time constant
	etaWarmup  = 3 * time.Second  // no estimate before this much measuring
	etaMinRate = 1e-9
)

// reset starts measuring at now with done trials.
func (m *etaMeter) reset(now time.Time, done float64) {
	*m = etaMeter{lastT: now, lastDone: done}
}

// observe records that done trials (fractions included) are done at now.
func (m *etaMeter) observe(now time.Time, done float64) {
	dt := now.Sub(m.lastT)
	if dt < etaSample {
		return
	}
	r := (done - m.lastDone) / dt.Seconds()
	m.measured += dt
	// An exponential average that is the plain mean of the speeds while
	// fewer than etaTau have been measured, so the first one weighs no more
	// than the others.
	a := max(1-math.Exp(-dt.Seconds()/etaTau.Seconds()), dt.Seconds()/m.measured.Seconds())
	m.rate += a * (r - m.rate)
	m.lastT, m.lastDone = now, done
}

// eta is the time left for remaining trials at the smoothed speed; ok is
// false while there is no estimate yet.
func (m *etaMeter) eta(remaining float64) (d time.Duration, ok bool) {
	if m.measured < etaWarmup || m.rate < etaMinRate {
		return 0, false
	}
	return time.Duration(remaining / m.rate * float64(time.Second)).Round(time.Second), true
}
