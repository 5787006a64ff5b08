package study

// Reading kept models back: the model of a trial with what describes it,
// for `fmtune best --save` and `fmtune trials --save-model`.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/storage"
)

// ErrModelNotKept is wrapped by KeptModelOf for a trial whose model the
// storage does not hold.
var ErrModelNotKept = storage.ErrModelNotKept

// KeptModelOf returns the kept model of trial number of study name (a
// negative number: the trial Best picks) and its description. store must keep
// models (ModelKeeper).
func KeptModelOf(store goptuna.Storage, name string, number int) (*models.Model, ModelMeta, error) {
	mk, ok := store.(ModelKeeper)
	if !ok {
		return nil, ModelMeta{}, fmt.Errorf("this storage keeps no models")
	}
	trials, err := allTrials(store, name)
	if err != nil {
		return nil, ModelMeta{}, err
	}
	which := fmt.Sprintf("trial %d", number)
	if number < 0 {
		// The trial `fmtune best` shows (with repeats: the best run of the
		// configuration with the best mean).
		best, err := Best(store, name)
		if err != nil {
			return nil, ModelMeta{}, err
		}
		number, which = best.Number, fmt.Sprintf("best trial %d", best.Number)
	}
	id := -1
	for _, t := range trials {
		if t.Number == number {
			id = t.ID
		}
	}
	if id < 0 {
		return nil, ModelMeta{}, fmt.Errorf("study %q has no trial %d (its trials are 0..%d)", name, number, len(trials)-1)
	}
	km, err := mk.KeptModel(id)
	if errors.Is(err, storage.ErrModelNotKept) {
		return nil, ModelMeta{}, fmt.Errorf("study %q: %s: %w; %s", name, which, ErrModelNotKept, keptHint(mk, store, name))
	}
	if err != nil {
		return nil, ModelMeta{}, fmt.Errorf("study %q: read the model of trial %d: %w", name, number, err)
	}
	var meta ModelMeta
	if err := json.Unmarshal([]byte(km.Meta), &meta); err != nil {
		return nil, ModelMeta{}, fmt.Errorf("study %q: the description of trial %d's model is damaged: %w", name, number, err)
	}
	meta.Bytes = km.Size
	m, err := models.LoadWeights(km.Arch, km.Weights)
	if err != nil {
		return nil, ModelMeta{}, fmt.Errorf("study %q: trial %d's kept model is damaged: %w", name, number, err)
	}
	return m, meta, nil
}

// keptHint says which models a study keeps, for an error.
func keptHint(mk ModelKeeper, store goptuna.Storage, name string) string {
	const why = "a study keeps the models of its best --keep-models (default 3) complete trials only"
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		return why
	}
	kept, err := mk.KeptModels(id)
	if err != nil || len(kept) == 0 {
		return why + ", and this study has none (it ran before fmtune kept models, or with --keep-models 0): retrain the trial with `fmtune train --study " + name + "` and its parameters"
	}
	nums := make([]string, len(kept))
	for i, k := range kept {
		nums[i] = strconv.Itoa(k.Number)
	}
	return fmt.Sprintf("%s; this study keeps trials %s: `fmtune trials %s --save-model N --out FILE` saves one of them", why, strings.Join(nums, ", "), name)
}

// FileMetadata is the description as the string metadata of a model file,
// with the version of the fmtune that writes the file.
func (m ModelMeta) FileMetadata(version string) map[string]string {
	params, _ := json.Marshal(m.Params)
	out := map[string]string{
		models.MetaArch:  m.Arch,
		"study":          m.Study,
		"trial":          strconv.Itoa(m.Trial),
		"source":         m.Source,
		"params":         string(params),
		"epochs":         strconv.Itoa(m.Epochs),
		"val_accuracy":   strconv.FormatFloat(m.ValAcc, 'g', -1, 64),
		"test_accuracy":  strconv.FormatFloat(m.TestAcc, 'g', -1, 64),
		"data_sha256":    m.DataChecksum,
		"fmtune_version": version,
	}
	if m.Version != "" && m.Version != version {
		out["trained_by"] = "fmtune " + m.Version
	}
	return out
}
