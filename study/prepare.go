package study

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/storage"
)

// ErrSpecMismatch is returned when a study is launched again with a
// different spec than the one it was created with.
var ErrSpecMismatch = errors.New("the study exists with a different spec")

// Prepare makes the study spec.Name ready to run: it creates it (storing
// the spec and, for a grid, enqueueing every point) or, when it exists,
// checks that spec matches the stored one and updates the trial target if
// spec sets one. It returns the spec to run with.
func Prepare(store goptuna.Storage, spec Spec) (Spec, error) {
	stored, _, err := LoadSpec(store, spec.Name)
	if err == nil {
		if m := stored.Mismatch(spec); m != "" {
			return Spec{}, fmt.Errorf("%w: study %q (%s); use another --study name, or `fmtune resume %s` to continue it as it was", ErrSpecMismatch, spec.Name, m, spec.Name)
		}
		return SetTarget(store, spec.Name, spec.Trials)
	}
	if !errors.Is(err, storage.ErrStudyNotFound) {
		return Spec{}, err
	}
	return create(store, spec)
}

// create stores a new study. When another process creates the same study at
// the same moment, the loser loads the winner's study instead.
func create(store goptuna.Storage, spec Spec) (Spec, error) {
	id, err := store.CreateNewStudy(spec.Name)
	if err != nil {
		if _, _, lerr := LoadSpec(store, spec.Name); lerr == nil {
			return Prepare(store, spec)
		}
		return Spec{}, fmt.Errorf("create study %q: %w", spec.Name, err)
	}
	if spec.Created.IsZero() {
		spec.Created = time.Now().UTC().Truncate(time.Second)
	}
	// New studies store lr and batch choices as numbers (older ones keep strings).
	spec.Space.NumericChoices = true
	if err := store.SetStudyDirection(id, goptuna.StudyDirectionMaximize); err != nil {
		return Spec{}, fmt.Errorf("create study %q: %w", spec.Name, err)
	}
	text, err := MarshalSpec(spec)
	if err != nil {
		return Spec{}, err
	}
	if err := store.SetStudySystemAttr(id, SpecAttr, text); err != nil {
		return Spec{}, fmt.Errorf("create study %q: store spec: %w", spec.Name, err)
	}
	for k, v := range map[string]string{"arch": spec.Arch, "sampler": spec.Sampler, "objective": "validation accuracy"} {
		if err := store.SetStudyUserAttr(id, k, v); err != nil {
			return Spec{}, fmt.Errorf("create study %q: %w", spec.Name, err)
		}
	}
	if spec.Sampler == "grid" {
		points, err := spec.Space.Grid()
		if err != nil {
			return Spec{}, err
		}
		for _, p := range points {
			for range spec.repeats() {
				if err := Enqueue(store, id, spec.Space, Queued{Point: p, Source: SourceGrid, RetryOf: -1}); err != nil {
					return Spec{}, err
				}
			}
		}
	}
	if err := store.SetStudySystemAttr(id, readyAttr, "1"); err != nil {
		return Spec{}, fmt.Errorf("create study %q: %w", spec.Name, err)
	}
	return spec, nil
}

// LoadSpec returns the stored spec and ID of the study called name. It
// waits a little for a study that another process is creating right now.
func LoadSpec(store goptuna.Storage, name string) (Spec, int, error) {
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		missing, nf := studyNotFound(store, name, err)
		if missing {
			return Spec{}, 0, nf
		}
		// The study is listed after all: another process created it between
		// the lookup and the listing. Look again.
		if id, err = store.GetStudyIDFromName(name); err != nil {
			return Spec{}, 0, nf
		}
	}
	for wait := 0; ; wait++ {
		spec, ok, err := readSpec(store, id)
		if err != nil || ok {
			return spec, id, err
		}
		if wait == 20 {
			attrs, _ := store.GetStudySystemAttrs(id)
			if _, ok := attrs[SpecAttr]; ok {
				return Spec{}, 0, fmt.Errorf("study %q was not completely created (its grid was being enqueued when its process stopped); delete it and start again", name)
			}
			return Spec{}, 0, fmt.Errorf("study %q was not created by fmtune (it has no stored spec); fmtune can list and query it but not run it", name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// readSpec reads the stored spec of study id; ok is false while the study
// has no complete spec (not fmtune's, or being created).
func readSpec(store goptuna.Storage, id int) (spec Spec, ok bool, err error) {
	attrs, err := store.GetStudySystemAttrs(id)
	if err != nil {
		return Spec{}, false, fmt.Errorf("read study %d: %w", id, err)
	}
	text, found := attrs[SpecAttr]
	if !found || attrs[readyAttr] == "" {
		return Spec{}, false, nil
	}
	spec, err = UnmarshalSpec(text)
	return spec, err == nil, err
}

// studyNotFound explains a failed lookup of study name. When the storage's
// list of studies lacks it, missing is true and the error wraps
// storage.ErrStudyNotFound and lists the studies that do exist; otherwise
// (the study is there after all, or the list cannot be read) it is the
// storage's own error.
func studyNotFound(store goptuna.Storage, name string, cause error) (missing bool, err error) {
	summaries, lerr := store.GetAllStudySummaries()
	if lerr != nil {
		return false, fmt.Errorf("look up study %q: %w", name, cause)
	}
	names := make([]string, 0, len(summaries))
	for _, s := range summaries {
		if s.Name == name {
			return false, fmt.Errorf("look up study %q: %w", name, cause)
		}
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return true, fmt.Errorf("%w: %q: the storage has no studies yet; start one with `fmtune tune --study %s`", storage.ErrStudyNotFound, name, name)
	}
	return true, fmt.Errorf("%w: %q (studies in this storage: %s)", storage.ErrStudyNotFound, name, strings.Join(names, ", "))
}

// SetTarget changes the stored trial target of a study (0 keeps it).
func SetTarget(store goptuna.Storage, name string, trials int) (Spec, error) {
	spec, id, err := LoadSpec(store, name)
	if err != nil || trials == 0 || trials == spec.Trials {
		return spec, err
	}
	if trials < 0 {
		return Spec{}, &FieldError{Field: FieldTrials, Msg: fmt.Sprintf("must be 0 (keep the stored target) or more (got %d)", trials)}
	}
	spec.Trials = trials
	text, err := MarshalSpec(spec)
	if err != nil {
		return Spec{}, err
	}
	if err := store.SetStudySystemAttr(id, SpecAttr, text); err != nil {
		return Spec{}, fmt.Errorf("study %q: store new target: %w", name, err)
	}
	return spec, nil
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
