package study

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/fmtune/fmtune/internal/teststore"
	"github.com/fmtune/fmtune/storage"
)

// sharedURL is an empty storage that several handles share.
func sharedURL(t *testing.T) string { return teststore.SharedURL(t) }

// TestConcurrentPrepareCreatesOneStudy: processes launching the same new grid
// study at the same moment (here: storage handles in goroutines) all get it,
// and its grid is enqueued once.
func TestConcurrentPrepareCreatesOneStudy(t *testing.T) {
	u := sharedURL(t)
	const handles = 4
	stores := make([]*storage.Storage, handles)
	for i := range stores {
		s, err := storage.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	for round := 0; round < 5; round++ {
		spec := DefaultSpec()
		spec.Name = fmt.Sprintf("race-%d", round)
		spec.Sampler = "grid"
		var wg sync.WaitGroup
		errs := make([]error, handles)
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = Prepare(s, spec)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, handle %d: %v", round, i, err)
			}
		}
		trials := trialsOf(t, stores[0], spec.Name)
		if len(trials) != 24 {
			t.Fatalf("round %d: %d trials queued, want the 24 grid points once", round, len(trials))
		}
	}
}

// TestPruningSeesOtherProcessesTrials: five trials finished by "another
// process" (another storage handle on the same file) with near-perfect
// accuracy at every epoch make the median pruner stop this process's trial
// after its second epoch: pruning compares with everyone's results.
func TestPruningSeesOtherProcessesTrials(t *testing.T) {
	ds := smallData(t)
	path := "sqlite:///" + filepath.Join(t.TempDir(), "shared.db")
	here, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	there, err := storage.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer there.Close()
	spec := testSpec("shared-pruning")
	spec.Epochs, spec.Trials = 3, 6
	spec = prepare(t, there, spec)
	id, err := there.GetStudyIDFromName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	addStrongTrials(t, there, id, 5, spec.Epochs)
	out, err := Run(context.Background(), here, ds, spec, RunOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts.Pruned != 1 || out.Counts.Done != 6 {
		t.Fatalf("outcome %+v: want this process's one trial pruned by the others' results", out)
	}
	trials := trialsOf(t, here, spec.Name)
	if last := trials[len(trials)-1]; last.State != goptuna.TrialStatePruned || len(last.IntermediateValues) != 2 {
		t.Fatalf("trial %d: %s after %d epochs, want pruned after 2", last.Number, last.State, len(last.IntermediateValues))
	}
}

// addStrongTrials stores n complete sampled trials with accuracy 0.99 at
// every one of their epochs: any real trial is below their median.
func addStrongTrials(t *testing.T, store *storage.Storage, studyID, n, epochs int) {
	t.Helper()
	curve := map[int]float64{}
	for e := 1; e <= epochs; e++ {
		curve[e] = 0.99
	}
	for i := 0; i < n; i++ {
		if _, err := store.CloneTrial(studyID, goptuna.FrozenTrial{
			State: goptuna.TrialStateComplete, Value: 0.99, DatetimeStart: time.Now(),
			IntermediateValues: curve,
			SystemAttrs:        map[string]string{AttrSource: SourceSampled},
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLastEpochIsNeverPruned: a trial below everyone's median at its last
// epoch has already trained in full; it completes (with its test accuracy)
// instead of being pruned for nothing.
func TestLastEpochIsNeverPruned(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := testSpec("last-epoch")
	spec.Epochs, spec.Trials = 2, 6
	spec = prepare(t, store, spec)
	id, err := store.GetStudyIDFromName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	addStrongTrials(t, store, id, 5, spec.Epochs)
	out, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	trials := trialsOf(t, store, spec.Name)
	last := trials[len(trials)-1]
	if out.Counts.Pruned != 0 || last.State != goptuna.TrialStateComplete || len(last.IntermediateValues) != 2 {
		t.Fatalf("outcome %+v, trial %d %s after %d epochs: want complete after 2", out, last.Number, last.State, len(last.IntermediateValues))
	}
	if _, ok := last.UserAttrs["test_accuracy"]; !ok {
		t.Fatalf("trial %d has no test accuracy: %v", last.Number, last.UserAttrs)
	}
}
