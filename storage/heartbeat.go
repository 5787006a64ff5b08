package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/fault"
)

// Heartbeats follow Optuna's trial_heartbeats: one row per trial, its time taken from the
// database's clock exactly as Optuna takes it (SQLite: CURRENT_TIMESTAMP, UTC in whole
// seconds; PostgreSQL: the session's local time), so Optuna's own stale-trial check and
// fmtune's agree on the same database. (Whole seconds matter on SQLite: Optuna computes
// (CURRENT_TIMESTAMP - heartbeat).seconds, which a heartbeat with a fraction of a second
// ahead of it turns into a day.)

// RecordHeartbeat records that a trial is alive now. A finished trial gives
// goptuna.ErrTrialCannotBeUpdated: its worker learns that the trial was given up (for
// instance failed by RecoverStaleTrials) and should stop.
func (s *Storage) RecordHeartbeat(trialID int) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := updatable(ctx, r, trialID); err != nil {
			return err
		}
		const q = "INSERT INTO trial_heartbeats (trial_id, heartbeat) VALUES (?, %s) " +
			"ON CONFLICT (trial_id) DO UPDATE SET heartbeat = excluded.heartbeat"
		now := "CURRENT_TIMESTAMP"
		if r.d.kind == kindPostgres {
			now = "LOCALTIMESTAMP"
		}
		_, err := r.exec(ctx, fmt.Sprintf(q, now), trialID)
		return err
	})
}

// AttrFailKind is the trial system attribute that says why fmtune failed a trial, for
// programs to read (fail_reason says it for people). It is written in the transaction
// that sets the FAIL state.
const AttrFailKind = "fmtune:fail_kind"

// FailKindStale is the AttrFailKind of a trial that RecoverStaleTrials failed.
const FailKindStale = "stale"

// RecoverStaleTrials turns the study's RUNNING trials that look abandoned into FAIL and
// returns them as they were just before (params, distributions, attributes, intermediate
// values). A RUNNING trial is stale when
//
//   - its last heartbeat is older than grace (on SQLite, whose heartbeats are in whole
//     seconds, grace plus one second), or
//   - it never recorded a heartbeat and its datetime_start is older than grace.
//
// The second rule recovers work that crashed before its first heartbeat; it assumes that
// every worker of the study records a heartbeat within grace of starting a trial (Optuna
// itself leaves trials without heartbeat alone), and that the clocks of the machines
// sharing a PostgreSQL study agree to well within grace (datetime_start is the writer's
// local wall clock, as in Optuna). Each failed trial gets the system attributes
// "fail_reason" and AttrFailKind (FailKindStale). Selecting and failing happen in one
// write transaction, so two processes recovering the same study never both return a
// trial.
//
// In the same transaction it queues a retry of each trial it fails: requeue (when not
// nil) gets the trial as it was and returns
// the trial to insert in its place (as CloneTrial would: typically WAITING with
// fixed_params), or false for none. Failing and re-queueing at once means that no other
// worker sees the failed trial's place in a budget free before the retry is queued (see
// AcquireTrial). requeue may be called more than once per trial (a transaction that meets
// a transient error is retried). A failed trial's checkpoint moves to its retry, or is
// deleted without one.
func (s *Storage) RecoverStaleTrials(studyID int, grace time.Duration, requeue func(goptuna.FrozenTrial) (goptuna.FrozenTrial, bool)) ([]goptuna.FrozenTrial, error) {
	if grace <= 0 {
		return nil, fmt.Errorf("fail stale trials: grace period %v must be positive", grace)
	}
	var failed []goptuna.FrozenTrial
	err := s.writeR(func(ctx context.Context, r runner) error {
		failed = failed[:0]
		// The study first, then its trials: the order every writer of this package locks in.
		if err := studyExists(ctx, r, studyID, true); err != nil {
			return err
		}
		now := time.Now()
		startCutoff := now.Add(-grace).Format(dbTimeLayout)
		var q string
		var args []any
		if r.d.kind == kindPostgres {
			q = "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id " +
				"WHERE t.study_id = ? AND t.state = ? AND (" +
				"(h.heartbeat IS NOT NULL AND h.heartbeat < LOCALTIMESTAMP - make_interval(secs => CAST(? AS double precision))) OR " +
				"(h.heartbeat IS NULL AND t.datetime_start < CAST(? AS timestamp))) " +
				"ORDER BY t.trial_id FOR UPDATE OF t"
			args = []any{studyID, stateRunning, grace.Seconds(), startCutoff}
		} else {
			q = "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id " +
				"WHERE t.study_id = ? AND t.state = ? AND (" +
				"(h.heartbeat IS NOT NULL AND julianday(h.heartbeat) < julianday('now', ?)) OR " +
				"(h.heartbeat IS NULL AND julianday(t.datetime_start) < julianday(?))) " +
				"ORDER BY t.trial_id"
			// SQLite stores a heartbeat in whole seconds (see above): one
			// that reads s may have been recorded at s+0.999. Without that
			// second, a live trial beating more often than once a second
			// could look stale between two beats.
			args = []any{studyID, stateRunning, fmt.Sprintf("-%.6f seconds", (grace + time.Second).Seconds()), startCutoff}
		}
		rows, err := r.query(ctx, q, args...)
		if err != nil {
			return err
		}
		var ids []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			t, err := loadTrial(ctx, r, id)
			if err != nil {
				return err
			}
			n, err := r.execN(ctx, "UPDATE trials SET state = ?, datetime_complete = ? WHERE trial_id = ? AND state = ?",
				stateFail, timeArg(now), id, stateRunning)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			reason := fmt.Sprintf("fmtune: no heartbeat for more than %v; the trial is marked FAIL", grace)
			if err := setTrialAttr(ctx, r, "trial_system_attributes", id, failReasonKey, reason); err != nil {
				return err
			}
			if err := setTrialAttr(ctx, r, "trial_system_attributes", id, AttrFailKind, FailKindStale); err != nil {
				return err
			}
			failed = append(failed, t)
			retry, ok := goptuna.FrozenTrial{}, false
			if requeue != nil {
				retry, ok = requeue(t)
			}
			if !ok {
				if err := s.deleteCheckpoints(ctx, r, "trial_id = ?", id); err != nil {
					return err
				}
				continue
			}
			fault.Point(fault.DuringRequeue)
			st, err := stateToDB(retry.State)
			if err != nil {
				return err
			}
			newID, err := cloneTrial(ctx, r, studyID, retry, st)
			if err != nil {
				return err
			}
			if err := s.moveCheckpoint(ctx, r, id, newID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return failed, nil
}
