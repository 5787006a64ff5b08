package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/ptytest"
	"github.com/fmtune/fmtune/internal/testenv"
)

// The test binary doubles as the fmtune binary: with FMTUNE_TEST_CLI=1 it
// runs fmtune with its arguments, so tests can start, signal and kill real
// fmtune processes.
func TestMain(m *testing.M) {
	if os.Getenv("FMTUNE_TEST_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fmtune returns a command that runs fmtune in dir.
func fmtune(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FMTUNE_TEST_CLI=1", "FMTUNE_STORAGE=", "OPENBLAS_NUM_THREADS=1")
	return cmd
}

// runFmtune runs fmtune to the end and returns stdout, stderr and the exit code.
func runFmtune(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := fmtune(t, dir, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func needData(t *testing.T) {
	t.Helper()
	if _, err := data.Locate(""); err != nil {
		testenv.Skip(t, "data", "Fashion-MNIST not available (apt-get install dataset-fashion-mnist): %v", err)
	}
}

func openDB(t *testing.T, dir string) *storage.Storage {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite:///"+filepath.Join(dir, "fmtune.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func trialsOf(t *testing.T, dir, name string) []study.TrialInfo {
	t.Helper()
	trials, err := study.Trials(openDB(t, dir), name, "")
	if err != nil {
		t.Fatal(err)
	}
	return trials
}

func pointOf(t *testing.T, info study.TrialInfo) search.Point {
	t.Helper()
	p := search.Point{}
	lr, ok1 := info.Params["lr"].(float64)
	opt, ok2 := info.Params["optimizer"].(string)
	b, ok3 := info.Params["batch"].(int)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("trial %d params %v", info.Number, info.Params)
	}
	p.LR, p.Optimizer, p.Batch = lr, opt, b
	return p
}

// TestTuneThenBestJSON is the first acceptance check, shortened.
func TestTuneThenBestJSON(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	out, errOut, code := runFmtune(t, dir, "tune", "--study", "demo", "--arch", "mlp", "--trials", "5",
		"--epochs", "2", "--workers", "2", "--train-limit", "2000")
	if code != 0 {
		t.Fatalf("tune exited %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "target reached") || !strings.Contains(errOut, "epoch 1") {
		t.Fatalf("tune output lacks the outcome or per-epoch lines:\n%s\n%s", out, errOut)
	}
	out, errOut, code = runFmtune(t, dir, "best", "demo", "--json")
	if code != 0 {
		t.Fatalf("best exited %d: %s", code, errOut)
	}
	var best study.TrialInfo
	if err := json.Unmarshal([]byte(out), &best); err != nil {
		t.Fatalf("best --json is not JSON: %v\n%s", err, out)
	}
	var again struct {
		Arch       string `json:"arch"`
		Val        int    `json:"val"`
		TrainLimit int    `json:"train_limit"`
		Retrain    string `json:"retrain_command"`
	}
	if err := json.Unmarshal([]byte(out), &again); err != nil || again.Arch != "mlp" || again.Val != 10000 || again.TrainLimit != 2000 || !strings.HasPrefix(again.Retrain, "fmtune train --arch mlp ") {
		t.Fatalf("best --json lacks what reproduces it: %+v, %v\n%s", again, err, out)
	}
	// The printed command trains the best trial again, to the same accuracy.
	out, errOut, code = runFmtune(t, dir, append(strings.Fields(again.Retrain)[1:], "--json")...)
	var retrained struct {
		History []struct {
			ValAcc float64 `json:"val_accuracy"`
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(out), &retrained); code != 0 || err != nil || len(retrained.History) != best.Epochs {
		t.Fatalf("%s: exit %d, %v\n%s\n%s", again.Retrain, code, err, out, errOut)
	}
	if got := retrained.History[best.Epochs-1].ValAcc; got != *best.ValAcc {
		t.Fatalf("%s: val accuracy %v, the trial's was %v", again.Retrain, got, *best.ValAcc)
	}
	var stored study.TrialInfo
	for _, tr := range trialsOf(t, dir, "demo") {
		if tr.Number == best.Number {
			stored = tr
		}
	}
	if stored.State != "complete" || stored.TestAcc == nil || best.TestAcc == nil || *stored.TestAcc != *best.TestAcc || *best.TestAcc < 0.5 {
		t.Fatalf("best names trial %d with test accuracy %v; stored: %+v", best.Number, best.TestAcc, stored)
	}
	out, _, code = runFmtune(t, dir, "studies", "--json")
	var list []study.StudyInfo
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Complete+list[0].Pruned != 5 {
		t.Fatalf("studies --json: code %d, %s", code, out)
	}
	out, _, code = runFmtune(t, dir, "trials", "demo", "--csv")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 5 {
		t.Fatalf("trials --csv: code %d, want a header and 5 rows:\n%s", code, out)
	}
}

func TestGridRunsEachCombinationOnce(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	out, errOut, code := runFmtune(t, dir, "tune", "--study", "g", "--sampler", "grid", "--epochs", "1",
		"--workers", "2", "--train-limit", "1000", "--val", "500", "--quiet")
	if code != 0 || !strings.Contains(out, "grid complete") {
		t.Fatalf("grid tune exited %d:\n%s\n%s", code, out, errOut)
	}
	seen := map[search.Point]int{}
	for _, tr := range trialsOf(t, dir, "g") {
		if tr.State != "complete" && tr.State != "pruned" {
			t.Fatalf("trial %d is %s", tr.Number, tr.State)
		}
		seen[pointOf(t, tr)]++
	}
	if len(seen) != 24 {
		t.Fatalf("%d distinct combinations, want 24", len(seen))
	}
	for p, n := range seen {
		if n != 1 {
			t.Fatalf("%v ran %d times", p, n)
		}
	}
	// A grid over a range is refused as a usage error, and stores nothing.
	_, errOut, code = runFmtune(t, dir, "tune", "--study", "g2", "--sampler", "grid", "--lr", "1e-4:0.3:log")
	if code != 2 || !strings.Contains(errOut, "the grid sampler needs choices, not ranges") {
		t.Fatalf("grid over a range: exit %d, %s", code, errOut)
	}
}

// waitForRunningTrial polls the storage until a trial of the study has
// trained at least one epoch.
func waitForRunningTrial(t *testing.T, dir, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if _, err := os.Stat(filepath.Join(dir, "fmtune.db")); err != nil {
			continue
		}
		trials, err := study.Trials(openDB(t, dir), name, "running")
		if err == nil {
			for _, tr := range trials {
				if tr.Epochs >= 1 {
					return
				}
			}
		}
	}
	t.Fatal("no trial was running in time")
}

// TestKill9ThenResume kills a tuning process in the middle of its trials and
// resumes: the killed trials become FAIL, their parameters are retried, and
// the target is reached with every trial accounted for.
func TestKill9ThenResume(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	args := []string{"--heartbeat", "200ms", "--workers", "2", "--quiet"}
	cmd := fmtune(t, dir, append([]string{"tune", "--study", "k", "--trials", "5", "--epochs", "4",
		"--train-limit", "6000", "--val", "2000", "--pruner", "none"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForRunningTrial(t, dir, "k", 60*time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	var killed []search.Point
	for _, tr := range trialsOf(t, dir, "k") {
		if tr.State == "running" && tr.Params != nil {
			killed = append(killed, pointOf(t, tr))
		}
	}
	if len(killed) == 0 {
		t.Fatal("the kill left no running trial")
	}
	out, errOut, code := runFmtune(t, dir, append([]string{"resume", "k"}, args...)...)
	if code != 0 {
		t.Fatalf("resume exited %d:\n%s\n%s", code, out, errOut)
	}
	trials := trialsOf(t, dir, "k")
	done := 0
	retried := map[search.Point]bool{}
	for _, tr := range trials {
		switch tr.State {
		case "complete", "pruned":
			done++
			if tr.Source == study.SourceRetry {
				retried[pointOf(t, tr)] = true
			}
		case "fail":
			if !strings.Contains(tr.FailReason, "heartbeat") {
				t.Fatalf("trial %d failed for %q", tr.Number, tr.FailReason)
			}
		default:
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
	}
	if done != 5 {
		t.Fatalf("%d finished trials after resume, want the target 5", done)
	}
	for _, p := range killed {
		if !retried[p] {
			t.Fatalf("killed trial's %v was not retried (retried: %v)", p, retried)
		}
	}
}

// TestInterruptExits130AndRequeues sends Ctrl-C (SIGINT) to a running study.
func TestInterruptExits130AndRequeues(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	cmd := fmtune(t, dir, "tune", "--study", "i", "--trials", "4", "--epochs", "20", "--workers", "2",
		"--train-limit", "6000", "--val", "2000", "--pruner", "none", "--quiet")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForRunningTrial(t, dir, "i", 60*time.Second)
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v, want exit code 130; stderr:\n%s", err, errOut.String())
	}
	t.Logf("stopped %v after the signal", time.Since(start))
	var interrupted, waiting int
	for _, tr := range trialsOf(t, dir, "i") {
		switch tr.State {
		case "fail":
			if tr.FailReason != study.ReasonInterrupted {
				t.Fatalf("trial %d failed for %q", tr.Number, tr.FailReason)
			}
			interrupted++
		case "waiting":
			waiting++
		case "running":
			t.Fatalf("trial %d left running", tr.Number)
		}
	}
	if interrupted == 0 || waiting != interrupted {
		t.Fatalf("%d interrupted, %d re-queued: want the same, at least one", interrupted, waiting)
	}
}

func TestResumeRefusesUnknownStudyAndTuneAnotherSpec(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	if _, errOut, code := runFmtune(t, dir, "tune", "--study", "s", "--trials", "1", "--epochs", "1", "--train-limit", "500", "--val", "200", "-q"); code != 0 {
		t.Fatalf("tune: %d %s", code, errOut)
	}
	_, errOut, code := runFmtune(t, dir, "tune", "--study", "s", "--arch", "deep", "--trials", "1", "--epochs", "1", "--train-limit", "500", "--val", "200")
	if code != 2 || !strings.Contains(errOut, `study "s" (arch: stored mlp, asked deep)`) || !strings.Contains(errOut, "`fmtune resume s`") {
		t.Fatalf("tune with another arch: exit %d, %s", code, errOut)
	}
	_, errOut, code = runFmtune(t, dir, "resume", "nope")
	if code != 1 || !strings.Contains(errOut, `fmtune: study not found: "nope" (studies in this storage: s)`) {
		t.Fatalf("resume of an unknown study: exit %d, %s", code, errOut)
	}
	_, errOut, code = runFmtune(t, dir, "best", "nope")
	if code != 1 || !strings.Contains(errOut, `fmtune: study not found: "nope" (studies in this storage: s)`) {
		t.Fatalf("best of an unknown study: exit %d, %s", code, errOut)
	}
}

func TestBestWithoutCompleteTrialExits1(t *testing.T) {
	dir := t.TempDir()
	store := openDB(t, dir)
	spec := study.DefaultSpec()
	spec.Name = "empty"
	if _, err := study.Prepare(store, spec); err != nil {
		t.Fatal(err)
	}
	id, _ := store.GetStudyIDFromName("empty")
	tid, _ := store.CreateNewTrial(id)
	_ = store.SetTrialState(tid, goptuna.TrialStateFail)
	_, errOut, code := runFmtune(t, dir, "best", "empty")
	if code != 1 || !strings.Contains(errOut, "no complete trial") {
		t.Fatalf("best with no complete trial: exit %d, %q", code, errOut)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		args []string
		want string // the message, on stderr after "fmtune: "
	}{
		"no study":        {[]string{"tune"}, "invalid study spec: --study is required: a study needs a name, e.g. --study demo"},
		"workers 0":       {[]string{"tune", "--study", "x", "--workers", "0"}, "--workers must be at least 1 (got 0)"},
		"epochs 0":        {[]string{"tune", "--study", "x", "--epochs", "0"}, "invalid study spec: --epochs must be at least 1 (got 0)"},
		"trials -1":       {[]string{"tune", "--study", "x", "--trials", "-1"}, "invalid study spec: --trials must be 0 (the default target: the number of combinations, or 50 when lr or batch is a range) or more (got -1)"},
		"lr zero":         {[]string{"tune", "--study", "x", "--lr", "0,0.1"}, `invalid search space: --lr "0,0.1": every value must be a finite number > 0`},
		"empty choices":   {[]string{"tune", "--study", "x", "--optimizers", ""}, `invalid search space: --optimizers "": empty choice (valid: sgd, adam, nadam, rmsprop)`},
		"unknown arch":    {[]string{"tune", "--study", "x", "--arch", "resnet"}, `invalid study spec: unknown arch "resnet" (valid: mlp, deep, cnn, cnn-dropout)`},
		"unknown sampler": {[]string{"tune", "--study", "x", "--sampler", "cmaes"}, `invalid study spec: unknown name: sampler "cmaes" (valid: tpe, grid, random)`},
		"unknown pruner":  {[]string{"tune", "--study", "x", "--pruner", "patient"}, `invalid study spec: unknown name: pruner "patient" (valid: median, asha, hyperband, none)`},
		"bad flag":        {[]string{"tune", "--study", "x", "--epochz", "3"}, "unknown flag --epochz; did you mean --epochs?"},
		"far flag":        {[]string{"tune", "--study", "x", "--colour"}, "unknown flag --colour (fmtune tune --help lists the flags)"},
		"bad command":     {[]string{"tunee"}, `unknown command "tunee" for "fmtune"; did you mean "tune"?`},
		"bad subcommand":  {[]string{"data", "infoo"}, `unknown command "infoo" for "fmtune data"; did you mean "info"? (fmtune data --help lists the commands)`},
		"train lr":        {[]string{"train", "--lr", "abc"}, `--lr "abc": "abc" is not a number (e.g. --lr 0.01)`},
		"tune lr":         {[]string{"tune", "--study", "x", "--lr", "abc"}, `invalid search space: --lr "abc": "abc" is not a number`},
		"epochs abc":      {[]string{"tune", "--study", "x", "--epochs", "abc"}, `--epochs "abc": "abc" is not a whole number (e.g. --epochs 10)`},
		"timeout":         {[]string{"tune", "--study", "x", "--timeout", "5x"}, `--timeout "5x": "5x" is not a duration`},
		"no value":        {[]string{"train", "--lr"}, "--lr needs a value"},
		"best two names":  {[]string{"best", "loop", "extra"}, `fmtune best takes one argument, the study name; got 2: "loop" "extra"`},
		"bad state":       {[]string{"trials", "x", "--state", "done"}, `--state "done": valid states are complete, pruned, fail, running, waiting`},
		"resume no name":  {[]string{"resume"}, "fmtune resume needs the study name"},
		"enqueue epochs 0": {[]string{"enqueue", "x", "--lr", "0.1", "--optimizer", "sgd", "--batch", "128", "--epochs", "0"},
			"--epochs must be at least 1 (got 0); leave it out for the study's"},
	} {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := runFmtune(t, dir, c.args...)
			if code != 2 || !strings.HasPrefix(errOut, "fmtune: "+c.want) || strings.Contains(errOut, "goroutine") {
				t.Fatalf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, "fmtune: "+c.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "fmtune.db")); err == nil {
		t.Fatal("a refused command created fmtune.db")
	}
}

// TestTuneOnATerminalWithoutStudy: `fmtune tune` typed on a terminal, with
// no arguments, refuses at once (no prompt, no display) and says the fix.
func TestTuneOnATerminalWithoutStudy(t *testing.T) {
	dir := t.TempDir()
	pty := ptytest.Open(t, 80, 24)
	cmd := fmtune(t, dir, "tune")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pty.Term, pty.Term, pty.Term
	err := cmd.Run()
	out := pty.Close()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "--study is required: a study needs a name, e.g. --study demo") {
		t.Fatalf("fmtune tune on a terminal: %v, output %q; want exit 2 and the fix", err, out)
	}
}
