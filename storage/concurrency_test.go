package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/c-bata/goptuna/medianstopping"
)

// The second process of TestConcurrentProcesses is this test binary run again with
// these variables set.
const (
	envChildURL   = "FMTUNE_STORAGE_TEST_CHILD_URL"
	envChildStudy = "FMTUNE_STORAGE_TEST_CHILD_STUDY"
)

const (
	procWorkers         = 8
	procTrialsPerWorker = 50
)

// TestConcurrentProcesses: 8 goroutines in each of 2 processes run 50 trials each (a cheap
// objective, median pruning) against one SQLite file. Nothing may fail ("database is
// locked" included), every trial must finish, numbers must be 0..N-1, and SQLite's
// integrity check must pass.
func TestConcurrentProcesses(t *testing.T) {
	if u := os.Getenv(envChildURL); u != "" {
		runStudyWorkers(t, u, os.Getenv(envChildStudy), 1000)
		return
	}
	path := filepath.Join(t.TempDir(), "shared.db")
	u := "sqlite:///" + path
	s := mustOpen(t, u)
	name := "concurrent"
	_, err := goptuna.CreateStudy(name, goptuna.StudyOptionStorage(s), goptuna.StudyOptionLogger(nil),
		goptuna.StudyOptionDirection(goptuna.StudyDirectionMinimize))
	ok(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcesses$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envChildURL+"="+u, envChildStudy+"="+name)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	ok(t, cmd.Start())
	began := time.Now()
	runStudyWorkers(t, u, name, 0)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("second process: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "database is locked") {
		t.Fatalf("second process saw 'database is locked':\n%s", out.String())
	}
	elapsed := time.Since(began)

	id := res(s.GetStudyIDFromName(name)).must(t)
	trials := res(s.GetAllTrials(id)).must(t)
	const n = 2 * procWorkers * procTrialsPerWorker
	checkNumbers(t, trials, n)
	states := map[goptuna.TrialState]int{}
	for _, tr := range trials {
		states[tr.State]++
		if !tr.State.IsFinished() {
			t.Errorf("trial #%d is %v after both processes finished", tr.Number, tr.State)
		}
	}
	if states[goptuna.TrialStateComplete] == 0 || states[goptuna.TrialStatePruned] == 0 {
		t.Errorf("states %v: want both COMPLETE and PRUNED trials", states)
	}
	var integrity string
	ok(t, s.db.QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&integrity))
	if integrity != "ok" {
		t.Errorf("PRAGMA integrity_check = %q", integrity)
	}
	t.Logf("%d trials from 2 processes x %d goroutines in %v: %v", n, procWorkers, elapsed.Round(time.Millisecond), states)
}

// runStudyWorkers opens its own storage (as a separate process would) and runs
// procWorkers goroutines, each optimizing procTrialsPerWorker trials of the study.
func runStudyWorkers(t *testing.T, u, name string, seed int64) {
	s := mustOpen(t, u)
	var wg sync.WaitGroup
	errs := make(chan error, procWorkers)
	for w := 0; w < procWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			study, err := goptuna.LoadStudy(name,
				goptuna.StudyOptionStorage(s),
				goptuna.StudyOptionSampler(goptuna.NewRandomSampler(goptuna.RandomSamplerOptionSeed(seed+int64(w)))),
				goptuna.StudyOptionPruner(medianstopping.NewMedianPruner()),
				goptuna.StudyOptionLogger(nil))
			if err == nil {
				err = study.Optimize(cheapObjective, procTrialsPerWorker)
			}
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if strings.Contains(err.Error(), "database is locked") {
			t.Errorf("database is locked: %v", err)
		} else {
			t.Error(err)
		}
	}
}

// cheapObjective has a parameter of each distribution kind and reports a learning curve
// the median pruner can cut.
func cheapObjective(trial goptuna.Trial) (float64, error) {
	x, err := trial.SuggestFloat("x", -5, 5)
	if err != nil {
		return 0, err
	}
	batch, err := trial.SuggestStepInt("batch", 32, 256, 32)
	if err != nil {
		return 0, err
	}
	opt, err := trial.SuggestCategorical("optimizer", []string{"sgd", "adam", "nadam", "rmsprop"})
	if err != nil {
		return 0, err
	}
	loss := x*x + float64(batch)/256
	if opt == "adam" {
		loss /= 2
	}
	for step := 0; step < 3; step++ {
		v := loss + math.Pow(0.5, float64(step))
		if err := trial.ShouldPrune(step, v); err != nil {
			if errors.Is(err, goptuna.ErrTrialPruned) {
				return 0, goptuna.ErrTrialPruned
			}
			return 0, err
		}
	}
	return loss, nil
}
