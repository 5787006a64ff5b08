package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"

	"github.com/c-bata/goptuna"
)

// CreateNewStudy creates a study (named like Optuna's "no-name-<uuid4>" when name is
// empty) with direction MINIMIZE until SetStudyDirection, and returns its id. A taken
// name gives an error wrapping ErrStudyExists.
func (s *Storage) CreateNewStudy(name string) (int, error) {
	if name == "" {
		name = goptuna.DefaultStudyNamePrefix + uuid4()
	}
	var id int
	err := s.writeR(func(ctx context.Context, r runner) error {
		var other int
		err := r.queryRow(ctx, "SELECT study_id FROM studies WHERE study_name = ?", name).Scan(&other)
		if err == nil {
			return fmt.Errorf("create study %q: %w", name, ErrStudyExists)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := r.queryRow(ctx, "INSERT INTO studies (study_name) VALUES (?) RETURNING study_id", name).Scan(&id); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("create study %q: %w", name, ErrStudyExists)
			}
			return err
		}
		_, err = r.exec(ctx, "INSERT INTO study_directions (direction, study_id, objective) VALUES (?, ?, 0)",
			directionMinimize, id)
		return err
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// DeleteStudy deletes a study with its trials and everything attached to them.
func (s *Storage) DeleteStudy(studyID int) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := studyExists(ctx, r, studyID, true); err != nil {
			return err
		}
		const ofStudy = "trial_id IN (SELECT trial_id FROM trials WHERE study_id = ?)"
		if err := s.deleteCheckpoints(ctx, r, ofStudy, studyID); err != nil {
			return err
		}
		for _, t := range []string{"trial_params", "trial_values", "trial_intermediate_values",
			"trial_user_attributes", "trial_system_attributes", "trial_heartbeats"} {
			if _, err := r.exec(ctx, "DELETE FROM "+t+" WHERE "+ofStudy, studyID); err != nil {
				return err
			}
		}
		for _, t := range []string{"trials", "study_directions", "study_user_attributes",
			"study_system_attributes", "studies"} {
			if _, err := r.exec(ctx, "DELETE FROM "+t+" WHERE study_id = ?", studyID); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetStudyDirection sets the direction of the study's (single) objective.
func (s *Storage) SetStudyDirection(studyID int, direction goptuna.StudyDirection) error {
	d, err := directionToDB(direction)
	if err != nil {
		return err
	}
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := studyExists(ctx, r, studyID, true); err != nil {
			return err
		}
		n, err := r.execN(ctx, "UPDATE study_directions SET direction = ? WHERE study_id = ? AND objective = 0", d, studyID)
		if err != nil || n > 0 {
			return err
		}
		_, err = r.exec(ctx, "INSERT INTO study_directions (direction, study_id, objective) VALUES (?, ?, 0)", d, studyID)
		return err
	})
}

// SetStudyUserAttr stores a study user attribute (as Optuna's JSON of a string).
func (s *Storage) SetStudyUserAttr(studyID int, key, value string) error {
	return s.setStudyAttr("study_user_attributes", studyID, key, value)
}

// SetStudySystemAttr stores a study system attribute (as Optuna's JSON of a string).
func (s *Storage) SetStudySystemAttr(studyID int, key, value string) error {
	return s.setStudyAttr("study_system_attributes", studyID, key, value)
}

func (s *Storage) setStudyAttr(table string, studyID int, key, value string) error {
	return s.writeR(func(ctx context.Context, r runner) error {
		if err := studyExists(ctx, r, studyID, false); err != nil {
			return err
		}
		_, err := r.exec(ctx, "INSERT INTO "+table+` (study_id, "key", value_json) VALUES (?, ?, ?) `+
			`ON CONFLICT (study_id, "key") DO UPDATE SET value_json = excluded.value_json`,
			studyID, key, attrToJSON(value))
		return err
	})
}

// GetStudyIDFromName returns the id of the named study, or an error wrapping
// ErrStudyNotFound.
func (s *Storage) GetStudyIDFromName(name string) (int, error) {
	var id int
	err := s.read(func(ctx context.Context, r runner) error {
		err := r.queryRow(ctx, "SELECT study_id FROM studies WHERE study_name = ?", name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("study %q: %w", name, ErrStudyNotFound)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// GetStudyIDFromTrialID returns the id of the study a trial belongs to.
func (s *Storage) GetStudyIDFromTrialID(trialID int) (int, error) {
	var id int
	err := s.read(func(ctx context.Context, r runner) error {
		err := r.queryRow(ctx, "SELECT study_id FROM trials WHERE trial_id = ?", trialID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("trial id %d: %w", trialID, ErrTrialNotFound)
		}
		return err
	})
	if err != nil {
		return -1, err
	}
	return id, nil
}

// GetStudyNameFromID returns the study's name.
func (s *Storage) GetStudyNameFromID(studyID int) (string, error) {
	var name string
	err := s.read(func(ctx context.Context, r runner) error {
		err := r.queryRow(ctx, "SELECT study_name FROM studies WHERE study_id = ?", studyID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("study id %d: %w", studyID, ErrStudyNotFound)
		}
		return err
	})
	return name, err
}

// GetStudyDirection returns the direction of the study's first objective.
func (s *Storage) GetStudyDirection(studyID int) (goptuna.StudyDirection, error) {
	var dir goptuna.StudyDirection
	err := s.read(func(ctx context.Context, r runner) error {
		dirs, err := studyDirections(ctx, r, studyID)
		if err != nil {
			return err
		}
		if len(dirs) == 0 {
			return fmt.Errorf("study id %d has no row in study_directions", studyID)
		}
		dir = dirs[0]
		return nil
	})
	return dir, err
}

// studyDirections returns the directions of all objectives, in order (none for a study
// whose creator never wrote one).
func studyDirections(ctx context.Context, r runner, studyID int) ([]goptuna.StudyDirection, error) {
	if err := studyExists(ctx, r, studyID, false); err != nil {
		return nil, err
	}
	rows, err := r.query(ctx, "SELECT direction FROM study_directions WHERE study_id = ? ORDER BY objective", studyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var dirs []goptuna.StudyDirection
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		gd, err := directionFromDB(d)
		if err != nil {
			return nil, fmt.Errorf("study id %d: %w", studyID, err)
		}
		dirs = append(dirs, gd)
	}
	return dirs, rows.Err()
}

// GetStudyUserAttrs returns the study's user attributes.
func (s *Storage) GetStudyUserAttrs(studyID int) (map[string]string, error) {
	return s.studyAttrs("study_user_attributes", studyID)
}

// GetStudySystemAttrs returns the study's system attributes.
func (s *Storage) GetStudySystemAttrs(studyID int) (map[string]string, error) {
	return s.studyAttrs("study_system_attributes", studyID)
}

func (s *Storage) studyAttrs(table string, studyID int) (map[string]string, error) {
	var attrs map[string]string
	err := s.read(func(ctx context.Context, r runner) error {
		if err := studyExists(ctx, r, studyID, false); err != nil {
			return err
		}
		var err error
		attrs, err = readAttrs(ctx, r, `SELECT "key", value_json FROM `+table+" WHERE study_id = ?", studyID)
		return err
	})
	return attrs, err
}

func readAttrs(ctx context.Context, r runner, q string, args ...any) (map[string]string, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	attrs := make(map[string]string)
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		attrs[k] = jsonToAttr(v.String)
	}
	return attrs, rows.Err()
}

// GetAllStudySummaries lists every study in the database, with its best trial (the zero
// trial when it has no COMPLETE trial) and its earliest trial start.
func (s *Storage) GetAllStudySummaries() ([]goptuna.StudySummary, error) {
	var out []goptuna.StudySummary
	err := s.read(func(ctx context.Context, r runner) error {
		out = out[:0]
		type study struct {
			id   int
			name string
		}
		var studies []study
		rows, err := r.query(ctx, "SELECT study_id, study_name FROM studies ORDER BY study_id")
		if err != nil {
			return err
		}
		for rows.Next() {
			var st study
			if err := rows.Scan(&st.id, &st.name); err != nil {
				rows.Close()
				return err
			}
			studies = append(studies, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, st := range studies {
			sum := goptuna.StudySummary{ID: st.id, Name: st.name}
			dirs, err := studyDirections(ctx, r, st.id)
			if err != nil {
				return err
			}
			if len(dirs) > 0 {
				sum.Direction = dirs[0]
			}
			if sum.UserAttrs, err = readAttrs(ctx, r, `SELECT "key", value_json FROM study_user_attributes WHERE study_id = ?`, st.id); err != nil {
				return err
			}
			if sum.SystemAttrs, err = readAttrs(ctx, r, `SELECT "key", value_json FROM study_system_attributes WHERE study_id = ?`, st.id); err != nil {
				return err
			}
			var start dbTime
			if err := r.queryRow(ctx, "SELECT MIN(datetime_start) FROM trials WHERE study_id = ?", st.id).Scan(&start); err != nil {
				return err
			}
			sum.DatetimeStart = start.t
			if len(dirs) == 1 {
				best, err := bestTrial(ctx, r, st.id, dirs[0])
				if err != nil && !errors.Is(err, ErrNoCompletedTrials) {
					return err
				}
				sum.BestTrial = best
			}
			out = append(out, sum)
		}
		return nil
	})
	return out, err
}

// isUniqueViolation reports a UNIQUE constraint failure on either database.
func isUniqueViolation(err error) bool {
	return sqliteUnique(err) || postgresUnique(err)
}

// uuid4 returns a random RFC 4122 version 4 UUID, as Python's uuid.uuid4().
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
