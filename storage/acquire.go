package storage

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
)

// Operations for many workers sharing a study: each decision that depends on the other
// workers (may I start a trial? which one?) and the write that acts on it are one
// transaction, taken under the study's lock (SQLite: BEGIN IMMEDIATE, which serialises
// every writer of the file; PostgreSQL: SELECT ... FOR UPDATE on the study row, which
// CreateNewTrial, CloneTrial and these methods all take). So a budget checked here holds
// across goroutines, processes and machines: no two workers both see "one trial left".

// PickAction is what an AcquireTrial chooser decided.
type PickAction int

// The choices of an AcquireTrial chooser.
const (
	PickNothing PickAction = iota // start nothing now
	PickClaim                     // claim the WAITING trial Pick.TrialID (set it RUNNING)
	PickCreate                    // create a new RUNNING trial
)

// Pick is an AcquireTrial chooser's decision.
type Pick struct {
	Action  PickAction
	TrialID int // the trial to claim, for PickClaim
	// For PickCreate: the new trial is a copy of Template when set (as
	// CloneTrial inserts it, but RUNNING and starting now), and Queue's
	// trials are inserted after it (typically WAITING), in the same
	// transaction.
	Template *goptuna.FrozenTrial
	Queue    []goptuna.FrozenTrial
}

// AcquireTrial runs choose on the study's trials as they are committed right now, inside
// one write transaction that holds the study's lock, and carries its decision out in the
// same transaction: it claims the chosen WAITING trial, creates a new RUNNING trial
// (numbered like CreateNewTrial), or does nothing. It returns the trial's id, or -1 when
// choose picked nothing. A claim of a trial that is no longer WAITING (taken by a worker
// that claims without the study lock, through SetTrialState) gives
// goptuna.ErrTrialCannotBeUpdated, unwrapped.
//
// choose sees each trial's ID, Number, StudyID, State, DatetimeStart and SystemAttrs,
// but not its parameters, values or user attributes. It must decide from them alone, and
// may be called more than once (a transaction that meets a transient error is retried).
func (s *Storage) AcquireTrial(studyID int, choose func([]goptuna.FrozenTrial) Pick) (int, error) {
	id := -1
	err := s.writeR(func(ctx context.Context, r runner) error {
		id = -1
		if err := studyExists(ctx, r, studyID, true); err != nil {
			return err
		}
		heads, err := loadTrialHeads(ctx, r, studyID)
		if err != nil {
			return err
		}
		pick := choose(heads)
		switch pick.Action {
		case PickNothing:
			return nil
		case PickCreate:
			if pick.Template == nil {
				id, _, err = insertTrial(ctx, r, studyID, stateRunning, time.Now(), time.Time{})
			} else {
				t := *pick.Template
				t.State, t.DatetimeStart = goptuna.TrialStateRunning, time.Now()
				id, err = cloneTrial(ctx, r, studyID, t, stateRunning)
			}
			if err != nil {
				return err
			}
			for _, q := range pick.Queue {
				st, err := stateToDB(q.State)
				if err != nil {
					return err
				}
				if _, err := cloneTrial(ctx, r, studyID, q, st); err != nil {
					return err
				}
			}
			return nil
		case PickClaim:
			n, err := r.execN(ctx, "UPDATE trials SET state = ?, datetime_start = ? "+
				"WHERE trial_id = ? AND study_id = ? AND state = ?",
				stateRunning, timeArg(time.Now()), pick.TrialID, studyID, stateWaiting)
			if err != nil {
				return err
			}
			if n != 1 {
				return goptuna.ErrTrialCannotBeUpdated
			}
			id = pick.TrialID
			return nil
		}
		return fmt.Errorf("acquire trial: unknown pick %d", pick.Action)
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// FailTrial marks an unfinished trial FAIL with the reason (Optuna's fail_reason system
// attribute) and kind (AttrFailKind, unless ""), and, when requeue is not nil, inserts requeue as a new trial of the same
// study (as CloneTrial does, typically WAITING with fixed_params) in the same transaction,
// so no other worker sees the failed trial's place free before its retry is queued. The
// trial's checkpoint (see SaveCheckpoint) moves to the retry, or is deleted without one. It
// returns the new trial's id, or -1. A finished trial gives goptuna.ErrTrialCannotBeUpdated,
// unwrapped, and changes nothing.
func (s *Storage) FailTrial(trialID int, reason, kind string, requeue *goptuna.FrozenTrial) (int, error) {
	var state string
	if requeue != nil {
		var err error
		if state, err = stateToDB(requeue.State); err != nil {
			return -1, err
		}
	}
	newID := -1
	err := s.writeR(func(ctx context.Context, r runner) error {
		newID = -1
		var studyID int
		if err := r.queryRow(ctx, "SELECT study_id FROM trials WHERE trial_id = ?", trialID).Scan(&studyID); err != nil {
			if err == sql.ErrNoRows {
				return fmt.Errorf("trial id %d: %w", trialID, ErrTrialNotFound)
			}
			return err
		}
		// The study first, then the trial: the order every writer of this package locks in.
		if err := studyExists(ctx, r, studyID, true); err != nil {
			return err
		}
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		if err := setTrialAttr(ctx, r, "trial_system_attributes", trialID, failReasonKey, reason); err != nil {
			return err
		}
		if kind != "" {
			if err := setTrialAttr(ctx, r, "trial_system_attributes", trialID, AttrFailKind, kind); err != nil {
				return err
			}
		}
		if _, err := r.exec(ctx, "UPDATE trials SET state = ?, datetime_complete = ? WHERE trial_id = ?",
			stateFail, timeArg(time.Now()), trialID); err != nil {
			return err
		}
		if requeue == nil {
			return s.deleteCheckpoints(ctx, r, "trial_id = ?", trialID)
		}
		fault.Point(fault.DuringRequeue)
		var err error
		if newID, err = cloneTrial(ctx, r, studyID, *requeue, state); err != nil {
			return err
		}
		return s.moveCheckpoint(ctx, r, trialID, newID)
	})
	if err != nil {
		return -1, err
	}
	s.setNaN(trialID, false)
	return newID, nil
}

// loadTrialHeads reads what AcquireTrial's chooser sees of each trial of the study.
func loadTrialHeads(ctx context.Context, r runner, studyID int) ([]goptuna.FrozenTrial, error) {
	rows, err := r.query(ctx, "SELECT trial_id, number, state, datetime_start FROM trials "+
		"WHERE study_id = ? ORDER BY number, trial_id", studyID)
	if err != nil {
		return nil, err
	}
	var heads []goptuna.FrozenTrial
	index := make(map[int]int)
	for rows.Next() {
		var (
			t      goptuna.FrozenTrial
			number sql.NullInt64
			state  string
			start  dbTime
		)
		if err := rows.Scan(&t.ID, &number, &state, &start); err != nil {
			rows.Close()
			return nil, err
		}
		if t.State, err = stateFromDB(state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trial id %d: %w", t.ID, err)
		}
		t.Number, t.StudyID, t.DatetimeStart = int(number.Int64), studyID, start.t
		t.SystemAttrs = make(map[string]string)
		index[t.ID] = len(heads)
		heads = append(heads, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = r.query(ctx, `SELECT a.trial_id, a."key", a.value_json FROM trial_system_attributes a `+
		"JOIN trials t ON t.trial_id = a.trial_id WHERE t.study_id = ?", studyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		var k string
		var v sql.NullString
		if err := rows.Scan(&id, &k, &v); err != nil {
			return nil, err
		}
		if i, ok := index[id]; ok {
			heads[i].SystemAttrs[k] = jsonToAttr(v.String)
		}
	}
	return heads, rows.Err()
}
