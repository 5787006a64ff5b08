package study

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestReflowWriterMovesUpOverWrappedLines: a frame of three 200-column
// lines takes nine rows once the window is 70 columns wide (a reflowing
// terminal wraps them), so the next frame starts nine rows up; lines
// printed above the bars are not redrawn, so they are not counted.
func TestReflowWriterMovesUpOverWrappedLines(t *testing.T) {
	var out bytes.Buffer
	cols := 200
	w := &reflowWriter{out: &out, width: func() (int, int, error) { return cols, 50, nil }}
	frame := func(above string, bars ...string) string {
		t.Helper()
		out.Reset()
		w.WriteString(above)
		for _, b := range bars {
			fmt.Fprintln(w, b)
		}
		if err := w.Flush(len(bars)); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	wide := strings.Repeat("=", 200)
	if got := frame("", wide, wide, "\x1b[1m"+wide+"\x1b[0m"); strings.HasPrefix(got, "\x1b[") {
		t.Fatalf("the first frame moved the cursor: %q", got[:10])
	}
	cols = 70
	if got := frame("trial 1 complete\n", "short", "short"); !strings.HasPrefix(got, "\x1b[9A\x1b[Jtrial 1 complete\nshort\n") {
		t.Fatalf("after narrowing to 70 columns the frame starts %q, want 9 rows up", got[:min(len(got), 30)])
	}
	if got := frame("", "short"); !strings.HasPrefix(got, "\x1b[2A\x1b[Jshort\n") {
		t.Fatalf("the next frame starts %q, want 2 rows up (the line above the bars stays)", got)
	}
}
