package study

import (
	"errors"
	"testing"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// TestBuildSpecLayers: later layers win; a file sets its non-zero keys, a
// flag layer exactly the keys it says it sets, zero included.
func TestBuildSpecLayers(t *testing.T) {
	seven := int64(7)
	file := SpecKeys{Arch: "deep", LR: "0.01,0.1", Epochs: 3, Trials: 30, TrainLimit: 2000, Seed: &seven}
	flags := SpecKeys{Epochs: 5, TrainLimit: 0, Sampler: "random"}
	given := map[string]bool{KeyEpochs: true, KeyTrainLimit: true}
	spec, err := BuildSpec("s", Layer{Keys: file}, Layer{Keys: flags, Set: func(k string) bool { return given[k] }})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSpec()
	want.Name, want.Arch, want.Epochs, want.Trials, want.TrainLimit, want.Seed = "s", "deep", 5, 30, 0, 7
	want.Space.LR = search.Dim{Choices: []float64{0.01, 0.1}}
	if spec.Mismatch(want) != "" || spec.Trials != 30 || spec.Seed != 7 || spec.Sampler != "tpe" {
		t.Fatalf("built %+v\nwant  %+v (%s)", spec, want, spec.Mismatch(want))
	}
	var fe *FieldError
	if _, err := BuildSpec("s", Layer{Keys: SpecKeys{Trials: -1}}); !errors.As(err, &fe) || fe.Field != FieldTrials || !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("trials -1: %v, want a FieldError on %s that is an ErrInvalidSpec", err, FieldTrials)
	}
	if _, err := BuildSpec(""); !errors.As(err, &fe) || fe.Field != FieldName {
		t.Fatalf("no name: %v, want a FieldError on %s", err, FieldName)
	}
}

func TestCheckData(t *testing.T) {
	spec := Spec{Name: "s", DataChecksum: "aaaa"}
	if err := CheckData(spec, &data.Dataset{Checksum: "aaaa"}); err != nil {
		t.Fatalf("same data: %v", err)
	}
	if err := CheckData(Spec{Name: "old"}, &data.Dataset{Checksum: "bbbb"}); err != nil {
		t.Fatalf("a study without a checksum: %v", err)
	}
	var dm *DataMismatchError
	err := CheckData(spec, &data.Dataset{Dir: "/d", Checksum: "bbbb"})
	if !errors.As(err, &dm) || dm.Study != "s" || dm.Dir != "/d" || dm.Have != "bbbb" || dm.Want != "aaaa" {
		t.Fatalf("other data: %v, want a DataMismatchError naming both", err)
	}
}

func TestStudyForManual(t *testing.T) {
	store := openStore(t)
	m := Manual{Arch: "mlp", Point: search.Point{LR: 0.1, Optimizer: "sgd", Batch: 128}, Epochs: 4, Seed: 9}
	none := func(string) bool { return false }
	spec, created, err := StudyForManual(store, "hand", m, 500, 1500, none)
	if err != nil || !created || spec.Arch != "mlp" || spec.Epochs != 4 || spec.Seed != 9 || spec.Val != 500 || spec.TrainLimit != 1500 {
		t.Fatalf("new study: %+v, created %v, %v", spec, created, err)
	}
	if _, _, err := LoadSpec(store, "hand"); !errors.Is(err, storage.ErrStudyNotFound) {
		t.Fatalf("StudyForManual stored the study: %v", err)
	}
	prepare(t, store, spec)
	// Existing: its split wins over flags left at their defaults...
	if got, created, err := StudyForManual(store, "hand", m, 10000, 0, none); err != nil || created || got.Val != 500 {
		t.Fatalf("existing study: %+v, created %v, %v", got, created, err)
	}
	// ...but not over a split asked for.
	var fe *FieldError
	_, _, err = StudyForManual(store, "hand", m, 10000, 1500, func(k string) bool { return k == KeyVal })
	if !errors.As(err, &fe) || fe.Field != FieldVal {
		t.Fatalf("another --val: %v, want a FieldError on %s", err, FieldVal)
	}
	other := m
	other.Arch = "deep"
	if _, _, err := StudyForManual(store, "hand", other, 500, 1500, none); !errors.Is(err, ErrManualMismatch) {
		t.Fatalf("another arch: %v, want ErrManualMismatch", err)
	}
}
