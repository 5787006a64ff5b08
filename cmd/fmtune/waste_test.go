package main

// Studies that waste nothing, on real processes: no configuration trained
// twice, dead trials stopped, interrupted trials continued from their last
// finished epoch.

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"
)

// bothStorages runs test on a SQLite file and on a fresh PostgreSQL
// database.
func bothStorages(t *testing.T, test func(t *testing.T, u string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite:///"+filepath.Join(t.TempDir(), "shared.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, testenv.PostgresDB(t, "fmtune_waste")) })
}

// pointsOf counts the configurations of trials.
func pointsOf(t *testing.T, trials []goptuna.FrozenTrial) map[search.Point]int {
	t.Helper()
	seen := map[search.Point]int{}
	for _, tr := range trials {
		p, err := search.PointFromParams(tr.Params)
		if err != nil {
			t.Fatalf("trial %d: %v (%s)", tr.Number, err, tr.SystemAttrs[study.AttrFailReason])
		}
		seen[p]++
	}
	return seen
}

// TestNoRepeatsAcrossThreeProcesses: three processes of two workers share a
// TPE (then a random) study over 20 configurations with a target of 30:
// every configuration is trained exactly once, then every process stops
// with "space exhausted".
func TestNoRepeatsAcrossThreeProcesses(t *testing.T) {
	needData(t)
	bothStorages(t, func(t *testing.T, u string) {
		for _, sampler := range []string{"tpe", "random"} {
			name := "norepeat-" + sampler
			args := []string{"tune", "--study", name, "--storage", u, "--sampler", sampler, "--trials", "30",
				"--lr", "0.001,0.003,0.01,0.03,0.1", "--optimizers", "adam,sgd", "--batch", "128,256",
				"--epochs", "1", "--train-limit", "300", "--val", "200", "--pruner", "none", "--workers", "2"}
			dir := t.TempDir()
			var procs []*proc
			for i := 0; i < 3; i++ {
				procs = append(procs, startFmtune(t, dir, fmt.Sprintf("process %d", i), args...))
			}
			for _, p := range procs {
				if code := p.wait(t, 5*time.Minute); code != 0 {
					t.Fatalf("%s: %s exited %d:\n%s", sampler, p.name, code, tail(p.err.String(), 30))
				}
				if !strings.Contains(p.out.String(), study.ReasonExhausted) {
					t.Fatalf("%s: %s did not end %q:\n%s", sampler, p.name, study.ReasonExhausted, p.out.String())
				}
			}
			trials := storedTrials(openURL(t, u), name)
			checkNumbers(t, trials)
			seen := pointsOf(t, trials)
			if len(trials) != 20 || len(seen) != 20 {
				t.Fatalf("%s: %d trials over %d configurations, want 20 and 20", sampler, len(trials), len(seen))
			}
			replaced := 0
			for _, tr := range trials {
				if tr.State != goptuna.TrialStateComplete {
					t.Fatalf("%s: trial %d is %s", sampler, tr.Number, tr.State)
				}
				if tr.SystemAttrs[study.AttrInsteadOf] != "" {
					replaced++
				}
			}
			t.Logf("%s: 20 configurations, 20 trials; %d times TPE's own proposal was a repeat and was replaced", sampler, replaced)
		}
	})
}

// TestRepeatsTrainEachConfigurationWithTwoSeeds: --repeats 2 gives exactly
// two trials per configuration, with different seeds, and best shows the
// mean and standard deviation over them.
func TestRepeatsTrainEachConfigurationWithTwoSeeds(t *testing.T) {
	needData(t)
	for _, sampler := range []string{"tpe", "grid"} {
		dir := t.TempDir()
		out, errOut, code := runFmtune(t, dir, "tune", "--study", "rep", "--sampler", sampler, "--repeats", "2",
			"--lr", "0.01,0.1", "--optimizers", "sgd", "--batch", "128,256", "--trials", "50",
			"--epochs", "1", "--train-limit", "300", "--val", "200", "--pruner", "none", "--workers", "2", "--quiet")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", sampler, code, out, errOut)
		}
		trials := storedTrials(openDB(t, dir), "rep")
		seen := pointsOf(t, trials)
		if len(trials) != 8 || len(seen) != 4 {
			t.Fatalf("%s: %d trials over %d configurations, want 8 over 4", sampler, len(trials), len(seen))
		}
		seeds := map[search.Point][]string{}
		for _, tr := range trials {
			p, _ := search.PointFromParams(tr.Params)
			seeds[p] = append(seeds[p], tr.UserAttrs["seed"])
		}
		for p, s := range seeds {
			if len(s) != 2 || s[0] == s[1] || s[0] == "" {
				t.Fatalf("%s: %s trained with seeds %v, want two different ones", sampler, p, s)
			}
		}
		out, errOut, code = runFmtune(t, dir, "best", "rep", "--json")
		if code != 0 {
			t.Fatalf("best: exit %d: %s", code, errOut)
		}
		var best struct {
			Repeats *struct {
				N    int     `json:"n"`
				Mean float64 `json:"mean"`
				Std  float64 `json:"std"`
			} `json:"repeats"`
		}
		if err := json.Unmarshal([]byte(out), &best); err != nil || best.Repeats == nil || best.Repeats.N != 2 {
			t.Fatalf("%s: best --json does not give the mean over 2 repeats: %v\n%s", sampler, err, out)
		}
	}
}

// TestDeadTrialStopsAtDeadAfter: SGD at lr 50 sits at chance on the mlp
// (val accuracy 0.09-0.11 every epoch); with --dead-after 2 it stops after epoch 2 as PRUNED, not
// learning, though the pruner (none) would never stop it; with
// --dead-after 0 it trains all its epochs.
func TestDeadTrialStopsAtDeadAfter(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	for _, c := range []struct {
		deadAfter string
		epochs    int
		state     goptuna.TrialState
	}{{"2", 2, goptuna.TrialStatePruned}, {"0", 6, goptuna.TrialStateComplete}} {
		name := "dead-" + c.deadAfter
		out, errOut, code := runFmtune(t, dir, "tune", "--study", name, "--dead-after", c.deadAfter,
			"--lr", "50", "--optimizers", "sgd", "--batch", "128", "--trials", "1",
			"--epochs", "6", "--train-limit", "2000", "--val", "1000", "--pruner", "none", "--workers", "1")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		trials := storedTrials(openDB(t, dir), name)
		if len(trials) != 1 {
			t.Fatalf("%d trials", len(trials))
		}
		tr := trials[0]
		if tr.State != c.state || len(tr.IntermediateValues) != c.epochs {
			t.Fatalf("--dead-after %s: trial %s after %d epochs, want %s after %d", c.deadAfter, tr.State, len(tr.IntermediateValues), c.state, c.epochs)
		}
		if c.state == goptuna.TrialStatePruned {
			reason := tr.UserAttrs["pruned_reason"]
			if !strings.HasPrefix(reason, study.ReasonNotLearning) || !strings.Contains(errOut+out, study.ReasonNotLearning) {
				t.Fatalf("pruned for %q; output:\n%s", reason, errOut)
			}
		}
	}
}

// curveOf is a trial's stored learning curve without its timings.
func curveOf(t *testing.T, tr goptuna.FrozenTrial) [][4]float64 {
	t.Helper()
	var c []struct {
		TrainLoss float64 `json:"train_loss"`
		TrainAcc  float64 `json:"train_accuracy"`
		ValLoss   float64 `json:"val_loss"`
		ValAcc    float64 `json:"val_accuracy"`
	}
	if err := json.Unmarshal([]byte(tr.UserAttrs["curve"]), &c); err != nil {
		t.Fatalf("trial %d curve: %v", tr.Number, err)
	}
	var out [][4]float64
	for _, e := range c {
		out = append(out, [4]float64{e.TrainLoss, e.TrainAcc, e.ValLoss, e.ValAcc})
	}
	return out
}

// resumeCase stops a one-trial study of 10 epochs (how: stop, given the
// study's args, returns the trial's epoch the checkpoint was taken after),
// resumes it, and checks that the retry trained only the epochs after the
// checkpoint and ends with the curve, value and test accuracy of an
// uninterrupted run with the same seed.
func resumeCase(t *testing.T, u string, stop func(t *testing.T, dir string, args []string) int) {
	dir := t.TempDir()
	args := []string{"--storage", u, "--trials", "1", "--epochs", "10", "--optimizers", "adam", "--lr", "0.001", "--batch", "128",
		"--train-limit", "3000", "--val", "1000", "--pruner", "none", "--workers", "1", "--threads", "1", "--heartbeat", "200ms"}
	tune := append([]string{"tune", "--study", "ck"}, args...)
	at := stop(t, dir, tune)
	out, errOut, code := runFmtune(t, dir, "resume", "ck", "--storage", u, "--heartbeat", "200ms")
	if code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, errOut)
	}
	trials := storedTrials(openURL(t, u), "ck")
	last := trials[len(trials)-1]
	if last.State != goptuna.TrialStateComplete || last.UserAttrs[study.AttrResumedFromEpoch] != strconv.Itoa(at) ||
		last.UserAttrs[study.AttrResumedFromTrial] != "0" {
		t.Fatalf("the retry is %s, resumed from trial %q epoch %q; want complete, from trial 0 epoch %d", last.State,
			last.UserAttrs[study.AttrResumedFromTrial], last.UserAttrs[study.AttrResumedFromEpoch], at)
	}
	trainedHere := 0
	for _, line := range strings.Split(errOut+out, "\n") {
		for e := 1; e <= 10; e++ {
			if strings.Contains(line, fmt.Sprintf("trial %d epoch %d:", last.Number, e)) {
				trainedHere++
				if e <= at {
					t.Errorf("the retry trained epoch %d again: %s", e, line)
				}
			}
		}
	}
	if got := last.UserAttrs["epochs_trained"]; got != strconv.Itoa(10-at) || trainedHere != 10-at {
		t.Fatalf("the retry trained %s epochs (%d epoch lines), want %d:\n%s", got, trainedHere, 10-at, errOut)
	}
	if n := len(last.IntermediateValues); n != 10 {
		t.Fatalf("the retry's stored curve has %d epochs, want 10", n)
	}

	ref := filepath.Join(t.TempDir(), "ref.db")
	refArgs := slices.Clone(tune)
	refArgs[slices.Index(refArgs, "--storage")+1] = "sqlite:///" + ref
	if out, errOut, code := runFmtune(t, dir, refArgs...); code != 0 {
		t.Fatalf("reference run: exit %d\n%s\n%s", code, out, errOut)
	}
	whole := storedTrials(openURL(t, "sqlite:///"+ref), "ck")[0]
	if !slices.Equal(curveOf(t, whole), curveOf(t, last)) {
		t.Fatalf("curves differ:\nuninterrupted %v\nresumed       %v", curveOf(t, whole), curveOf(t, last))
	}
	if whole.Value != last.Value || whole.UserAttrs["test_accuracy"] != last.UserAttrs["test_accuracy"] {
		t.Fatalf("value %v / %v, test accuracy %s / %s", whole.Value, last.Value, whole.UserAttrs["test_accuracy"], last.UserAttrs["test_accuracy"])
	}
	t.Logf("continued from epoch %d, trained %d epochs; final val %.4f test %s equal to the uninterrupted run's", at, 10-at, last.Value, last.UserAttrs["test_accuracy"])
}

// TestKill9AtEpoch6ThenResumeTrainsTheRest: kill -9 right after the
// checkpoint of epoch 6 of 10; resume trains epochs 7-10 only.
func TestKill9AtEpoch6ThenResumeTrainsTheRest(t *testing.T) {
	needData(t)
	bothStorages(t, func(t *testing.T, u string) {
		resumeCase(t, u, func(t *testing.T, dir string, args []string) int {
			cmd := fmtune(t, dir, args...)
			cmd.Env = append(cmd.Env, fault.Env+"="+fault.AfterCheckpoint+":6")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("the process was not killed: %v\n%s", err, out)
			}
			time.Sleep(time.Second) // its heartbeat goes stale (4 x 200ms)
			return 6
		})
	})
}

// TestCtrlCThenResumeTrainsTheRest: Ctrl-C during epoch 7 of 10 (sent
// right after the checkpoint of epoch 6); resume trains epochs 7-10 only.
func TestCtrlCThenResumeTrainsTheRest(t *testing.T) {
	needData(t)
	resumeCase(t, "sqlite:///"+filepath.Join(t.TempDir(), "ctrlc.db"), func(t *testing.T, dir string, args []string) int {
		cmd := fmtune(t, dir, args...)
		cmd.Env = append(cmd.Env, fault.Env+"="+fault.AfterCheckpoint+":6", fault.SignalEnv+"=INT")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 130 {
			t.Fatalf("after Ctrl-C: %v, want exit 130\n%s", err, out)
		}
		return 6
	})
}

// TestPostgresRestartThenResumeTrainsTheRest: the PostgreSQL server goes
// down in the middle of the trial for longer than --storage-patience, so
// the run stops; once it is back, resume continues from the last stored
// checkpoint.
func TestPostgresRestartThenResumeTrainsTheRest(t *testing.T) {
	needData(t)
	u, pg := throwawayPostgres(t)
	resumeCase(t, u, func(t *testing.T, dir string, args []string) int {
		p := startFmtune(t, dir, "tune", append(args, "--storage-patience", "2s")...)
		s := openURL(t, u)
		at := 0
		waitFor(t, 2*time.Minute, "a checkpoint after epoch 4", func() bool {
			trials := storedTrials(s, "ck")
			if len(trials) == 0 {
				return false
			}
			e, _, err := s.LoadCheckpoint(trials[0].ID)
			at = e
			return err == nil && e >= 4
		})
		pg("down")
		if code := p.wait(t, 2*time.Minute); code != 1 {
			t.Fatalf("with the server down: exit %d, want 1\n%s", code, tail(p.err.String(), 20))
		}
		s.Close()
		pg("up")
		time.Sleep(time.Second) // the trial's heartbeat goes stale
		// The last checkpoint stored before the server went down.
		s2 := openURL(t, u)
		e, _, err := s2.LoadCheckpoint(storedTrials(s2, "ck")[0].ID)
		if err != nil || e < at {
			t.Fatalf("checkpoint epoch %d (%v), was %d", e, err, at)
		}
		return e
	})
}
