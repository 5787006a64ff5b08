package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/c-bata/goptuna"
)

// CreateNewTrial creates a RUNNING trial and returns its id. Its number is assigned in the
// same write transaction as the insert, with the study locked (SQLite: BEGIN IMMEDIATE;
// PostgreSQL: SELECT ... FOR UPDATE on the study row, as Optuna does), so numbers are
// 0..n-1 without gaps or duplicates however many processes create trials.
func (s *Storage) CreateNewTrial(studyID int) (int, error) {
	var id int
	err := s.writeR(func(ctx context.Context, r runner) error {
		var err error
		id, _, err = insertTrial(ctx, r, studyID, stateRunning, time.Now(), time.Time{})
		return err
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// insertTrial locks the study, numbers the trial and inserts it.
func insertTrial(ctx context.Context, r runner, studyID int, state string, start, complete time.Time) (id, number int, err error) {
	if err := studyExists(ctx, r, studyID, true); err != nil {
		return 0, 0, err
	}
	if err := r.queryRow(ctx, "SELECT COUNT(*) FROM trials WHERE study_id = ?", studyID).Scan(&number); err != nil {
		return 0, 0, err
	}
	err = r.queryRow(ctx, "INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete) "+
		"VALUES (?, ?, ?, ?, ?) RETURNING trial_id",
		number, studyID, state, timeArg(start), timeArg(complete)).Scan(&id)
	return id, number, err
}

// CloneTrial inserts a copy of base (params, value, intermediate values, attributes,
// state and datetimes) as a new trial of the study, numbered atomically like
// CreateNewTrial, and returns its id. goptuna's EnqueueTrial uses it with a WAITING trial
// carrying the system attribute fixed_params. A COMPLETE base whose value is not finite
// is stored as FAIL, as SetTrialState does.
func (s *Storage) CloneTrial(studyID int, base goptuna.FrozenTrial) (int, error) {
	state, err := stateToDB(base.State)
	if err != nil {
		return -1, err
	}
	var id int
	err = s.writeR(func(ctx context.Context, r runner) error {
		var err error
		id, err = cloneTrial(ctx, r, studyID, base, state)
		return err
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// cloneTrial is CloneTrial inside a write transaction; state is base.State in the
// database's words.
func cloneTrial(ctx context.Context, r runner, studyID int, base goptuna.FrozenTrial, state string) (int, error) {
	complete := base.DatetimeComplete
	if base.State.IsFinished() && complete.IsZero() {
		complete = time.Now()
	}
	// Insert RUNNING first, like Optuna, so the children below go in as for a live trial.
	id, _, err := insertTrial(ctx, r, studyID, stateRunning, base.DatetimeStart, time.Time{})
	if err != nil {
		return 0, err
	}
	names := make([]string, 0, len(base.InternalParams))
	for name := range base.InternalParams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		dist, ok := base.Distributions[name]
		if !ok {
			return 0, fmt.Errorf("clone trial: param %q has no distribution", name)
		}
		if err := setParam(ctx, r, id, name, base.InternalParams[name], dist); err != nil {
			return 0, err
		}
	}
	writeValue := base.State == goptuna.TrialStateComplete ||
		(base.State == goptuna.TrialStatePruned && len(base.IntermediateValues) > 0)
	if writeValue && !math.IsNaN(base.Value) {
		if err := setValue(ctx, r, id, base.Value); err != nil {
			return 0, err
		}
	}
	for step, v := range base.IntermediateValues {
		if err := setIntermediate(ctx, r, id, step, v); err != nil {
			return 0, err
		}
	}
	for k, v := range base.UserAttrs {
		if err := setTrialAttr(ctx, r, "trial_user_attributes", id, k, v); err != nil {
			return 0, err
		}
	}
	for k, v := range base.SystemAttrs {
		if err := setTrialAttr(ctx, r, "trial_system_attributes", id, k, v); err != nil {
			return 0, err
		}
	}
	final := state // the transaction may be retried: leave the captured state alone
	if state == stateComplete {
		if final, err = checkComplete(ctx, r, id, math.IsNaN(base.Value)); err != nil {
			return 0, err
		}
	}
	_, err = r.exec(ctx, "UPDATE trials SET state = ?, datetime_complete = ? WHERE trial_id = ?",
		final, timeArg(complete), id)
	return id, err
}

// SetTrialValue sets the objective value of an unfinished trial. Optuna cannot store NaN
// in trial_values: a NaN value removes any stored value, and a following
// SetTrialState(COMPLETE) makes the trial FAIL (see SetTrialState).
func (s *Storage) SetTrialValue(trialID int, value float64) error {
	err := s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		if math.IsNaN(value) {
			_, err := r.exec(ctx, "DELETE FROM trial_values WHERE trial_id = ?", trialID)
			return err
		}
		return setValue(ctx, r, trialID, value)
	})
	if err == nil {
		s.setNaN(trialID, math.IsNaN(value))
	}
	return err
}

func setValue(ctx context.Context, r runner, trialID int, value float64) error {
	v, typ := valueToDB(value)
	_, err := r.exec(ctx, "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?, 0, ?, ?) "+
		"ON CONFLICT (trial_id, objective) DO UPDATE SET value = excluded.value, value_type = excluded.value_type",
		trialID, v, typ)
	return err
}

// SetTrialIntermediateValue records the value reported at step (replacing an earlier
// report of the same step, as Optuna does). NaN and ±Inf are kept, with Optuna's
// intermediate_value_type.
func (s *Storage) SetTrialIntermediateValue(trialID int, step int, value float64) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		return setIntermediate(ctx, r, trialID, step, value)
	})
}

func setIntermediate(ctx context.Context, r runner, trialID, step int, value float64) error {
	v, typ := intermediateToDB(value)
	_, err := r.exec(ctx, "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) "+
		"VALUES (?, ?, ?, ?) ON CONFLICT (trial_id, step) DO UPDATE SET "+
		"intermediate_value = excluded.intermediate_value, intermediate_value_type = excluded.intermediate_value_type",
		trialID, step, v, typ)
	return err
}

// SetTrialParam records a sampled parameter (internal representation) with its
// distribution in Optuna's JSON. Like Optuna, it refuses a distribution incompatible with
// the one the study already uses for that name (ErrIncompatibleDistribution).
func (s *Storage) SetTrialParam(trialID int, paramName string, paramValueInternal float64, distribution any) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		return setParam(ctx, r, trialID, paramName, paramValueInternal, distribution)
	})
}

func setParam(ctx context.Context, r runner, trialID int, name string, ir float64, dist any) error {
	js, err := distributionToJSON(dist)
	if err != nil {
		return fmt.Errorf("param %q: %w", name, err)
	}
	var prev string
	err = r.queryRow(ctx, "SELECT p.distribution_json FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id "+
		"WHERE t.study_id = (SELECT study_id FROM trials WHERE trial_id = ?) AND p.param_name = ? LIMIT 1",
		trialID, name).Scan(&prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		if pd, perr := distributionFromJSON(prev); perr == nil && !compatible(pd, dist) {
			return fmt.Errorf("param %q: %w: the study stores %s, got %s", name, ErrIncompatibleDistribution, prev, js)
		}
	}
	_, err = r.exec(ctx, "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (?, ?, ?, ?) "+
		"ON CONFLICT (trial_id, param_name) DO UPDATE SET param_value = excluded.param_value, "+
		"distribution_json = excluded.distribution_json",
		trialID, name, ir, js)
	return err
}

// SetTrialState changes the state of an unfinished trial; a finished trial gives
// goptuna.ErrTrialCannotBeUpdated, unwrapped.
//
// RUNNING is only reachable from WAITING, through one conditional UPDATE (... WHERE state
// = 'WAITING'): of several goroutines or processes claiming the same waiting trial exactly
// one succeeds and the others get goptuna.ErrTrialCannotBeUpdated, which goptuna's
// popWaitingTrialID expects.
//
// COMPLETE needs a finite objective value. With a NaN value (Optuna refuses to store one),
// ±Inf or no value at all, the trial becomes FAIL instead, its value is removed and the
// trial system attribute "fail_reason" says why; SetTrialState returns nil, as Optuna's
// tell does for a NaN objective. Such a trial can never be the best trial.
func (s *Storage) SetTrialState(trialID int, state goptuna.TrialState) error {
	st, err := stateToDB(state)
	if err != nil {
		return err
	}
	if state == goptuna.TrialStateRunning {
		return s.writeR(func(ctx context.Context, r runner) error {
			n, err := r.execN(ctx, "UPDATE trials SET state = ?, datetime_start = ? WHERE trial_id = ? AND state = ?",
				stateRunning, timeArg(time.Now()), trialID, stateWaiting)
			if err != nil || n == 1 {
				return err
			}
			if _, err := trialState(ctx, r, trialID, false); err != nil {
				return err
			}
			return goptuna.ErrTrialCannotBeUpdated
		})
	}
	nan := s.wasNaN(trialID)
	err = s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		final := st // the transaction may be retried: leave the captured state alone
		if st == stateComplete {
			var err error
			if final, err = checkComplete(ctx, r, trialID, nan); err != nil {
				return err
			}
		}
		if state.IsFinished() {
			_, err := r.exec(ctx, "UPDATE trials SET state = ?, datetime_complete = ? WHERE trial_id = ?",
				final, timeArg(time.Now()), trialID)
			if err != nil {
				return err
			}
			return s.deleteCheckpoints(ctx, r, "trial_id = ?", trialID)
		}
		_, err := r.exec(ctx, "UPDATE trials SET state = ? WHERE trial_id = ?", final, trialID)
		return err
	})
	if err == nil && state.IsFinished() {
		s.setNaN(trialID, false)
	}
	return err
}

// checkComplete returns the state a trial told COMPLETE gets: COMPLETE with a finite
// value, else FAIL (value removed, fail_reason recorded).
func checkComplete(ctx context.Context, r runner, trialID int, nan bool) (string, error) {
	var v nullFloat
	var typ string
	err := r.queryRow(ctx, "SELECT value, value_type FROM trial_values WHERE trial_id = ? AND objective = 0", trialID).Scan(&v, &typ)
	var reason string
	switch {
	case errors.Is(err, sql.ErrNoRows) && nan:
		reason = "objective value is NaN"
	case errors.Is(err, sql.ErrNoRows):
		reason = "no objective value was set"
	case err != nil:
		return "", err
	case typ != valueFinite:
		f, _ := floatFromDB(v.p, typ)
		reason = fmt.Sprintf("objective value %v is not finite", f)
	default:
		return stateComplete, nil
	}
	if _, err := r.exec(ctx, "DELETE FROM trial_values WHERE trial_id = ?", trialID); err != nil {
		return "", err
	}
	msg := "fmtune: COMPLETE refused, " + reason + "; the trial is marked FAIL"
	if err := setTrialAttr(ctx, r, "trial_system_attributes", trialID, failReasonKey, msg); err != nil {
		return "", err
	}
	return stateFail, nil
}

// SetTrialUserAttr stores a user attribute of an unfinished trial.
func (s *Storage) SetTrialUserAttr(trialID int, key, value string) error {
	return s.setTrialAttrChecked("trial_user_attributes", trialID, key, value)
}

// SetTrialSystemAttr stores a system attribute of an unfinished trial.
func (s *Storage) SetTrialSystemAttr(trialID int, key, value string) error {
	return s.setTrialAttrChecked("trial_system_attributes", trialID, key, value)
}

func (s *Storage) setTrialAttrChecked(table string, trialID int, key, value string) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		return setTrialAttr(ctx, r, table, trialID, key, value)
	})
}

func setTrialAttr(ctx context.Context, r runner, table string, trialID int, key, value string) error {
	_, err := r.exec(ctx, "INSERT INTO "+table+` (trial_id, "key", value_json) VALUES (?, ?, ?) `+
		`ON CONFLICT (trial_id, "key") DO UPDATE SET value_json = excluded.value_json`,
		trialID, key, attrToJSON(value))
	return err
}

// GetTrialNumberFromID returns the trial's number within its study.
func (s *Storage) GetTrialNumberFromID(trialID int) (int, error) {
	var n sql.NullInt64
	err := s.read(func(ctx context.Context, r runner) error {
		err := r.queryRow(ctx, "SELECT number FROM trials WHERE trial_id = ?", trialID).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("trial id %d: %w", trialID, ErrTrialNotFound)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	return int(n.Int64), nil
}

// GetTrialParam returns a parameter's internal representation.
func (s *Storage) GetTrialParam(trialID int, paramName string) (float64, error) {
	var v float64
	err := s.read(func(ctx context.Context, r runner) error {
		err := r.queryRow(ctx, "SELECT param_value FROM trial_params WHERE trial_id = ? AND param_name = ?",
			trialID, paramName).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := trialState(ctx, r, trialID, false); err != nil {
				return err
			}
			return fmt.Errorf("trial id %d: param %q: %w", trialID, paramName, ErrParamNotFound)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	return v, nil
}

// GetTrial returns a trial with everything attached to it.
func (s *Storage) GetTrial(trialID int) (goptuna.FrozenTrial, error) {
	var t goptuna.FrozenTrial
	err := s.read(func(ctx context.Context, r runner) error {
		var err error
		t, err = loadTrial(ctx, r, trialID)
		return err
	})
	return t, err
}

func loadTrial(ctx context.Context, r runner, trialID int) (goptuna.FrozenTrial, error) {
	ts, err := loadTrials(ctx, r, "t.trial_id = ?", trialID)
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	if len(ts) == 0 {
		return goptuna.FrozenTrial{}, fmt.Errorf("trial id %d: %w", trialID, ErrTrialNotFound)
	}
	return ts[0], nil
}

// GetAllTrials returns the study's trials ordered by number.
func (s *Storage) GetAllTrials(studyID int) ([]goptuna.FrozenTrial, error) {
	var ts []goptuna.FrozenTrial
	err := s.read(func(ctx context.Context, r runner) error {
		if err := studyExists(ctx, r, studyID, false); err != nil {
			return err
		}
		var err error
		ts, err = loadTrials(ctx, r, "t.study_id = ?", studyID)
		return err
	})
	return ts, err
}

// GetBestTrial returns the COMPLETE trial with the best finite value (lowest number among
// equals). Without one it returns an error wrapping ErrNoCompletedTrials (which is
// goptuna.ErrNoCompletedTrials). Failed, pruned, running and non-finite trials never count.
func (s *Storage) GetBestTrial(studyID int) (goptuna.FrozenTrial, error) {
	var t goptuna.FrozenTrial
	err := s.read(func(ctx context.Context, r runner) error {
		dirs, err := studyDirections(ctx, r, studyID)
		if err != nil {
			return err
		}
		if len(dirs) != 1 {
			return fmt.Errorf("study id %d has %d objectives: a best trial exists only for one", studyID, len(dirs))
		}
		t, err = bestTrial(ctx, r, studyID, dirs[0])
		return err
	})
	return t, err
}

func bestTrial(ctx context.Context, r runner, studyID int, dir goptuna.StudyDirection) (goptuna.FrozenTrial, error) {
	order := "ASC"
	if dir == goptuna.StudyDirectionMaximize {
		order = "DESC"
	}
	var id int
	err := r.queryRow(ctx, "SELECT t.trial_id FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "+
		"WHERE t.study_id = ? AND t.state = ? AND v.objective = 0 AND v.value_type = ? AND v.value IS NOT NULL "+
		"ORDER BY v.value "+order+", t.number ASC LIMIT 1",
		studyID, stateComplete, valueFinite).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return goptuna.FrozenTrial{}, fmt.Errorf("best trial of study id %d: %w", studyID, ErrNoCompletedTrials)
	}
	if err != nil {
		return goptuna.FrozenTrial{}, err
	}
	return loadTrial(ctx, r, id)
}

// GetTrialParams returns the trial's parameters in external representation.
func (s *Storage) GetTrialParams(trialID int) (map[string]any, error) {
	t, err := s.GetTrial(trialID)
	if err != nil {
		return nil, err
	}
	return t.Params, nil
}

// GetTrialUserAttrs returns the trial's user attributes.
func (s *Storage) GetTrialUserAttrs(trialID int) (map[string]string, error) {
	return s.trialAttrs("trial_user_attributes", trialID)
}

// GetTrialSystemAttrs returns the trial's system attributes.
func (s *Storage) GetTrialSystemAttrs(trialID int) (map[string]string, error) {
	return s.trialAttrs("trial_system_attributes", trialID)
}

func (s *Storage) trialAttrs(table string, trialID int) (map[string]string, error) {
	var attrs map[string]string
	err := s.read(func(ctx context.Context, r runner) error {
		if _, err := trialState(ctx, r, trialID, false); err != nil {
			return err
		}
		var err error
		attrs, err = readAttrs(ctx, r, `SELECT "key", value_json FROM `+table+" WHERE trial_id = ?", trialID)
		return err
	})
	return attrs, err
}

// loadTrials reads the trials matching cond (over trials t) and their children with one
// query per table.
func loadTrials(ctx context.Context, r runner, cond string, args ...any) ([]goptuna.FrozenTrial, error) {
	rows, err := r.query(ctx, "SELECT t.trial_id, t.number, t.study_id, t.state, t.datetime_start, t.datetime_complete "+
		"FROM trials t WHERE "+cond+" ORDER BY t.number, t.trial_id", args...)
	if err != nil {
		return nil, err
	}
	var trials []goptuna.FrozenTrial
	index := make(map[int]int)
	for rows.Next() {
		var (
			t               goptuna.FrozenTrial
			number, studyID sql.NullInt64
			state           string
			start, complete dbTime
		)
		if err := rows.Scan(&t.ID, &number, &studyID, &state, &start, &complete); err != nil {
			rows.Close()
			return nil, err
		}
		if t.State, err = stateFromDB(state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("trial id %d: %w", t.ID, err)
		}
		t.Number, t.StudyID = int(number.Int64), int(studyID.Int64)
		t.DatetimeStart, t.DatetimeComplete = start.t, complete.t
		t.IntermediateValues = make(map[int]float64)
		t.InternalParams = make(map[string]float64)
		t.Params = make(map[string]any)
		t.Distributions = make(map[string]any)
		t.UserAttrs = make(map[string]string)
		t.SystemAttrs = make(map[string]string)
		index[t.ID] = len(trials)
		trials = append(trials, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(trials) == 0 {
		return trials, nil
	}
	join := " JOIN trials t ON t.trial_id = c.trial_id WHERE " + cond
	each := func(q string, scan func(rows *sql.Rows) error) error {
		rows, err := r.query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}

	err = each("SELECT c.trial_id, c.param_name, c.param_value, c.distribution_json FROM trial_params c"+join,
		func(rows *sql.Rows) error {
			var id int
			var name string
			var v nullFloat
			var js sql.NullString
			if err := rows.Scan(&id, &name, &v, &js); err != nil {
				return err
			}
			dist, err := distributionFromJSON(js.String)
			if err != nil {
				return fmt.Errorf("trial id %d: param %q: %w", id, name, err)
			}
			var ir float64
			if v.p != nil {
				ir = *v.p
			}
			xr, err := externalValue(dist, ir)
			if err != nil {
				return fmt.Errorf("trial id %d: param %q: %w", id, name, err)
			}
			t := &trials[index[id]]
			t.InternalParams[name], t.Params[name], t.Distributions[name] = ir, xr, dist
			return nil
		})
	if err != nil {
		return nil, err
	}

	// The objective value: goptuna is single-objective, so the first objective.
	err = each("SELECT c.trial_id, c.value, c.value_type FROM trial_values c"+join+" AND c.objective = 0",
		func(rows *sql.Rows) error {
			var id int
			var v nullFloat
			var typ string
			if err := rows.Scan(&id, &v, &typ); err != nil {
				return err
			}
			f, err := floatFromDB(v.p, typ)
			if err != nil {
				return fmt.Errorf("trial id %d: value: %w", id, err)
			}
			trials[index[id]].Value = f
			return nil
		})
	if err != nil {
		return nil, err
	}

	err = each("SELECT c.trial_id, c.step, c.intermediate_value, c.intermediate_value_type "+
		"FROM trial_intermediate_values c"+join,
		func(rows *sql.Rows) error {
			var id, step int
			var v nullFloat
			var typ string
			if err := rows.Scan(&id, &step, &v, &typ); err != nil {
				return err
			}
			f, err := floatFromDB(v.p, typ)
			if err != nil {
				return fmt.Errorf("trial id %d: intermediate value %d: %w", id, step, err)
			}
			trials[index[id]].IntermediateValues[step] = f
			return nil
		})
	if err != nil {
		return nil, err
	}

	for _, table := range []string{"trial_user_attributes", "trial_system_attributes"} {
		err = each(`SELECT c.trial_id, c."key", c.value_json FROM `+table+" c"+join,
			func(rows *sql.Rows) error {
				var id int
				var k string
				var v sql.NullString
				if err := rows.Scan(&id, &k, &v); err != nil {
					return err
				}
				t := &trials[index[id]]
				if table == "trial_user_attributes" {
					t.UserAttrs[k] = jsonToAttr(v.String)
				} else {
					t.SystemAttrs[k] = jsonToAttr(v.String)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	return trials, nil
}
