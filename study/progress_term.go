package study

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// TermProgress is the live display on a terminal (github.com/vbauerster/mpb):
// one bar per worker (trial, parameters, epoch, batches, validation
// accuracy) and a study bar (trials done, ETA, best, elapsed), fitted to the
// terminal's width whenever it is drawn, so a resized terminal gets lines
// of its new width and no line wraps. Finished trials and notes are printed
// above the bars and stay.
type TermProgress struct {
	w    io.Writer
	opts []mpb.ContainerOption

	mu      sync.Mutex // guards t, p, bars, workers; never held while calling mpb
	t       tally
	p       *mpb.Progress
	study   *mpb.Bar
	workers []*workerBar
	head    atomic.Pointer[string] // the study bar's texts
	tail    atomic.Pointer[string]
}

// workerBar is one worker's bar; its texts are read by mpb's decorators.
type workerBar struct {
	bar        *mpb.Bar
	left, tail atomic.Pointer[string]
}

// setFrac moves the bar to frac of a trial.
func (wb *workerBar) setFrac(frac float64) { setFrac(wb.bar, frac) }

// barScale is a bar's total: a trial's progress in millionths. Bars are made
// with total 0, so mpb never completes them by itself.
const barScale = 1_000_000

// NewTermProgress returns a TermProgress drawing on the terminal w.
func NewTermProgress(w io.Writer, opts ...mpb.ContainerOption) *TermProgress {
	return &TermProgress{w: w, opts: opts}
}

func (p *TermProgress) Start(info RunInfo) {
	p.mu.Lock()
	p.t.begin(info)
	opts := []mpb.ContainerOption{mpb.WithOutput(p.w), mpb.WithRefreshRate(150 * time.Millisecond)}
	if f, ok := p.w.(*os.File); ok && isTerminal(f) {
		opts = append(opts, mpb.WithConsoleWriter(newReflowWriter(f)))
	}
	opts = append(opts, p.opts...)
	p.p = mpb.New(opts...)
	p.workers = nil
	p.setStatusLocked()
	study := p.p.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *p.head.Load() }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return *p.tail.Load() })),
		mpb.BarPriority(1<<30), // below the workers
	)
	p.study = study
	p.mu.Unlock()
	study.SetTotal(barScale, false)
	for w := 0; w < info.Workers; w++ {
		p.worker(w)
	}
}

// worker is worker w's bar, added if Start did not announce w (a display
// must never stop a study).
func (p *TermProgress) worker(w int) *workerBar {
	p.mu.Lock()
	for len(p.workers) <= w {
		wb := &workerBar{}
		idle := fmt.Sprintf("worker %d  idle", len(p.workers))
		empty := ""
		wb.left.Store(&idle)
		wb.tail.Store(&empty)
		p.workers = append(p.workers, wb)
		prog, n := p.p, len(p.workers)-1
		if prog == nil {
			continue // not started, or stopped: texts only
		}
		p.mu.Unlock()
		wb.bar = prog.New(0, mpb.BarStyle().Lbound("[").Rbound("]"),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return *wb.left.Load() }, decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return *wb.tail.Load() }, decor.WCSyncWidthR)),
			mpb.BarPriority(n),
		)
		wb.bar.SetTotal(barScale, false)
		p.mu.Lock()
	}
	wb := p.workers[w]
	p.mu.Unlock()
	return wb
}

func (p *TermProgress) TrialStarted(w, number int, pt search.Point) {
	wb := p.worker(w)
	left := fmt.Sprintf("w%d trial %d %s", w, number, compactPoint(pt))
	wb.left.Store(&left)
	tail := "starting"
	wb.tail.Store(&tail)
	wb.setFrac(0)
}

func (p *TermProgress) Batch(w, epoch, batch, batches int) {
	wb := p.worker(w)
	p.mu.Lock()
	p.t.batch(w, epoch, batch, batches)
	frac, epochs := p.t.running[w], max(p.t.info.Epochs, epoch)
	study, studyFrac := p.setStatusLocked()
	p.mu.Unlock()
	val := ""
	if i := strings.Index(*wb.tail.Load(), " val "); i >= 0 {
		val = (*wb.tail.Load())[i:]
	}
	tail := fmt.Sprintf("ep %d/%d %d/%d%s", epoch, epochs, batch, batches, val)
	wb.tail.Store(&tail)
	wb.setFrac(frac)
	setFrac(study, studyFrac)
}

func (p *TermProgress) Epoch(w, _ int, e models.EpochStats) {
	wb := p.worker(w)
	p.mu.Lock()
	epochs := max(p.t.info.Epochs, e.Epoch)
	p.mu.Unlock()
	tail := fmt.Sprintf("ep %d/%d done val %.4f", e.Epoch, epochs, e.ValAcc)
	wb.tail.Store(&tail)
}

func (p *TermProgress) TrialFinished(w int, r TrialResult) {
	wb := p.worker(w)
	p.mu.Lock()
	p.t.add(w, r)
	study, studyFrac := p.setStatusLocked()
	prog := p.p
	p.mu.Unlock()
	setFrac(study, studyFrac)
	idle, empty := fmt.Sprintf("worker %d  idle", w), ""
	wb.left.Store(&idle)
	wb.tail.Store(&empty)
	wb.setFrac(0)
	p.above(prog, describe(r, compactPoint))
}

func (p *TermProgress) Note(msg string) {
	p.mu.Lock()
	prog := p.p
	p.mu.Unlock()
	p.above(prog, msg)
}

// above prints a line above the bars (or plainly when none are drawn).
func (p *TermProgress) above(prog *mpb.Progress, line string) {
	if prog != nil {
		if _, err := fmt.Fprintln(prog, line); err == nil {
			return
		}
	}
	fmt.Fprintln(p.w, line)
}

func (p *TermProgress) Stop() {
	p.mu.Lock()
	prog, bars, study := p.p, p.workers, p.study
	p.p, p.workers, p.study = nil, nil, nil
	line := p.t.line()
	p.mu.Unlock()
	if prog == nil {
		return
	}
	for _, wb := range bars {
		if wb.bar != nil {
			wb.bar.Abort(true)
		}
	}
	study.Abort(true)
	prog.Wait()
	fmt.Fprintln(p.w, line)
}

// setStatusLocked refreshes the study bar's texts and returns the bar and
// the part of the target done (-1: no target). p.mu is held, so the caller
// moves the bar (setFrac) after unlocking: mpb may wait for its renderer.
func (p *TermProgress) setStatusLocked() (*mpb.Bar, float64) {
	t := &p.t
	c := t.counts
	head := fmt.Sprintf("study %s %d", t.info.Study, c.Done)
	if t.info.Target > 0 {
		head += "/" + strconv.Itoa(t.info.Target)
	}
	head += " done"
	var tail []string
	if eta, ok := t.eta(); ok {
		tail = append(tail, "ETA "+eta.String())
	}
	if t.best != nil {
		tail = append(tail, fmt.Sprintf("best %.4f (trial %d)", t.best.Value, t.best.Number))
	}
	tail = append(tail, t.now().Sub(t.start).Round(time.Second).String(),
		fmt.Sprintf("%d complete, %d pruned, %d failed", c.Complete, c.Pruned, c.Fail))
	text := strings.Join(tail, " | ")
	p.head.Store(&head)
	p.tail.Store(&text)
	if t.info.Target <= 0 {
		return p.study, -1
	}
	return p.study, min((float64(t.info.Counts.Done)+t.done())/float64(t.info.Target), 1)
}

// setFrac moves bar to frac of its total (nothing for a nil bar or frac < 0).
func setFrac(bar *mpb.Bar, frac float64) {
	if bar != nil && frac >= 0 {
		bar.SetCurrent(int64(frac * barScale))
	}
}

// compactPoint is a point in few columns: lr=0.01266 adam b=128.
func compactPoint(pt search.Point) string {
	return fmt.Sprintf("lr=%s %s b=%d", strconv.FormatFloat(pt.LR, 'g', 4, 64), pt.Optimizer, pt.Batch)
}
