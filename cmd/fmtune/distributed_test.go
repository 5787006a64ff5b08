package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fmtune/fmtune/internal/teststore"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// Tests of several fmtune processes sharing one study, as several machines would.
// They use PostgreSQL when $FMTUNE_TEST_POSTGRES names a server (CI starts one),
// else one SQLite file.

// sharedStorage returns the URL of an empty storage for a study that several
// processes share: a fresh database on the PostgreSQL server in
// $FMTUNE_TEST_POSTGRES, dropped at the end, or else a SQLite file in dir.
func sharedStorage(t *testing.T, dir string) string {
	t.Helper()
	return teststore.SharedURL(t)
}

// openURL opens a storage for the test to look at.
func openURL(t *testing.T, u string) *storage.Storage {
	t.Helper()
	s, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// syncBuffer is a bytes.Buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a running fmtune process.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out, err syncBuffer
	done     chan struct{}
	code     int
}

// startFmtune starts fmtune in dir; the process is killed at the end of the
// test if it is still running.
func startFmtune(t *testing.T, dir, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: fmtune(t, dir, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			p.code = exit.ExitCode()
		case err != nil:
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to end and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not end within %v\nstdout:\n%s\nstderr:\n%s", p.name, timeout, p.out.String(), tail(p.err.String(), 40))
		return -1
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// storedTrials reads a study's trials, or nil while it does not exist.
func storedTrials(s *storage.Storage, name string) []goptuna.FrozenTrial {
	id, err := s.GetStudyIDFromName(name)
	if err != nil {
		return nil
	}
	trials, err := s.GetAllTrials(id)
	if err != nil {
		return nil
	}
	sort.Slice(trials, func(i, j int) bool { return trials[i].Number < trials[j].Number })
	return trials
}

// workerPID is the process that ran a trial, from the fmtune:worker attribute
// (host:pid/goroutine).
func workerPID(tr goptuna.FrozenTrial) int {
	w := tr.SystemAttrs[study.AttrWorker]
	var pid, g int
	if i := strings.LastIndexByte(w, ':'); i >= 0 {
		_, _ = fmt.Sscanf(w[i+1:], "%d/%d", &pid, &g)
	}
	return pid
}

// checkNumbers fails unless the trial numbers are 0..n-1 without gaps or duplicates.
func checkNumbers(t *testing.T, trials []goptuna.FrozenTrial) {
	t.Helper()
	for i, tr := range trials {
		if tr.Number != i {
			t.Fatalf("trial numbers are not 0..%d without duplicates: position %d has number %d", len(trials)-1, i, tr.Number)
		}
	}
}

// budgetDone counts the trials toward a study's target, as the engine does:
// sampled (not manual) trials that are complete, pruned or failed for a
// reason of their own, not interrupted or crashed ones that were retried.
func budgetDone(trials []goptuna.FrozenTrial) int {
	n := 0
	for _, tr := range trials {
		switch tr.State {
		case goptuna.TrialStateComplete, goptuna.TrialStatePruned:
			n++
		case goptuna.TrialStateFail:
			switch tr.SystemAttrs[study.AttrFailKind] {
			case study.FailKindInterrupted, study.FailKindStale:
			default:
				n++
			}
		}
	}
	return n
}

// small are the training flags of a quick study.
var small = []string{"--epochs", "1", "--train-limit", "500", "--val", "300", "--quiet"}

// TestDistributedGrid: three processes of two workers each, started at once
// with the same `fmtune tune` on one storage, share the default grid of 24
// points: every point runs exactly once, trial numbers are unique, and the
// best trial is the best of the stored values.
func TestDistributedGrid(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	u := sharedStorage(t, dir)
	args := append([]string{"tune", "--study", "dist-grid", "--storage", u, "--sampler", "grid", "--workers", "2"}, small...)
	start := time.Now()
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, startFmtune(t, dir, fmt.Sprintf("process %d", i), args...))
	}
	pids := map[int]string{}
	for _, p := range procs {
		if code := p.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s\n%s", p.name, code, p.out.String(), tail(p.err.String(), 30))
		}
		if !strings.Contains(p.out.String(), "grid complete") && !strings.Contains(p.out.String(), "target reached") {
			t.Fatalf("%s ended without saying the grid is done:\n%s", p.name, p.out.String())
		}
		pids[p.pid()] = p.name
	}
	t.Logf("3 processes x 2 workers, 24 grid points: %v", time.Since(start).Round(time.Second))

	s := openURL(t, u)
	trials := storedTrials(s, "dist-grid")
	checkNumbers(t, trials)
	seen := map[search.Point]int{}
	ran := map[string]int{}
	best := math.Inf(-1)
	for _, tr := range trials {
		if tr.State != goptuna.TrialStateComplete && tr.State != goptuna.TrialStatePruned {
			t.Fatalf("trial %d is %s (%s)", tr.Number, tr.State, tr.SystemAttrs[study.AttrFailReason])
		}
		p, err := search.PointFromParams(tr.Params)
		if err != nil {
			t.Fatal(err)
		}
		seen[p]++
		ran[pids[workerPID(tr)]]++
		if tr.State == goptuna.TrialStateComplete && tr.Value > best {
			best = tr.Value
		}
	}
	if len(trials) != 24 || len(seen) != 24 {
		t.Fatalf("%d trials over %d distinct points, want 24 and 24", len(trials), len(seen))
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%v ran %d times", p, n)
		}
	}
	t.Logf("trials per process: %v", ran)
	if ran[""] > 0 {
		t.Fatalf("%d trials were run by none of the three processes", ran[""])
	}
	if len(ran) < 2 {
		t.Fatalf("all trials ran in one process (%v): the others did not cooperate", ran)
	}

	out, errOut, code := runFmtune(t, dir, "best", "dist-grid", "--storage", u, "--json")
	if code != 0 {
		t.Fatalf("best: exit %d, %s", code, errOut)
	}
	var info study.TrialInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.ValAcc == nil {
		t.Fatalf("best --json: %v\n%s", err, out)
	}
	if *info.ValAcc != best {
		t.Fatalf("best names val accuracy %v, the best stored value is %v", *info.ValAcc, best)
	}
}

// TestDistributedBudget: one `fmtune tune` creates a study with a target of
// 10 trials and two `fmtune worker` processes join it, two workers each, with
// trials short enough that all six race for the last places: exactly 10
// trials run, none beyond the target.
func TestDistributedBudget(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	u := sharedStorage(t, dir)
	// The study is created first (--timeout 1ns starts no trial), then three
	// processes join it at once, so that they start acquiring trials at
	// about the same moment (after loading the same data): each trial takes
	// longer than the others need to catch up.
	create := startFmtune(t, dir, "create", "tune", "--study", "dist-budget", "--storage", u, "--trials", "10",
		"--epochs", "2", "--train-limit", "1000", "--val", "200", "--pruner", "median", "--timeout", "1ns", "--quiet")
	if code := create.wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("creating the study exited %d:\n%s", code, tail(create.err.String(), 30))
	}
	s := openURL(t, u)
	var procs []*proc
	for i := 1; i <= 3; i++ {
		procs = append(procs, startFmtune(t, dir, fmt.Sprintf("worker %d", i),
			"worker", "--study", "dist-budget", "--storage", u, "--workers", "2", "--quiet"))
	}
	pids := map[int]bool{}
	for _, p := range procs {
		if code := p.wait(t, 5*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s\n%s", p.name, code, p.out.String(), tail(p.err.String(), 30))
		}
		pids[p.pid()] = true
	}
	trials := storedTrials(s, "dist-budget")
	checkNumbers(t, trials)
	for _, tr := range trials {
		if tr.State == goptuna.TrialStateRunning || tr.State == goptuna.TrialStateWaiting {
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
	}
	if n := budgetDone(trials); n != 10 || len(trials) != 10 {
		t.Fatalf("%d trials, %d counting toward the target: want exactly 10 (no overshoot)", len(trials), n)
	}
	ran := map[int]int{}
	for _, tr := range trials {
		pid := workerPID(tr)
		if !pids[pid] {
			t.Fatalf("trial %d was run by pid %d, none of the workers %v", tr.Number, pid, pids)
		}
		ran[pid]++
	}
	if len(ran) < 2 {
		t.Fatalf("trials per process %v: one process ran them all, so the budget was never shared", ran)
	}
	t.Logf("trials per process: %v", ran)
}
