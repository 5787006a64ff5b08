package study

// Checks a command makes before it trains in a stored study: the data is
// the study's, and where a manual run is recorded.

import (
	"errors"
	"fmt"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/storage"
)

// DataMismatchError says that the data found is not the data a study was
// run on (their checksums differ).
type DataMismatchError struct {
	Study      string
	Dir        string // where the data was found
	Have, Want string // the checksums of the data found and of the study's
}

func (e *DataMismatchError) Error() string {
	return fmt.Sprintf("the data in %s (checksum %.12s) is not the data study %q was run on (%.12s)", e.Dir, e.Have, e.Study, e.Want)
}

// CheckData returns a *DataMismatchError unless ds is the data the study of
// spec was run on (or the study stored no checksum).
func CheckData(spec Spec, ds *data.Dataset) error {
	if spec.DataChecksum == "" || spec.DataChecksum == ds.Checksum {
		return nil
	}
	return &DataMismatchError{Study: spec.Name, Dir: ds.Dir, Have: ds.Checksum, Want: spec.DataChecksum}
}

// StudyForManual returns the spec of the study name that a manual run m is
// to be recorded in, and whether it is new. A new study (created true) has
// m's architecture, epochs and seed, the default search space and the split
// val, trainLimit; nothing is stored yet (Prepare stores it, with the
// data's checksum). An existing study keeps its own split: a val or
// trainLimit that explicit (KeyVal, KeyTrainLimit) says was asked for and
// that differs from the study's is a FieldError. Either way m must fit the
// study (CheckManual).
func StudyForManual(store goptuna.Storage, name string, m Manual, val, trainLimit int, explicit func(key string) bool) (spec Spec, created bool, err error) {
	spec, _, err = LoadSpec(store, name)
	switch {
	case errors.Is(err, storage.ErrStudyNotFound):
		spec = DefaultSpec()
		spec.Name, spec.Arch, spec.Epochs, spec.Seed = name, m.Arch, m.Epochs, m.Seed
		spec.Val, spec.TrainLimit = val, trainLimit
		created = true
	case err != nil:
		return Spec{}, false, err
	default:
		for _, f := range []struct {
			key, field string
			differ     bool
		}{
			{KeyVal, FieldVal, val != spec.Val},
			{KeyTrainLimit, FieldTrainLimit, trainLimit != spec.TrainLimit},
		} {
			if f.differ && explicit != nil && explicit(f.key) {
				return Spec{}, false, &FieldError{Field: f.field, Msg: fmt.Sprintf("differs from study %q's (val %d, train limit %d): its trials would not be comparable; leave it out",
					name, spec.Val, spec.TrainLimit)}
			}
		}
	}
	if err := CheckManual(spec, m); err != nil {
		return Spec{}, false, err
	}
	return spec, created, nil
}
