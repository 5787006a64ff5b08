package study

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// Progress receives what a running study does. Calls come from many
// goroutines; implementations synchronise themselves.
type Progress interface {
	Start(RunInfo)
	TrialStarted(worker, number int, p search.Point)
	Batch(worker, epoch, batch, batches int)
	Epoch(worker, number int, e models.EpochStats)
	TrialFinished(worker int, r TrialResult)
	Note(msg string)
	Stop()
}

// RunInfo describes a run as it starts.
type RunInfo struct {
	Study   string
	Workers int
	Target  int // the study's target of trials; 0 for a manual run
	Epochs  int // epochs per trial (the study's), for the ETA
	Counts  Counts
	Best    *TrialResult
}

// TrialResult is a finished trial as the progress display sees it.
type TrialResult struct {
	Number  int
	Point   search.Point
	State   goptuna.TrialState
	Value   float64 // final validation accuracy (complete) or the last reported one (pruned)
	TestAcc float64
	Epochs  int
	Seconds float64
	Reason  string
	Source  string // SourceSampled, SourceManual, ...
}

// NopProgress ignores everything; embed it to implement only some methods.
type NopProgress struct{}

func (NopProgress) Start(RunInfo)                       {}
func (NopProgress) TrialStarted(int, int, search.Point) {}
func (NopProgress) Batch(int, int, int, int)            {}
func (NopProgress) Epoch(int, int, models.EpochStats)   {}
func (NopProgress) TrialFinished(int, TrialResult)      {}
func (NopProgress) Note(string)                         {}
func (NopProgress) Stop()                               {}

// tally keeps the study line: counts, best so far, timing, and the batches
// done in the running trials, from which the ETA is measured.
type tally struct {
	info     RunInfo
	now      func() time.Time // time.Now; tests set a clock
	start    time.Time
	finished int
	counts   Counts
	best     *TrialResult
	running  map[int]float64 // worker -> part of its trial done (0..1)
	meter    etaMeter
}

// ready makes a tally that was never begun usable (a display must never
// stop a study, even when called out of order).
func (t *tally) ready() {
	if t.now == nil {
		t.now = time.Now
	}
	if t.running == nil {
		t.running = map[int]float64{}
	}
}

// begin starts the tally of a run (a plan starts one per step).
func (t *tally) begin(info RunInfo) {
	t.ready()
	t.info, t.start, t.counts, t.best, t.finished = info, t.now(), info.Counts, info.Best, 0
	t.running = map[int]float64{}
	t.meter.reset(t.start, 0)
}

// batch records that worker w's trial is at batch of batches in epoch.
func (t *tally) batch(w, epoch, batch, batches int) {
	t.ready()
	epochs := max(t.info.Epochs, epoch, 1)
	t.running[w] = (float64(epoch-1) + float64(batch)/float64(max(batches, 1))) / float64(epochs)
	t.observe()
}

// done is the work done in this run, in trials toward the target: those
// finished plus the parts of those running.
func (t *tally) done() float64 {
	d := float64(t.counts.Done - t.info.Counts.Done)
	for _, f := range t.running {
		d += f
	}
	return d
}

func (t *tally) observe() { t.meter.observe(t.now(), t.done()) }

// eta is the time left to the target at the measured speed.
func (t *tally) eta() (time.Duration, bool) {
	if t.info.Target <= 0 {
		return 0, false
	}
	left := float64(t.info.Target-t.info.Counts.Done) - t.done()
	if left <= 0 {
		return 0, false
	}
	return t.meter.eta(left)
}

// add counts a finished trial as Counts does: toward Done only when it
// counts toward the study's target (not manual, not interrupted).
func (t *tally) add(w int, r TrialResult) {
	t.ready()
	t.finished++
	delete(t.running, w)
	done := r.Source != SourceManual
	switch r.State {
	case goptuna.TrialStateComplete:
		t.counts.Complete++
		if t.best == nil || r.Value > t.best.Value {
			rc := r
			t.best = &rc
		}
	case goptuna.TrialStatePruned:
		t.counts.Pruned++
	case goptuna.TrialStateFail:
		t.counts.Fail++
		done = done && r.Reason != ReasonInterrupted
	}
	if done {
		t.counts.Done++
	}
	t.observe()
}

// line is the one-line study summary.
func (t *tally) line() string {
	t.ready()
	c := t.counts
	var b strings.Builder
	fmt.Fprintf(&b, "study %s: %d done", t.info.Study, c.Done)
	if t.info.Target > 0 {
		fmt.Fprintf(&b, "/%d", t.info.Target)
	}
	fmt.Fprintf(&b, " (%d complete, %d pruned, %d failed)", c.Complete, c.Pruned, c.Fail)
	if t.best != nil {
		fmt.Fprintf(&b, " | best %.4f (trial %d)", t.best.Value, t.best.Number)
	}
	fmt.Fprintf(&b, " | %s", t.now().Sub(t.start).Round(time.Second))
	if eta, ok := t.eta(); ok {
		fmt.Fprintf(&b, " | ETA %s", eta)
	}
	return b.String()
}

// describe is the line of a finished trial, its point written by point.
func describe(r TrialResult, point func(search.Point) string) string {
	p := point(r.Point)
	switch r.State {
	case goptuna.TrialStateComplete:
		return fmt.Sprintf("trial %d complete: val %.4f test %.4f (%s, %d epochs, %.1fs)", r.Number, r.Value, r.TestAcc, p, r.Epochs, r.Seconds)
	case goptuna.TrialStatePruned:
		if r.Reason != "" {
			return fmt.Sprintf("trial %d stopped at epoch %d, %s (%s)", r.Number, r.Epochs, describeReason(r.Reason), p)
		}
		return fmt.Sprintf("trial %d pruned at epoch %d: val %.4f (%s)", r.Number, r.Epochs, r.Value, p)
	default:
		return fmt.Sprintf("trial %d failed: %s (%s)", r.Number, describeReason(r.Reason), p)
	}
}

// shortPoint is p for the eye: the learning rate to 4 significant digits
// (a range gives 0.01266, not 0.012661266182520711). The exact value is
// stored and shown by trials and best.
func shortPoint(p search.Point) string {
	return fmt.Sprintf("lr=%s optimizer=%s batch=%d", strconv.FormatFloat(p.LR, 'g', 4, 64), p.Optimizer, p.Batch)
}

// LogProgress writes one plain line per finished epoch and trial: for logs
// and pipes.
type LogProgress struct {
	mu sync.Mutex
	w  io.Writer
	t  tally
}

// NewLogProgress returns a LogProgress writing to w.
func NewLogProgress(w io.Writer) *LogProgress { return &LogProgress{w: w} }

func (p *LogProgress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

func (p *LogProgress) Start(info RunInfo) {
	p.mu.Lock()
	p.t.begin(info)
	p.mu.Unlock()
	target := "a manual run"
	if info.Target > 0 {
		target = fmt.Sprintf("%d worker(s), target %d trials", info.Workers, info.Target)
	}
	p.printf("study %s: %s, %d done so far", info.Study, target, info.Counts.Done)
}

func (p *LogProgress) TrialStarted(w, number int, pt search.Point) {
	p.printf("worker %d: trial %d started: %s", w, number, shortPoint(pt))
}

// Batch prints nothing; it feeds the ETA.
func (p *LogProgress) Batch(w, epoch, batch, batches int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.batch(w, epoch, batch, batches)
}

func (p *LogProgress) Epoch(w, number int, e models.EpochStats) {
	p.printf("worker %d: trial %d epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.1fs %.0f samples/s",
		w, number, e.Epoch, e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc, e.Seconds, e.SamplesPerSec)
}

func (p *LogProgress) TrialFinished(w int, r TrialResult) {
	p.mu.Lock()
	p.t.add(w, r)
	line := p.t.line()
	p.mu.Unlock()
	p.printf("worker %d: %s", w, describe(r, shortPoint))
	p.printf("%s", line)
}

func (p *LogProgress) Note(msg string) { p.printf("%s", msg) }
func (p *LogProgress) Stop()           {}
