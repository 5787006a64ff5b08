package study

import (
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// TestTallyETA: two workers finishing a 7-minute trial each every 7 minutes
// have, after 4 of 8 trials (14 minutes), 14 minutes left; a second run of
// the same tally (the next step of a plan) starts counting afresh.
func TestTallyETA(t *testing.T) {
	var ty tally
	for run := 1; run <= 2; run++ {
		ty.begin(RunInfo{Study: "s", Workers: 2, Target: 8})
		ty.start = time.Now().Add(-14 * time.Minute)
		for i := 0; i < 4; i++ {
			ty.add(TrialResult{Number: i, State: goptuna.TrialStateComplete, Value: 0.5, Source: SourceSampled})
		}
		line := ty.line()
		if !strings.Contains(line, "4 done/8") || !strings.HasSuffix(line, "| 14m0s | ETA 14m0s") {
			t.Fatalf("run %d: %q, want 4 done/8 and ETA 14m0s", run, line)
		}
	}
}
