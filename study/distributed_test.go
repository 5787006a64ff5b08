package study

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/storage"
)

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
	for i := 0; i < 5; i++ {
		if _, err := there.CloneTrial(id, goptuna.FrozenTrial{
			State: goptuna.TrialStateComplete, Value: 0.99, DatetimeStart: time.Now(),
			IntermediateValues: map[int]float64{1: 0.99, 2: 0.99, 3: 0.99},
			SystemAttrs:        map[string]string{AttrSource: SourceSampled},
		}); err != nil {
			t.Fatal(err)
		}
	}
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
