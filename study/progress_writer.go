package study

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-runewidth"
	"github.com/vbauerster/mpb/v8"
	"golang.org/x/sys/unix"
)

// reflowWriter is the display's mpb.ConsoleWriter. Before each frame it
// moves the cursor up over the previous one by the rows that frame takes at
// the terminal's width of the moment: when a window is narrowed, terminals
// that reflow (tmux, VTE, iTerm2) wrap the lines already drawn, and moving
// up by their number only (as mpb's own writer does) would leave the
// wrapped parts on the screen.
type reflowWriter struct {
	bytes.Buffer
	out   io.Writer
	width func() (cols, rows int, err error)
	prev  []int // display widths of the previous frame's lines
}

var _ mpb.ConsoleWriter = (*reflowWriter)(nil)

// newReflowWriter writes to the terminal f.
func newReflowWriter(f *os.File) *reflowWriter {
	fd := int(f.Fd())
	return &reflowWriter{out: f, width: func() (int, int, error) {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0, 0, err
		}
		return int(ws.Col), int(ws.Row), nil
	}}
}

func (w *reflowWriter) IsTerminal() bool                    { return true }
func (w *reflowWriter) GetTermSize() (int, int, error)      { return w.width() }
func (w *reflowWriter) ReadFrom(r io.Reader) (int64, error) { return w.Buffer.ReadFrom(r) }

// Flush draws the buffer (lines printed above the bars, then the bars' lines
// last) over the previous frame.
func (w *reflowWriter) Flush(lines int) error {
	cols, _, err := w.width()
	if err != nil || cols < 1 {
		cols = 80
	}
	up := 0
	for _, n := range w.prev {
		up += max(1, (n+cols-1)/cols)
	}
	text := w.String()
	w.Reset()
	var out strings.Builder
	if up > 0 {
		fmt.Fprintf(&out, "\x1b[%dA\x1b[J", up)
	}
	out.WriteString(text)
	if _, err := io.WriteString(w.out, out.String()); err != nil {
		return err
	}
	all := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	w.prev = w.prev[:0]
	if lines > 0 && lines <= len(all) {
		for _, l := range all[len(all)-lines:] {
			w.prev = append(w.prev, runewidth.StringWidth(stripEscapes(l)))
		}
	}
	return nil
}

// stripEscapes drops ANSI escape sequences (ESC [ ... letter).
func stripEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && !(s[j] >= '@' && s[j] <= '~') {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
