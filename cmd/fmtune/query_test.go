package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/storage"
)

// optunaStudy writes a study as Optuna would, with parameters of its own
// (x, a float; layers, an int), one complete trial and one failed one.
func optunaStudy(t *testing.T, dbPath, name string) {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite:///"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.CreateNewStudy(name)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SetStudyDirection(id, goptuna.StudyDirectionMaximize))
	for i, state := range []goptuna.TrialState{goptuna.TrialStateComplete, goptuna.TrialStateFail} {
		tid, err := s.CreateNewTrial(id)
		must(err)
		must(s.SetTrialParam(tid, "x", 0.25*float64(i+1), goptuna.UniformDistribution{Low: 0, High: 1}))
		must(s.SetTrialParam(tid, "layers", float64(2+i), goptuna.IntUniformDistribution{Low: 1, High: 4}))
		if state == goptuna.TrialStateComplete {
			must(s.SetTrialValue(tid, 0.75))
		}
		must(s.SetTrialState(tid, state))
	}
}

// TestTrialsShowTheStudysOwnParameters: `trials` lists the parameters a
// study has (lr, optimizer, batch for fmtune's; x and layers for one Optuna
// wrote), and its CSV leaves missing values empty, so pandas reads numbers.
func TestTrialsShowTheStudysOwnParameters(t *testing.T) {
	dir := t.TempDir()
	f := testFactory(dir, &fakeTrain{})
	optunaStudy(t, filepath.Join(dir, "fmtune.db"), "by-optuna")
	out, errOut, code := runIn(t, f, "trials", "by-optuna")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NUMBER STATE SOURCE LAYERS X VAL_ACCURACY TEST_ACCURACY EPOCHS SECONDS FAIL_REASON" ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "0 complete sampled 2 0.25 0.7500 -") {
		t.Fatalf("trials of an Optuna study: exit %d\n%s\n%s", code, out, errOut)
	}

	// An fmtune study with a queued trial (no accuracies yet) after complete ones.
	if _, errOut, code := runIn(t, f, "tune", "--study", "s", "--trials", "2", "--epochs", "1", "--val", "2", "--workers", "1", "-q"); code != 0 {
		t.Fatalf("tune: %s", errOut)
	}
	if _, errOut, code := runIn(t, f, "enqueue", "s", "--optimizer", "sgd", "--lr", "0.1", "--batch", "128"); code != 0 {
		t.Fatalf("enqueue: %s", errOut)
	}
	out, errOut, code = runIn(t, f, "trials", "s", "--csv")
	if code != 0 || !strings.HasPrefix(out, "number,state,source,lr,optimizer,batch,val_accuracy,") || strings.Contains(out, ",-,") || !strings.Contains(out, ",waiting,manual,0.1,sgd,128,,,") {
		t.Fatalf("trials --csv: exit %d\n%s\n%s", code, out, errOut)
	}
	csvPath := filepath.Join(dir, "trials.csv")
	if err := os.WriteFile(csvPath, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	const python = "/usr/bin/python3"
	if msg, err := exec.Command(python, "-c", "import pandas").CombinedOutput(); err != nil {
		testenv.Skip(t, "optuna", "needs pandas (apt-get install python3-pandas): %v: %s", err, msg)
	}
	script := `import json, sys, pandas; df = pandas.read_csv(sys.argv[1]); print(json.dumps({c: str(df[c].dtype) for c in df.columns}))`
	js, err := exec.Command(python, "-c", script, csvPath).Output()
	if err != nil {
		t.Fatalf("pandas: %v", err)
	}
	var dtypes map[string]string
	if err := json.Unmarshal(js, &dtypes); err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{"lr": "float64", "batch": "int64", "val_accuracy": "float64", "test_accuracy": "float64", "seconds": "float64"} {
		if dtypes[col] != want {
			t.Errorf("pandas reads %s as %s, want %s (all: %v)\n%s", col, dtypes[col], want, dtypes, out)
		}
	}
}

// TestRunsSayWhereTheResultsAre: tune, resume and plan run end by naming
// the storage and the commands that read it; studies names the storage it
// read, so a study stored elsewhere is not taken for lost.
func TestRunsSayWhereTheResultsAre(t *testing.T) {
	dir := t.TempDir()
	f := testFactory(dir, &fakeTrain{})
	db := filepath.Join(dir, "fmtune.db")
	out, errOut, code := runIn(t, f, "tune", "--study", "s", "--trials", "2", "--epochs", "1", "--val", "2", "--workers", "1", "-q")
	want := "results stored in sqlite:///" + db + "\nnext: fmtune best s; fmtune trials s; fmtune report s --out s.html\n"
	if code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("tune: exit %d\n%s\n%s\nwant it to end with\n%s", code, out, errOut, want)
	}
	other := "sqlite:///" + filepath.Join(dir, "other.db")
	out, errOut, code = runIn(t, f, "resume", "s", "--trials", "3", "-q", "--storage", "sqlite:///"+db)
	if code != 0 || !strings.HasSuffix(out, "next: fmtune best s --storage sqlite:///"+db+"; fmtune trials s --storage sqlite:///"+db+"; fmtune report s --out s.html --storage sqlite:///"+db+"\n") {
		t.Fatalf("resume --storage: exit %d\n%s\n%s", code, out, errOut)
	}
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte("storage: "+other+"\ndefaults: {epochs: 1, val: 2}\nstudies:\n  a: {trials: 1}\n  b: {trials: 1}\nsteps:\n  - tune: {study: a}\n  - tune: {study: b}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runIn(t, f, "plan", "run", plan, "-q", "--workers", "1")
	if code != 0 || !strings.HasSuffix(out, "next: fmtune compare a b --storage "+other+"; fmtune report a b --out report.html --storage "+other+"\n") {
		t.Fatalf("plan run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = runIn(t, f, "studies")
	if code != 0 || !strings.HasPrefix(out, "studies in sqlite:///"+db+" (another storage: --storage URL or $FMTUNE_STORAGE)\n") {
		t.Fatalf("studies:\n%s", out)
	}
}
