package study

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/fmtune/fmtune/search"
)

// TestManualRunProgress: a manual run reports to the same displays as a
// study run (the live terminal one included) and names its study.
func TestManualRunProgress(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := prepare(t, store, testSpec("manual-progress"))
	m := Manual{Arch: spec.Arch, Point: search.Point{LR: 0.1, Optimizer: "sgd", Batch: 128}, Seed: 3}
	for name, newProgress := range map[string]func(*bytes.Buffer) Progress{
		"terminal": func(b *bytes.Buffer) Progress { return NewTermProgress(b) },
		"log":      func(b *bytes.Buffer) Progress { return NewLogProgress(b) },
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			info, err := RunManual(context.Background(), store, ds, spec, m, RunOptions{Progress: newProgress(&out)})
			if err != nil {
				t.Fatal(err)
			}
			if info.State != "complete" {
				t.Fatalf("manual trial %d is %s", info.Number, info.State)
			}
			text := regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]").ReplaceAllString(out.String(), "")
			lines := strings.Split(strings.TrimSpace(text), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, "study manual-progress: ") || !regexp.MustCompile(`\| [0-9]+s$`).MatchString(last) {
				t.Fatalf("last progress line %q: want the study's name and the seconds it took\n%s", last, text)
			}
		})
	}
}
