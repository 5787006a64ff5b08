package study

// Keeping the best models: when a trial completes, its weights go to the
// storage if it is among the study's best RunOptions.KeepModels, with what a
// model file needs to describe it (ModelMeta).

import (
	"encoding/json"
	"fmt"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
)

// DefaultKeepModels is how many of a study's best models are kept when
// RunOptions.KeepModels is 0.
const DefaultKeepModels = 3

// ModelKeeper is a store that keeps models (storage.Storage does).
type ModelKeeper interface {
	KeepModel(m storage.KeptModel, keep int) (bool, error)
	KeptModels(studyID int) ([]storage.KeptModel, error)
	KeptModel(trialID int) (storage.KeptModel, error)
}

var _ ModelKeeper = (*storage.Storage)(nil)

// Keepable is a trained model whose weights can be kept (models.Model is).
type Keepable interface {
	Weights() []byte
	Confusion(set *data.Set) (models.Confusion, error)
}

var _ Keepable = (*models.Model)(nil)

// ModelMeta describes a kept model: stored with its weights as JSON, and
// written into a model file's metadata.
type ModelMeta struct {
	Study        string            `json:"study"`
	Trial        int               `json:"trial"`
	Source       string            `json:"source"`
	Arch         string            `json:"arch"`
	Params       map[string]any    `json:"params"`
	Epochs       int               `json:"epochs"`
	ValAcc       float64           `json:"val_accuracy"`
	TestAcc      float64           `json:"test_accuracy"`
	DataChecksum string            `json:"data_sha256,omitempty"`
	Version      string            `json:"fmtune_version,omitempty"`
	Confusion    *models.Confusion `json:"test_confusion,omitempty"` // on the test set
	Bytes        int               `json:"bytes,omitempty"`          // of the kept weights (filled when read)
}

// keepCount is how many models opt keeps (0 for none).
func (o RunOptions) keepCount() int {
	switch {
	case o.KeepModels == 0:
		return DefaultKeepModels
	case o.KeepModels < 0:
		return 0
	}
	return o.KeepModels
}

// keep keeps the weights of t's completed model if they are among the
// study's best. It is best effort: the trial is already recorded, so a
// failure is a note, not an error.
func (t *trialRun) keep(model Evaluator, res TrialResult) {
	r := t.r
	n := r.opt.keepCount()
	mk, ok1 := r.store.(ModelKeeper)
	km, ok2 := model.(Keepable)
	if n == 0 || !ok1 || !ok2 {
		return
	}
	err := t.store(fmt.Sprintf("keep the model of trial %d", t.number), func() error {
		// Skip the confusion matrix (a pass over the test set) for a model
		// that would not enter the top n.
		kept, err := mk.KeptModels(r.study.ID)
		if err != nil {
			return err
		}
		better := 0
		for _, m := range kept {
			if m.Value > res.Value || (m.Value == res.Value && m.Number < t.number) {
				better++
			}
		}
		if better >= n {
			return nil
		}
		conf, err := km.Confusion(r.ds.Test)
		if err != nil {
			return err
		}
		meta := ModelMeta{
			Study: r.spec.Name, Trial: t.number, Source: t.source, Arch: r.spec.Arch,
			Params: map[string]any{search.ParamLR: t.point.LR, search.ParamOptimizer: t.point.Optimizer, search.ParamBatch: t.point.Batch}, Epochs: res.Epochs,
			ValAcc: res.Value, TestAcc: res.TestAcc, DataChecksum: r.spec.DataChecksum, Version: r.spec.Version,
			Confusion: &conf,
		}
		b, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		_, err = mk.KeepModel(storage.KeptModel{StudyID: r.study.ID, TrialID: t.id, Arch: r.spec.Arch,
			Value: res.Value, Meta: string(b), Weights: km.Weights()}, n)
		return err
	})
	if err != nil {
		r.progress.Note(fmt.Sprintf("worker %d: trial %d: its model was not kept: %v", t.w, t.number, err))
	}
}

// keptCost fills the kept models' count and bytes of a study.
func keptCost(store goptuna.Storage, studyID int, info *StudyInfo) error {
	mk, ok := store.(ModelKeeper)
	if !ok {
		return nil
	}
	kept, err := mk.KeptModels(studyID)
	for _, k := range kept {
		info.KeptModels++
		info.KeptModelBytes += k.Size
	}
	return err
}
