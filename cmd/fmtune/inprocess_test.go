package main

// Commands run in-process with a Factory of the test's own: a SQLite file
// in a temporary directory, the tiny IDX files of data/testdata and a fake
// trainer. They check parsing and output without a process or the dataset;
// the real-process tests (signals, kill -9, exit codes) stay in the other
// files.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// fakeTrain reports every epoch of a configuration with an accuracy of its
// own, trains nothing, and calls onEpoch (if set) first.
type fakeTrain struct {
	mu      sync.Mutex
	n       int
	onEpoch func(e int)
}

func (f *fakeTrain) train(ctx context.Context, cfg models.Config, _, _ *data.Set, hooks models.Hooks) (study.Evaluator, error) {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	acc := 0.5 + cfg.LR
	for e := 1; e <= cfg.Epochs; e++ {
		if f.onEpoch != nil {
			f.onEpoch(e)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if hooks.OnEpoch != nil {
			if err := hooks.OnEpoch(models.EpochStats{Epoch: e, ValAcc: acc, TrainAcc: acc, ValLoss: 1 - acc, TrainLoss: 1 - acc}); err != nil {
				return nil, fmt.Errorf("fake: %w", err)
			}
		}
	}
	return fakeEval(acc), nil
}

func (f *fakeTrain) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

type fakeEval float64

func (a fakeEval) Evaluate(*data.Set) (float64, float64, error) {
	return 1 - float64(a), float64(a), nil
}

// tinyDir is the directory of the tiny IDX files (8 training, 4 test images).
const tinyDir = "../../data/testdata/tiny-raw"

// testFactory stores in dir/fmtune.db unless --storage says otherwise,
// reads the tiny data unless --data says otherwise, and trains with fake.
func testFactory(dir string, fake *fakeTrain) *Factory {
	return &Factory{
		StoreURL: func(flag string) string {
			if flag != "" {
				return flag
			}
			return "sqlite:///" + filepath.Join(dir, "fmtune.db")
		},
		DataDir: func(flag string) (string, error) {
			if flag == "" {
				flag = tinyDir
			}
			return data.Locate(flag)
		},
		Train: fake.train,
	}
}

// runIn runs a command line in this process and returns stdout, stderr and
// the exit code.
func runIn(t *testing.T, f *Factory, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	code := execute(ctx, f, args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestInProcessTuneResumeTrain(t *testing.T) {
	dir := t.TempDir()
	fake := &fakeTrain{}
	f := testFactory(dir, fake)
	out, errOut, code := runIn(t, f, "tune", "--study", "s", "--trials", "3", "--epochs", "2", "--val", "2", "--workers", "2", "--sampler", "random", "--quiet")
	if code != 0 || fake.count() != 3 {
		t.Fatalf("tune: exit %d after %d trainings\n%s\n%s", code, fake.count(), out, errOut)
	}
	if !strings.HasPrefix(out, "study s: target reached; 3 trials this run; 3 complete, 0 pruned, 0 failed, 0 waiting\nbest: trial ") {
		t.Fatalf("tune printed:\n%s", out)
	}
	out, errOut, code = runIn(t, f, "resume", "s", "--trials", "5", "--workers", "1", "--json", "--quiet")
	var doc struct {
		Reason   string       `json:"reason"`
		Finished int          `json:"finished_this_run"`
		Counts   study.Counts `json:"counts"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("resume --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if doc.Reason != "target reached" || doc.Finished != 2 || doc.Counts.Done != 5 {
		t.Fatalf("resume --json: %+v", doc)
	}
	// A manual run recorded in a new study, then one whose split differs.
	out, errOut, code = runIn(t, f, "train", "--study", "m", "--optimizer", "adam", "--lr", "0.01", "--batch", "128", "--epochs", "2", "--val", "2")
	if code != 0 || !strings.HasPrefix(out, "created study m (arch mlp, default search space)\n") || !strings.Contains(out, "recorded as trial 0 of study m (manual): complete") {
		t.Fatalf("train --study: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = runIn(t, f, "train", "--study", "m", "--optimizer", "adam", "--lr", "0.01", "--batch", "128", "--val", "3")
	want := `fmtune: invalid study spec: --val differs from study "m"'s (val 2, train limit 0): its trials would not be comparable; leave it out`
	if code != 2 || strings.TrimSpace(errOut) != want {
		t.Fatalf("train --study with another --val: exit %d, %q\nwant 2, %q", code, errOut, want)
	}
}

// TestInProcessOtherDataRefused: resume and train --study refuse data that
// is not the study's, naming --data.
func TestInProcessOtherDataRefused(t *testing.T) {
	dir := t.TempDir()
	f := testFactory(dir, &fakeTrain{})
	if _, errOut, code := runIn(t, f, "tune", "--study", "s", "--trials", "1", "--epochs", "1", "--val", "2", "--quiet"); code != 0 {
		t.Fatalf("tune: %d %s", code, errOut)
	}
	other := tinyData(t, dir, func(d string) {
		editFile(t, filepath.Join(d, "train-labels-idx1-ubyte"), func(b []byte) []byte { b[8] = (b[8] + 1) % 10; return b })
	})
	for _, args := range [][]string{
		{"resume", "s", "--data", other, "--quiet"},
		{"train", "--study", "s", "--optimizer", "sgd", "--lr", "0.01", "--batch", "128", "--data", other},
	} {
		_, errOut, code := runIn(t, f, args...)
		if code != 1 || !strings.Contains(errOut, "is not the data study \"s\" was run on") || !strings.HasSuffix(strings.TrimSpace(errOut), "; point --data at the original files") {
			t.Fatalf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// TestInProcessSpecFileAndFlags: a flag given on the command line wins over
// the file, even when it sets a key to zero.
func TestInProcessSpecFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	f := testFactory(dir, &fakeTrain{})
	file := filepath.Join(dir, "study.yaml")
	if err := os.WriteFile(file, []byte("study: from-file\narch: deep\nepochs: 3\ntrain_limit: 6\nval: 2\ntrials: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runIn(t, f, "tune", "-f", file, "--train-limit", "0", "--epochs", "1", "--quiet"); code != 0 {
		t.Fatalf("tune -f: %d %s", code, errOut)
	}
	store, err := storage.Open(context.Background(), f.StoreURL(""))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	spec, _, err := study.LoadSpec(store, "from-file")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Arch != "deep" || spec.Epochs != 1 || spec.TrainLimit != 0 || spec.Val != 2 || spec.Trials != 2 {
		t.Fatalf("stored spec %+v: want the file's arch, val and trials, the flags' epochs 1 and train limit 0", spec)
	}
}

// TestPlanRunPassesStoragePatience: `plan run --storage-patience 2s` gives
// up 2 s into an outage (the server stops during a trial), where the
// default patience would wait 5 minutes.
func TestPlanRunPassesStoragePatience(t *testing.T) {
	u, pg := throwawayPostgres(t)
	dir := t.TempDir()
	fake := &fakeTrain{}
	var once sync.Once
	fake.onEpoch = func(e int) {
		if e == 2 {
			once.Do(func() { pg("down") })
		}
	}
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte("studies:\n  a: {arch: mlp, epochs: 3, trials: 1, val: 2, pruner: none}\nsteps:\n  - tune: {study: a}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errOut, code := runIn(t, testFactory(dir, fake), "plan", "run", plan, "--storage", u, "--storage-patience", "2s", "--workers", "1", "--data", tinyDir, "--quiet")
	if code != 1 || !strings.Contains(errOut, "gave up after 2s (--storage-patience)") {
		t.Fatalf("plan run with the server down: exit %d after %s, want 1 within the patience:\n%s", code, time.Since(start).Round(time.Second), errOut)
	}
}
