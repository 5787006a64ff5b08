// Package ptytest gives tests a pseudo-terminal of a fixed size (Linux), so
// that a live display can be checked at the width a user's terminal has,
// and what was drawn on it read back as text.
package ptytest

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal: a program writes to Term (its stdout or stderr),
// and everything written is collected from the other side.
type PTY struct {
	Term   *os.File
	master *os.File

	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// Open opens a pseudo-terminal of cols x rows, closed when the test ends.
func Open(t testing.TB, cols, rows int) *PTY {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	p := &PTY{Term: s, master: m, done: make(chan struct{})}
	p.Resize(t, cols, rows)
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			k, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:k])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { s.Close(); m.Close() })
	return p
}

// Resize gives the terminal a new size, as a user resizing the window does.
func (p *PTY) Resize(t testing.TB, cols, rows int) {
	t.Helper()
	ws := &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		t.Fatalf("resize pty: %v", err)
	}
}

// Output is everything written so far, escape sequences included.
func (p *PTY) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Close closes the program's side and waits for everything written.
func (p *PTY) Close() string {
	p.Term.Close()
	<-p.done
	return p.Output()
}

var escape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]`)

// Segments splits output into the stretches of text written between
// cursor movements, line ends and carriage returns, escape sequences
// removed: none may be wider than the terminal, or it wrapped.
func Segments(output string) []string {
	s := escape.ReplaceAllString(output, "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
