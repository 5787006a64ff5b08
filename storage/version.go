package storage

import (
	"context"
	"fmt"
	"strings"
)

// versionTables are the tables whose rows a viewer shows, with their key.
var versionTables = []struct{ table, id string }{
	{"trial_params", "param_id"},
	{"trial_values", "trial_value_id"},
	{"trial_intermediate_values", "trial_intermediate_value_id"},
	{"trial_user_attributes", "trial_user_attribute_id"},
	{"trial_system_attributes", "trial_system_attribute_id"},
}

// Version returns a token that changes when a trial of the study is
// created, changes state or finishes, or gets a parameter, a value, an
// intermediate value or an attribute; studyID < 0 covers every study. It
// reads a few counts and maxima, so a viewer can ask every second and read
// the trials themselves only when it changed. An attribute rewritten in
// place (same key, new value) does not change it.
func (s *Storage) Version(studyID int) (string, error) {
	var b strings.Builder
	err := s.read(func(ctx context.Context, r runner) error {
		b.Reset()
		where, args := "", []any{}
		if studyID >= 0 {
			where, args = " WHERE t.study_id = ?", []any{studyID}
		}
		q := []string{
			"SELECT COUNT(*), COALESCE(MAX(study_id), 0) FROM studies",
			"SELECT COUNT(*), COALESCE(MAX(study_system_attribute_id), 0) FROM study_system_attributes",
			"SELECT COUNT(*), COALESCE(MAX(t.trial_id), 0), " +
				"COALESCE(SUM(CASE WHEN t.state = 'RUNNING' THEN 1 ELSE 0 END), 0), " +
				"COALESCE(SUM(CASE WHEN t.state = 'COMPLETE' THEN 1 ELSE 0 END), 0), " +
				"COALESCE(SUM(CASE WHEN t.state = 'PRUNED' THEN 1 ELSE 0 END), 0), " +
				"COALESCE(SUM(CASE WHEN t.state = 'FAIL' THEN 1 ELSE 0 END), 0), " +
				"COALESCE(SUM(CASE WHEN t.state = 'WAITING' THEN 1 ELSE 0 END), 0), " +
				"MAX(t.datetime_complete) FROM trials t" + where,
		}
		for _, vt := range versionTables {
			q = append(q, fmt.Sprintf("SELECT COUNT(*), COALESCE(MAX(x.%s), 0) FROM %s x JOIN trials t ON t.trial_id = x.trial_id%s",
				vt.id, vt.table, where))
		}
		for i, query := range q {
			a := args
			if i < 2 {
				a = nil
			}
			rows, err := r.query(ctx, query, a...)
			if err != nil {
				return err
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for j := range vals {
					ptrs[j] = &vals[j]
				}
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return err
				}
				fmt.Fprintf(&b, "%v;", vals)
			}
			if err := rows.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	return b.String(), err
}
