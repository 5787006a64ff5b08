package study

import (
	"fmt"
	"io"
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

// tally keeps the study line: counts, best so far, timing.
type tally struct {
	info     RunInfo
	start    time.Time
	finished int
	counts   Counts
	best     *TrialResult
}

// begin starts the tally of a run (a plan starts one per step).
func (t *tally) begin(info RunInfo) {
	t.info, t.start, t.counts, t.best, t.finished = info, time.Now(), info.Counts, info.Best, 0
}

// add counts a finished trial as Counts does: toward Done only when it
// counts toward the study's target (not manual, not interrupted).
func (t *tally) add(r TrialResult) {
	t.finished++
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
}

// line is the one-line study summary.
func (t *tally) line() string {
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
	elapsed := time.Since(t.start)
	fmt.Fprintf(&b, " | %s", elapsed.Round(time.Second))
	if t.info.Target > 0 && t.finished > 0 {
		// elapsed/finished is the wall time per trial with all workers
		// busy, so the parallelism is already in it.
		if left := t.info.Target - c.Done; left > 0 {
			eta := elapsed * time.Duration(left) / time.Duration(t.finished)
			fmt.Fprintf(&b, " | ETA %s", eta.Round(time.Second))
		}
	}
	return b.String()
}

func describe(r TrialResult) string {
	switch r.State {
	case goptuna.TrialStateComplete:
		return fmt.Sprintf("trial %d complete: val %.4f test %.4f (%s, %d epochs, %.1fs)", r.Number, r.Value, r.TestAcc, r.Point, r.Epochs, r.Seconds)
	case goptuna.TrialStatePruned:
		if r.Reason != "" {
			return fmt.Sprintf("trial %d stopped at epoch %d, %s (%s)", r.Number, r.Epochs, describeReason(r.Reason), r.Point)
		}
		return fmt.Sprintf("trial %d pruned at epoch %d: val %.4f (%s)", r.Number, r.Epochs, r.Value, r.Point)
	default:
		return fmt.Sprintf("trial %d failed: %s (%s)", r.Number, describeReason(r.Reason), r.Point)
	}
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
	p.printf("worker %d: trial %d started: %s", w, number, pt)
}

func (p *LogProgress) Batch(int, int, int, int) {}

func (p *LogProgress) Epoch(w, number int, e models.EpochStats) {
	p.printf("worker %d: trial %d epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.1fs %.0f samples/s",
		w, number, e.Epoch, e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc, e.Seconds, e.SamplesPerSec)
}

func (p *LogProgress) TrialFinished(w int, r TrialResult) {
	p.mu.Lock()
	p.t.add(r)
	line := p.t.line()
	p.mu.Unlock()
	p.printf("worker %d: %s", w, describe(r))
	p.printf("%s", line)
}

func (p *LogProgress) Note(msg string) { p.printf("%s", msg) }
func (p *LogProgress) Stop()           {}

// TermProgress redraws one live line per worker and a study line on a
// terminal, at most every 100ms.
type TermProgress struct {
	mu      sync.Mutex
	w       io.Writer
	t       tally
	workers []string
	drawn   int // lines drawn last time
	last    time.Time
}

// NewTermProgress returns a TermProgress writing to the terminal w.
func NewTermProgress(w io.Writer) *TermProgress { return &TermProgress{w: w} }

func (p *TermProgress) Start(info RunInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.begin(info)
	p.workers = make([]string, info.Workers)
	for i := range p.workers {
		p.workers[i] = "idle"
	}
	p.redraw(true)
}

func (p *TermProgress) TrialStarted(w, number int, pt search.Point) {
	p.set(w, fmt.Sprintf("trial %d %s: starting", number, pt), true)
}

func (p *TermProgress) Batch(w, epoch, batch, batches int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := *p.slot(w)
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[:i]
	}
	tail := ""
	if j := strings.Index(p.workers[w], " | val "); j >= 0 {
		tail = p.workers[w][j:]
	}
	p.workers[w] = fmt.Sprintf("%s: epoch %d batch %d/%d%s", s, epoch, batch, batches, tail)
	p.redraw(false)
}

func (p *TermProgress) Epoch(w, number int, e models.EpochStats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := *p.slot(w)
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[:i]
	}
	p.workers[w] = fmt.Sprintf("%s: epoch %d done | val acc %.4f", s, e.Epoch, e.ValAcc)
	p.redraw(true)
}

func (p *TermProgress) TrialFinished(w int, r TrialResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.add(r)
	*p.slot(w) = "idle"
	p.printAbove(describe(r))
}

func (p *TermProgress) Note(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printAbove(msg)
}

func (p *TermProgress) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, p.t.line())
}

func (p *TermProgress) set(w int, s string, force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	*p.slot(w) = s
	p.redraw(force)
}

// slot is worker w's live line, added if Start did not announce w (a
// display must never stop a study).
func (p *TermProgress) slot(w int) *string {
	for len(p.workers) <= w {
		p.workers = append(p.workers, "idle")
	}
	return &p.workers[w]
}

// printAbove prints a permanent line above the live block.
func (p *TermProgress) printAbove(s string) {
	p.clear()
	fmt.Fprintln(p.w, s)
	p.redraw(true)
}

func (p *TermProgress) clear() {
	for i := 0; i < p.drawn; i++ {
		fmt.Fprint(p.w, "\x1b[1A\x1b[2K")
	}
	p.drawn = 0
}

func (p *TermProgress) redraw(force bool) {
	if !force && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.clear()
	for i, s := range p.workers {
		fmt.Fprintf(p.w, "  worker %d  %s\n", i, s)
	}
	fmt.Fprintln(p.w, p.t.line())
	p.drawn = len(p.workers) + 1
}
