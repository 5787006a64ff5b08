package study

// The queue: configurations waiting for a worker (grid points, manual runs,
// retries), each a WAITING trial whose parameters are in fixed_params.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
)

// Queued describes a configuration to put in a study's queue.
type Queued struct {
	Point   search.Point
	Source  string // SourceGrid, SourceManual or SourceRetry
	RetryOf int    // number of the trial it retries, or -1
	Epochs  int    // 0: the study's
	Seed    *int64 // nil: derived from the study seed and trial number
}

// Enqueue adds a waiting trial with the fixed point q.Point.
func Enqueue(store goptuna.Storage, studyID int, space search.Space, q Queued) error {
	_, err := addFixedTrial(store, studyID, space, q, goptuna.TrialStateWaiting)
	return err
}

// addFixedTrial adds a trial whose parameters are fixed to q.Point, in state
// (waiting, or running for a trial this process runs at once).
func addFixedTrial(store goptuna.Storage, studyID int, space search.Space, q Queued, state goptuna.TrialState) (int, error) {
	t, err := fixedTrial(studyID, space, q, state)
	if err != nil {
		return 0, err
	}
	id, err := store.CloneTrial(studyID, t)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", q.Point, err)
	}
	return id, nil
}

// fixedTrial is the trial that addFixedTrial inserts.
func fixedTrial(studyID int, space search.Space, q Queued, state goptuna.TrialState) (goptuna.FrozenTrial, error) {
	fixed, err := space.FixedParams(q.Point)
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	b, err := jsonString(fixed)
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	sys := map[string]string{attrFixed: b, AttrSource: q.Source}
	if q.RetryOf >= 0 {
		sys[AttrRetryOf] = strconv.Itoa(q.RetryOf)
	}
	if q.Epochs > 0 {
		sys[AttrEpochs] = strconv.Itoa(q.Epochs)
	}
	if q.Seed != nil {
		sys[AttrSeed] = strconv.FormatInt(*q.Seed, 10)
	}
	return goptuna.FrozenTrial{
		StudyID:            studyID,
		State:              state,
		DatetimeStart:      time.Now(),
		Params:             map[string]interface{}{},
		InternalParams:     map[string]float64{},
		Distributions:      map[string]interface{}{},
		UserAttrs:          map[string]string{},
		SystemAttrs:        sys,
		IntermediateValues: map[int]float64{},
	}, nil
}

// pointFromFixed decodes a trial's fixed_params (as fixedTrial wrote them).
func pointFromFixed(space search.Space, text string) (search.Point, error) {
	var fixed map[string]float64
	if err := json.Unmarshal([]byte(text), &fixed); err != nil {
		return search.Point{}, fmt.Errorf("fixed_params %q: %w", text, err)
	}
	return space.PointFromFixed(fixed)
}

// requeue is the queue entry that retries an interrupted or crashed trial
// with its training seed (seed, or, when nil, the seed its attributes give,
// if any): a manual or grid configuration keeps its source (and a
// manual one its epochs); anything else becomes a retry. The retry of a
// trial that stored a checkpoint continues from it.
func requeue(sys map[string]string, p search.Point, number int, seed *int64) Queued {
	q := Queued{Point: p, Source: SourceRetry, RetryOf: number, Seed: seed}
	if seed != nil {
		// given
	} else if v, err := strconv.ParseInt(sys[AttrSeed], 10, 64); err == nil {
		q.Seed = &v
	}
	switch sys[AttrSource] {
	case SourceManual:
		q.Source = SourceManual
		q.Epochs, _ = strconv.Atoi(sys[AttrEpochs])
	case SourceGrid:
		q.Source = SourceGrid
	}
	return q
}
