package study

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// TestRunKeepsTheBestModels trains a real grid and checks that the storage
// holds exactly the best KeepModels models, whose weights give the stored
// test accuracy exactly, with their test confusion matrix.
func TestRunKeepsTheBestModels(t *testing.T) {
	ds := smallData(t)
	store := openStore(t)
	spec := gridSpec("keep")
	spec.Epochs = 1
	spec = prepare(t, store, spec)
	if _, err := Run(context.Background(), store, ds, spec, RunOptions{Workers: 2, KeepModels: 2}); err != nil {
		t.Fatal(err)
	}
	var complete []goptuna.FrozenTrial
	for _, tr := range trialsOf(t, store, spec.Name) {
		if tr.State == goptuna.TrialStateComplete {
			complete = append(complete, tr)
		}
	}
	sort.SliceStable(complete, func(i, j int) bool { return complete[i].Value > complete[j].Value })
	studyID, _ := store.GetStudyIDFromName(spec.Name)
	kept, err := store.KeptModels(studyID)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 || kept[0].TrialID != complete[0].ID || kept[1].TrialID != complete[1].ID {
		t.Fatalf("kept %+v, want the trials %d and %d (of %d complete)", kept, complete[0].Number, complete[1].Number, len(complete))
	}
	t.Logf("kept trials %d (%.4f) and %d (%.4f)", kept[0].Number, kept[0].Value, kept[1].Number, kept[1].Value)
	for i, k := range kept {
		m, err := store.KeptModel(k.TrialID)
		if err != nil {
			t.Fatal(err)
		}
		model, err := models.LoadWeights(m.Arch, m.Weights)
		if err != nil {
			t.Fatal(err)
		}
		_, acc, err := model.Evaluate(ds.Test)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := strconv.ParseFloat(complete[i].UserAttrs["test_accuracy"], 64)
		if acc != stored {
			t.Errorf("trial %d: the kept weights give test accuracy %v, the trial stored %v", k.Number, acc, stored)
		}
		var meta ModelMeta
		if err := json.Unmarshal([]byte(m.Meta), &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Trial != k.Number || meta.Arch != "mlp" || meta.TestAcc != stored || meta.Confusion == nil ||
			meta.Confusion.Total() != ds.Test.Len() || meta.Confusion.Accuracy() != acc || meta.Params["optimizer"] == nil {
			t.Errorf("trial %d: meta %+v", k.Number, meta)
		}
	}

	// A manual trial is kept the same way, ranked by its value.
	manual, err := RunManual(context.Background(), store, ds, spec, Manual{Arch: "mlp", Point: search.Point{LR: 0.1, Optimizer: "adam", Batch: 128}}, RunOptions{Workers: 1, KeepModels: 5})
	if err != nil {
		t.Fatal(err)
	}
	kept, err = store.KeptModels(studyID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, k := range kept {
		found = found || k.Number == manual.Number
		if i > 0 && k.Value > kept[i-1].Value {
			t.Errorf("kept models out of order: %+v", kept)
		}
	}
	if len(kept) != 3 || !found {
		t.Errorf("after manual trial %d: kept %+v", manual.Number, kept)
	}
}

func TestRunKeepsNoModelWhenAskedNot(t *testing.T) {
	store := openStore(t)
	spec := prepare(t, store, gridSpec("keep-none"))
	// The fake trainer's models have no weights: nothing to keep either way.
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: (&fakeTrainer{}).Train}); err != nil {
		t.Fatal(err)
	}
	ds := smallData(t)
	if _, err := RunManual(context.Background(), store, ds, spec, Manual{Arch: "mlp", Point: search.Point{LR: 0.1, Optimizer: "sgd", Batch: 128}, Epochs: 1}, RunOptions{Workers: 1, KeepModels: -1}); err != nil {
		t.Fatal(err)
	}
	studyID, _ := store.GetStudyIDFromName(spec.Name)
	if kept, err := store.KeptModels(studyID); err != nil || len(kept) != 0 {
		t.Fatalf("kept %v, %v; want none", kept, err)
	}
	trials := trialsOf(t, store, spec.Name)
	if _, err := store.KeptModel(trials[len(trials)-1].ID); !errors.Is(err, storage.ErrModelNotKept) {
		t.Fatalf("KeptModel: %v, want ErrModelNotKept", err)
	}
}
