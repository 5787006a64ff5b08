package storage

// Kept models: the weights of a study's best trials, in a table of fmtune's
// own beside Optuna's (Optuna ignores tables it does not know). The table is
// created by the first write; readers take a missing table as "no models"
// and never create it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ModelsTable is the table that holds kept models, keyed by trial id. Its
// rows go with their trial or study (ON DELETE CASCADE), also when Optuna
// deletes a study.
const ModelsTable = "fmtune_models"

var modelsDDL = map[string][]string{
	kindSQLite: {
		"CREATE TABLE IF NOT EXISTS fmtune_models (\n\ttrial_id INTEGER NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\ttrial_start DATETIME, \n\tarch VARCHAR(64) NOT NULL, \n\tvalue FLOAT NOT NULL, \n\tsize INTEGER NOT NULL, \n\tmeta TEXT NOT NULL, \n\tweights BLOB NOT NULL, \n\tcreated DATETIME NOT NULL, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id) ON DELETE CASCADE, \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id) ON DELETE CASCADE\n)",
		"CREATE INDEX IF NOT EXISTS fmtune_models_study_id ON fmtune_models (study_id)",
	},
	kindPostgres: {
		"CREATE TABLE IF NOT EXISTS fmtune_models (\n\ttrial_id INTEGER NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\ttrial_start TIMESTAMP WITHOUT TIME ZONE, \n\tarch VARCHAR(64) NOT NULL, \n\tvalue FLOAT(53) NOT NULL, \n\tsize INTEGER NOT NULL, \n\tmeta TEXT NOT NULL, \n\tweights BYTEA NOT NULL, \n\tcreated TIMESTAMP WITHOUT TIME ZONE NOT NULL, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id) ON DELETE CASCADE, \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id) ON DELETE CASCADE\n)",
		"CREATE INDEX IF NOT EXISTS fmtune_models_study_id ON fmtune_models (study_id)",
	},
}

// KeptModel is one kept model. Weights is only filled by KeptModel.
type KeptModel struct {
	StudyID int
	TrialID int
	Number  int     // the trial's number in its study
	Arch    string  // the architecture the weights belong to
	Value   float64 // the trial's objective value, which ranks the models
	Size    int     // bytes of Weights
	Meta    string  // the caller's description (JSON)
	Weights []byte
	Created time.Time
}

// ErrModelNotKept: no kept model for that trial.
var ErrModelNotKept = errors.New("no model kept for this trial")

// KeepModel stores m if its trial is among the best keep of its study (by
// value in the study's direction; on a tie the earlier trial ranks first),
// and deletes the models it pushes out of the top, in one transaction under
// the study's lock. It reports whether m was kept. A keep below 1 keeps
// nothing and deletes nothing.
func (s *Storage) KeepModel(m KeptModel, keep int) (kept bool, err error) {
	if keep < 1 {
		return false, nil
	}
	err = s.writeR(func(ctx context.Context, r runner) error {
		kept = false
		if err := studyExists(ctx, r, m.StudyID, true); err != nil {
			return err
		}
		if err := ensureModelsTable(ctx, r); err != nil {
			return err
		}
		var study int
		if err := r.queryRow(ctx, "SELECT study_id FROM trials WHERE trial_id = ?", m.TrialID).Scan(&study); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("keep model of trial id %d: %w", m.TrialID, ErrTrialNotFound)
			}
			return err
		}
		if study != m.StudyID {
			return fmt.Errorf("keep model: trial id %d belongs to study %d, not %d", m.TrialID, study, m.StudyID)
		}
		// trial_start ties the row to this trial, not to a later one that
		// reuses its id.
		_, err := r.exec(ctx, "INSERT INTO fmtune_models (trial_id, study_id, trial_start, arch, value, size, meta, weights, created) "+
			"SELECT ?, ?, datetime_start, ?, ?, ?, ?, ?, ? FROM trials WHERE trial_id = ? "+
			"ON CONFLICT (trial_id) DO UPDATE SET study_id = excluded.study_id, trial_start = excluded.trial_start, arch = excluded.arch, "+
			"value = excluded.value, size = excluded.size, meta = excluded.meta, weights = excluded.weights, created = excluded.created",
			m.TrialID, m.StudyID, m.Arch, m.Value, len(m.Weights), m.Meta, m.Weights, time.Now().UTC(), m.TrialID)
		if err != nil {
			return fmt.Errorf("keep model of trial id %d: %w", m.TrialID, err)
		}
		// Rows whose trial is gone (a study deleted without foreign keys
		// on, as Optuna does on SQLite) go now.
		if _, err := r.exec(ctx, "DELETE FROM fmtune_models WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE "+
			strings.ReplaceAll(sameTrial, "m.", "fmtune_models.")+")"); err != nil {
			return err
		}
		ranked, err := rankedModels(ctx, r, m.StudyID)
		if err != nil {
			return err
		}
		for i, id := range ranked {
			if i < keep {
				kept = kept || id == m.TrialID
				continue
			}
			if _, err := r.exec(ctx, "DELETE FROM fmtune_models WHERE trial_id = ?", id); err != nil {
				return err
			}
		}
		return nil
	})
	return kept, err
}

// rankedModels lists the trial ids of a study's kept models, best first.
func rankedModels(ctx context.Context, r runner, studyID int) ([]int, error) {
	var dir string
	if err := r.queryRow(ctx, "SELECT direction FROM study_directions WHERE study_id = ? AND objective = 0", studyID).Scan(&dir); err != nil {
		return nil, fmt.Errorf("read the direction of study %d: %w", studyID, err)
	}
	order := "DESC"
	if dir == directionMinimize {
		order = "ASC"
	}
	rows, err := r.query(ctx, "SELECT m.trial_id FROM fmtune_models m JOIN trials t ON "+sameTrial+" "+
		"WHERE m.study_id = ? ORDER BY m.value "+order+", t.number ASC", studyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// KeptModels lists a study's kept models, best first, without their weights.
// A database without the models table has none.
func (s *Storage) KeptModels(studyID int) ([]KeptModel, error) {
	var out []KeptModel
	err := s.read(func(ctx context.Context, r runner) error {
		out = nil
		if ok, err := hasModelsTable(ctx, r); err != nil || !ok {
			return err
		}
		ranked, err := rankedModels(ctx, r, studyID)
		if err != nil {
			return err
		}
		for _, id := range ranked {
			m, err := keptModel(ctx, r, id, false)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// KeptModel returns the kept model of a trial, weights included, or an
// error wrapping ErrModelNotKept.
func (s *Storage) KeptModel(trialID int) (KeptModel, error) {
	var m KeptModel
	err := s.read(func(ctx context.Context, r runner) error {
		ok, err := hasModelsTable(ctx, r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("trial id %d: %w", trialID, ErrModelNotKept)
		}
		m, err = keptModel(ctx, r, trialID, true)
		return err
	})
	return m, err
}

func keptModel(ctx context.Context, r runner, trialID int, weights bool) (KeptModel, error) {
	m := KeptModel{TrialID: trialID}
	cols := "m.study_id, t.number, m.arch, m.value, m.size, m.meta, m.created"
	dest := []any{&m.StudyID, &m.Number, &m.Arch, &m.Value, &m.Size, &m.Meta, &m.Created}
	if weights {
		cols += ", m.weights"
		dest = append(dest, &m.Weights)
	}
	err := r.queryRow(ctx, "SELECT "+cols+" FROM fmtune_models m JOIN trials t ON "+sameTrial+" WHERE m.trial_id = ?", trialID).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("trial id %d: %w", trialID, ErrModelNotKept)
	}
	if err != nil {
		return m, fmt.Errorf("read the kept model of trial id %d: %w", trialID, err)
	}
	if weights && len(m.Weights) != m.Size {
		return m, fmt.Errorf("the kept model of trial id %d has %d bytes, its row says %d: the database is damaged", trialID, len(m.Weights), m.Size)
	}
	return m, nil
}

// sameTrial joins a model row to its trial: the same id, study and start,
// so that a row left behind by a tool that deleted a study without foreign
// keys on (Optuna on SQLite) never shows up under a trial that reuses the
// ids.
const sameTrial = "t.trial_id = m.trial_id AND t.study_id = m.study_id AND t.datetime_start = m.trial_start"

// hasModelsTable reports whether the database has the models table.
func hasModelsTable(ctx context.Context, r runner) (bool, error) {
	q := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if r.d.kind == kindPostgres {
		q = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
	}
	var n int
	if err := r.queryRow(ctx, q, ModelsTable).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", ModelsTable, err)
	}
	return n > 0, nil
}

// ensureModelsTable creates the models table if it is missing, inside a
// write transaction.
func ensureModelsTable(ctx context.Context, r runner) error {
	ok, err := hasModelsTable(ctx, r)
	if err != nil || ok {
		return err
	}
	if r.d.kind == kindPostgres {
		// Two processes creating the table at once take turns (CREATE TABLE IF
		// NOT EXISTS alone can still collide on PostgreSQL's catalog).
		if _, err := r.exec(ctx, "SELECT pg_advisory_xact_lock(7283402)"); err != nil {
			return err
		}
	}
	for _, stmt := range modelsDDL[r.d.kind] {
		if _, err := r.exec(ctx, stmt); err != nil {
			return fmt.Errorf("create table %s: %w", ModelsTable, err)
		}
	}
	return nil
}
