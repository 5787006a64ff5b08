package storage

// Checkpoints: fmtune's own table beside Optuna's. One row per unfinished
// trial holds the encoded state of its training at the end of its last
// finished epoch (see models.Checkpoint), replaced every epoch. When a
// trial ends, its row goes; when it is failed and re-queued (Ctrl-C, a
// stale heartbeat), its row moves to the retry in the same transaction, so
// the retry continues where it stopped, on this machine or another. Optuna
// ignores the table; the table is created on the first checkpoint, so a
// database fmtune only reads stays as it was.

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// CheckpointTable is the name of the checkpoints table.
const CheckpointTable = "fmtune_checkpoints"

// SaveCheckpoint stores state as the checkpoint of the RUNNING trial after
// epoch, replacing the one before. A finished trial (given up by another
// worker) gives goptuna.ErrTrialCannotBeUpdated, unwrapped.
func (s *Storage) SaveCheckpoint(trialID, epoch int, state []byte) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		if err := s.ensureCheckpointTable(ctx, r); err != nil {
			return err
		}
		_, err := r.exec(ctx, "INSERT INTO "+CheckpointTable+" (trial_id, epoch, state, datetime_saved) VALUES (?, ?, ?, ?) "+
			"ON CONFLICT (trial_id) DO UPDATE SET epoch = excluded.epoch, state = excluded.state, datetime_saved = excluded.datetime_saved",
			trialID, epoch, state, timeArg(time.Now()))
		return err
	})
}

// LoadCheckpoint returns the checkpoint of a trial: the epoch it was taken
// after and its state, or epoch 0 and nil when there is none.
func (s *Storage) LoadCheckpoint(trialID int) (epoch int, state []byte, err error) {
	err = s.read(func(ctx context.Context, r runner) error {
		epoch, state = 0, nil
		ok, err := s.hasCheckpointTable(ctx, r)
		if err != nil || !ok {
			return err
		}
		err = r.queryRow(ctx, "SELECT epoch, state FROM "+CheckpointTable+" WHERE trial_id = ?", trialID).Scan(&epoch, &state)
		if err == sql.ErrNoRows {
			return nil
		}
		return err
	})
	return epoch, state, err
}

// CheckpointStats are the checkpoints of a study: how many, and their bytes.
type CheckpointStats struct {
	Count int
	Bytes int64
}

// StudyCheckpoints counts the checkpoints of a study's trials.
func (s *Storage) StudyCheckpoints(studyID int) (CheckpointStats, error) {
	var st CheckpointStats
	err := s.read(func(ctx context.Context, r runner) error {
		st = CheckpointStats{}
		ok, err := s.hasCheckpointTable(ctx, r)
		if err != nil || !ok {
			return err
		}
		lengthFn := "LENGTH"
		if r.d.kind == kindPostgres {
			lengthFn = "OCTET_LENGTH"
		}
		return r.queryRow(ctx, "SELECT COUNT(*), COALESCE(SUM("+lengthFn+"(c.state)), 0) FROM "+CheckpointTable+" c "+
			"JOIN trials t ON t.trial_id = c.trial_id WHERE t.study_id = ?", studyID).Scan(&st.Count, &st.Bytes)
	})
	return st, err
}

// moveCheckpoint gives trial from's checkpoint (if any) to trial to.
func (s *Storage) moveCheckpoint(ctx context.Context, r runner, from, to int) error {
	if ok, err := s.hasCheckpointTable(ctx, r); err != nil || !ok {
		return err
	}
	_, err := r.exec(ctx, "UPDATE "+CheckpointTable+" SET trial_id = ? WHERE trial_id = ?", to, from)
	return err
}

// deleteCheckpoints deletes the checkpoints of the trials that where
// selects (a condition on trial_id with args).
func (s *Storage) deleteCheckpoints(ctx context.Context, r runner, where string, args ...any) error {
	if ok, err := s.hasCheckpointTable(ctx, r); err != nil || !ok {
		return err
	}
	_, err := r.exec(ctx, "DELETE FROM "+CheckpointTable+" WHERE "+where, args...)
	return err
}

// hasCheckpointTable reports whether the table exists (once it does, it is
// remembered: fmtune never drops it).
func (s *Storage) hasCheckpointTable(ctx context.Context, r runner) (bool, error) {
	if s.ckptTable.Load() {
		return true, nil
	}
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if r.d.kind == kindPostgres {
		q = "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
	}
	var n int
	if err := r.queryRow(ctx, q, CheckpointTable).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", CheckpointTable, err)
	}
	if n > 0 {
		s.ckptTable.Store(true)
	}
	return n > 0, nil
}

// ensureCheckpointTable creates the table if it is missing, inside the
// caller's write transaction.
func (s *Storage) ensureCheckpointTable(ctx context.Context, r runner) error {
	if ok, err := s.hasCheckpointTable(ctx, r); err != nil || ok {
		return err
	}
	blob, ts := "BLOB", "DATETIME"
	if r.d.kind == kindPostgres {
		// Two processes creating it at once take turns.
		if _, err := r.exec(ctx, "SELECT pg_advisory_xact_lock(7283402)"); err != nil {
			return err
		}
		blob, ts = "BYTEA", "TIMESTAMP WITHOUT TIME ZONE"
	}
	_, err := r.exec(ctx, "CREATE TABLE IF NOT EXISTS "+CheckpointTable+" ("+
		"trial_id INTEGER NOT NULL PRIMARY KEY REFERENCES trials (trial_id), "+
		"epoch INTEGER NOT NULL, state "+blob+" NOT NULL, datetime_saved "+ts+")")
	if err != nil {
		return fmt.Errorf("create table %s: %w", CheckpointTable, err)
	}
	// Remembered only once the transaction commits (hasCheckpointTable
	// looks again next time).
	return nil
}
