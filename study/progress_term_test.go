package study

import (
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/ptytest"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
)

// barLines are the lines of output drawn as bars: a worker's or the study's.
func barLines(output string) []string {
	var out []string
	for _, s := range ptytest.Segments(output) {
		if strings.HasPrefix(s, "study ") || strings.HasPrefix(s, "worker ") || (len(s) > 2 && s[0] == 'w' && s[1] >= '0' && s[1] <= '9') {
			out = append(out, s)
		}
	}
	return out
}

// TestTermProgressFitsTheTerminal draws the live display on a pseudo-
// terminal of 80 columns, resizes it to 200 and then 40: every bar line fits
// the width of the moment (a wider line would wrap, and the redraw would
// leave stacked copies), and a learning rate from a range is rounded.
func TestTermProgressFitsTheTerminal(t *testing.T) {
	pty := ptytest.Open(t, 80, 24)
	p := NewTermProgress(pty.Term)
	p.Start(RunInfo{Study: "a-study-with-a-rather-long-name", Workers: 3, Target: 24, Epochs: 10})
	pt := search.Point{LR: 0.012661266182520711, Optimizer: "rmsprop", Batch: 128}
	// Calls out of order never stop a study: before Start, a worker Start did not announce.
	early := NewTermProgress(io.Discard)
	early.TrialStarted(0, 1, pt)
	early.Batch(0, 1, 1, 2)
	early.Stop()
	p.TrialStarted(5, 99, pt)
	for w := 0; w < 3; w++ {
		p.TrialStarted(w, 100+w, pt)
	}
	draw := func(epoch int) {
		for b := 1; b <= 469; b += 50 {
			for w := 0; w < 3; w++ {
				p.Batch(w, epoch, b, 469)
			}
			time.Sleep(40 * time.Millisecond)
		}
		p.Epoch(0, 100, models.EpochStats{Epoch: epoch, ValAcc: 0.8512})
		time.Sleep(400 * time.Millisecond)
	}
	check := func(from int, width int) (widest int) {
		t.Helper()
		lines := barLines(pty.Output()[from:])
		if len(lines) < 4 {
			t.Fatalf("at %d columns: %d bar lines drawn, want the study's and 3 workers':\n%q", width, len(lines), pty.Output()[from:])
		}
		for _, l := range lines {
			n := utf8.RuneCountInString(l)
			if n > width {
				t.Fatalf("a %d-column line on a %d-column terminal: %q", n, width, l)
			}
			widest = max(widest, n)
		}
		return widest
	}

	draw(1)
	check(0, 80)
	out := pty.Output()
	if !strings.Contains(out, "lr=0.01266 rmsprop") || strings.Contains(out, "0.0126612") {
		t.Fatalf("the learning rate is not rounded to 4 digits:\n%q", out)
	}

	pty.Resize(t, 200, 50)
	time.Sleep(200 * time.Millisecond)
	from := len(pty.Output())
	draw(2)
	if w := check(from, 200); w <= 80 {
		t.Fatalf("at 200 columns the widest line has %d: the display did not follow the resize", w)
	}

	pty.Resize(t, 40, 10)
	time.Sleep(200 * time.Millisecond)
	from = len(pty.Output())
	draw(3)
	check(from, 40)

	p.TrialFinished(0, TrialResult{Number: 100, Point: pt, State: goptuna.TrialStateComplete, Value: 0.85, TestAcc: 0.84, Epochs: 10, Seconds: 12})
	p.Note("a note")
	p.Stop()
	out = pty.Close()
	for _, want := range []string{"trial 100 complete: val 0.8500", "a note", "study a-study-with-a-rather-long-name: 1 done/24"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%q", want, out)
		}
	}
}
