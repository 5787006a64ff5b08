package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SchemaRevision is the Optuna alembic revision fmtune reads and writes: the head of
// Optuna 3.2 through 4.x.
const SchemaRevision = "v3.2.0.a"

// Optuna's version_info row: SCHEMA_VERSION has been frozen at 12 since Optuna moved to
// alembic; library_version is informational (Optuna prints it when it refuses a schema),
// so fmtune records the Optuna release that introduced SchemaRevision.
const (
	versionInfoSchemaVersion  = 12
	versionInfoLibraryVersion = "3.2.0"
)

// olderRevisions are the Optuna alembic revisions before SchemaRevision. A database at one
// of them is an older Optuna schema that `optuna storage upgrade` brings to the head.
var olderRevisions = []string{
	"v0.9.0.a", "v1.2.0.a", "v1.3.0.a", "v2.4.0.a", "v2.6.0.a",
	"v3.0.0.a", "v3.0.0.b", "v3.0.0.c", "v3.0.0.d",
}

// optunaTables are the tables of Optuna's RDB schema at SchemaRevision.
var optunaTables = []string{
	"studies", "version_info", "study_directions", "study_user_attributes",
	"study_system_attributes", "trials", "trial_user_attributes", "trial_system_attributes",
	"trial_params", "trial_values", "trial_intermediate_values", "trial_heartbeats",
	"alembic_version",
}

// ErrUnsupportedSchema is returned by Open for a database fmtune will not touch: an
// older or newer Optuna schema, or a database that holds tables but is not Optuna's.
var ErrUnsupportedSchema = errors.New("unsupported database schema")

// The DDL below is what Optuna 3.1 (SQLAlchemy 1.4 create_all + alembic stamp) emits for
// optuna/storages/_rdb/models.py, plus the index that alembic revision v3.2.0.a adds
// (op.create_index("trials_study_id_key", "trials", ["study_id"])). On SQLite the
// statements are byte-identical to Optuna's, so sqlite_master matches a database Optuna
// created; on PostgreSQL the enum types, SERIAL keys and constraint names match.
var sqliteDDL = []string{
	"CREATE TABLE studies (\n\tstudy_id INTEGER NOT NULL, \n\tstudy_name VARCHAR(512) NOT NULL, \n\tPRIMARY KEY (study_id)\n)",
	"CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name)",
	"CREATE TABLE version_info (\n\tversion_info_id INTEGER NOT NULL, \n\tschema_version INTEGER, \n\tlibrary_version VARCHAR(256), \n\tPRIMARY KEY (version_info_id), \n\tCHECK (version_info_id=1)\n)",
	"CREATE TABLE study_directions (\n\tstudy_direction_id INTEGER NOT NULL, \n\tdirection VARCHAR(8) NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tPRIMARY KEY (study_direction_id), \n\tUNIQUE (study_id, objective), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE study_user_attributes (\n\tstudy_user_attribute_id INTEGER NOT NULL, \n\tstudy_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_user_attribute_id), \n\tUNIQUE (study_id, \"key\"), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE study_system_attributes (\n\tstudy_system_attribute_id INTEGER NOT NULL, \n\tstudy_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_system_attribute_id), \n\tUNIQUE (study_id, \"key\"), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE trials (\n\ttrial_id INTEGER NOT NULL, \n\tnumber INTEGER, \n\tstudy_id INTEGER, \n\tstate VARCHAR(8) NOT NULL, \n\tdatetime_start DATETIME, \n\tdatetime_complete DATETIME, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE trial_user_attributes (\n\ttrial_user_attribute_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_user_attribute_id), \n\tUNIQUE (trial_id, \"key\"), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_system_attributes (\n\ttrial_system_attribute_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\t\"key\" VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_system_attribute_id), \n\tUNIQUE (trial_id, \"key\"), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_params (\n\tparam_id INTEGER NOT NULL, \n\ttrial_id INTEGER, \n\tparam_name VARCHAR(512), \n\tparam_value FLOAT, \n\tdistribution_json TEXT, \n\tPRIMARY KEY (param_id), \n\tUNIQUE (trial_id, param_name), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_values (\n\ttrial_value_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tvalue FLOAT, \n\tvalue_type VARCHAR(7) NOT NULL, \n\tPRIMARY KEY (trial_value_id), \n\tUNIQUE (trial_id, objective), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_intermediate_values (\n\ttrial_intermediate_value_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tstep INTEGER NOT NULL, \n\tintermediate_value FLOAT, \n\tintermediate_value_type VARCHAR(7) NOT NULL, \n\tPRIMARY KEY (trial_intermediate_value_id), \n\tUNIQUE (trial_id, step), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_heartbeats (\n\ttrial_heartbeat_id INTEGER NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\theartbeat DATETIME NOT NULL, \n\tPRIMARY KEY (trial_heartbeat_id), \n\tUNIQUE (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
	"CREATE INDEX trials_study_id_key ON trials (study_id)",
}

var postgresDDL = []string{
	"CREATE TYPE studydirection AS ENUM ('NOT_SET', 'MINIMIZE', 'MAXIMIZE')",
	"CREATE TYPE trialstate AS ENUM ('RUNNING', 'COMPLETE', 'PRUNED', 'FAIL', 'WAITING')",
	"CREATE TYPE trialvaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG')",
	"CREATE TYPE trialintermediatevaluetype AS ENUM ('FINITE', 'INF_POS', 'INF_NEG', 'NAN')",
	"CREATE TABLE studies (\n\tstudy_id SERIAL NOT NULL, \n\tstudy_name VARCHAR(512) NOT NULL, \n\tPRIMARY KEY (study_id)\n)",
	"CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name)",
	"CREATE TABLE version_info (\n\tversion_info_id INTEGER NOT NULL, \n\tschema_version INTEGER, \n\tlibrary_version VARCHAR(256), \n\tPRIMARY KEY (version_info_id), \n\tCHECK (version_info_id=1)\n)",
	"CREATE TABLE study_directions (\n\tstudy_direction_id SERIAL NOT NULL, \n\tdirection studydirection NOT NULL, \n\tstudy_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tPRIMARY KEY (study_direction_id), \n\tUNIQUE (study_id, objective), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE study_user_attributes (\n\tstudy_user_attribute_id SERIAL NOT NULL, \n\tstudy_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_user_attribute_id), \n\tUNIQUE (study_id, key), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE study_system_attributes (\n\tstudy_system_attribute_id SERIAL NOT NULL, \n\tstudy_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (study_system_attribute_id), \n\tUNIQUE (study_id, key), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE trials (\n\ttrial_id SERIAL NOT NULL, \n\tnumber INTEGER, \n\tstudy_id INTEGER, \n\tstate trialstate NOT NULL, \n\tdatetime_start TIMESTAMP WITHOUT TIME ZONE, \n\tdatetime_complete TIMESTAMP WITHOUT TIME ZONE, \n\tPRIMARY KEY (trial_id), \n\tFOREIGN KEY(study_id) REFERENCES studies (study_id)\n)",
	"CREATE TABLE trial_user_attributes (\n\ttrial_user_attribute_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_user_attribute_id), \n\tUNIQUE (trial_id, key), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_system_attributes (\n\ttrial_system_attribute_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tkey VARCHAR(512), \n\tvalue_json TEXT, \n\tPRIMARY KEY (trial_system_attribute_id), \n\tUNIQUE (trial_id, key), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_params (\n\tparam_id SERIAL NOT NULL, \n\ttrial_id INTEGER, \n\tparam_name VARCHAR(512), \n\tparam_value FLOAT(53), \n\tdistribution_json TEXT, \n\tPRIMARY KEY (param_id), \n\tUNIQUE (trial_id, param_name), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_values (\n\ttrial_value_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tobjective INTEGER NOT NULL, \n\tvalue FLOAT(53), \n\tvalue_type trialvaluetype NOT NULL, \n\tPRIMARY KEY (trial_value_id), \n\tUNIQUE (trial_id, objective), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_intermediate_values (\n\ttrial_intermediate_value_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\tstep INTEGER NOT NULL, \n\tintermediate_value FLOAT(53), \n\tintermediate_value_type trialintermediatevaluetype NOT NULL, \n\tPRIMARY KEY (trial_intermediate_value_id), \n\tUNIQUE (trial_id, step), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE trial_heartbeats (\n\ttrial_heartbeat_id SERIAL NOT NULL, \n\ttrial_id INTEGER NOT NULL, \n\theartbeat TIMESTAMP WITHOUT TIME ZONE NOT NULL, \n\tPRIMARY KEY (trial_heartbeat_id), \n\tUNIQUE (trial_id), \n\tFOREIGN KEY(trial_id) REFERENCES trials (trial_id)\n)",
	"CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
	"CREATE INDEX trials_study_id_key ON trials (study_id)",
}

// schemaState is what inspection found in a database.
type schemaState struct {
	tables   []string // all user tables
	revision string   // alembic_version.version_num, "" if none
}

// empty reports whether the database holds no tables at all.
func (st schemaState) empty() bool { return len(st.tables) == 0 }

// check decides whether fmtune may use a database holding st: nil when it is at
// SchemaRevision with all of Optuna's tables, an ErrUnsupportedSchema error otherwise.
// An empty database is not checked here (the caller creates the schema).
func (st schemaState) check(where string) error {
	has := func(t string) bool { return slices.Contains(st.tables, t) }
	switch {
	case st.revision == SchemaRevision:
		var missing []string
		for _, t := range optunaTables {
			if !has(t) {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s: %w: alembic revision %s but tables %s are missing; the database is "+
				"damaged or not Optuna's, and fmtune will not change it", where, ErrUnsupportedSchema,
				st.revision, strings.Join(missing, ", "))
		}
		return nil
	case slices.Contains(olderRevisions, st.revision):
		return fmt.Errorf("%s: %w: Optuna schema at alembic revision %s is older than the %s fmtune uses; "+
			"fmtune leaves it unchanged: upgrade it with Optuna >= 3.2 (`optuna storage upgrade --storage URL`, "+
			"back it up first) or point --storage at another database", where, ErrUnsupportedSchema,
			st.revision, SchemaRevision)
	case st.revision != "":
		return fmt.Errorf("%s: %w: Optuna schema at alembic revision %s is unknown or newer than the %s "+
			"fmtune supports; fmtune will not change it: use a database written by Optuna 3.2-4.x or by fmtune",
			where, ErrUnsupportedSchema, st.revision, SchemaRevision)
	case has("studies") || has("trials"):
		return fmt.Errorf("%s: %w: the database has studies/trials tables but no Optuna alembic_version "+
			"(a pre-1.0 Optuna or goptuna rdb database?); fmtune will not change it: point --storage at a "+
			"new file or an Optuna >= 3.2 database", where, ErrUnsupportedSchema)
	default:
		return fmt.Errorf("%s: %w: the database is not empty (tables %s) and is not an Optuna study "+
			"database; fmtune will not change it: point --storage at a new file or an Optuna database",
			where, ErrUnsupportedSchema, strings.Join(st.tables, ", "))
	}
}

// inspectSchema reads the table list and the alembic revision through q.
func inspectSchema(ctx context.Context, q queryer, d dialect) (schemaState, error) {
	var st schemaState
	rows, err := q.QueryContext(ctx, d.listTablesSQL)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return st, err
		}
		st.tables = append(st.tables, name)
	}
	if err := rows.Close(); err != nil {
		return st, err
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	if !slices.Contains(st.tables, "alembic_version") {
		return st, nil
	}
	var revs []string
	rows, err = q.QueryContext(ctx, "SELECT version_num FROM alembic_version")
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return st, err
		}
		revs = append(revs, v)
	}
	if err := rows.Err(); err != nil {
		return st, err
	}
	st.revision = strings.Join(revs, ",")
	if st.revision == "" {
		st.revision = "(empty alembic_version)"
	}
	return st, nil
}

// createSchema creates Optuna's schema at SchemaRevision inside tx.
func createSchema(ctx context.Context, tx *sql.Tx, d dialect) error {
	ddl := sqliteDDL
	if d.kind == kindPostgres {
		ddl = postgresDDL
	}
	for _, stmt := range ddl {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %q: %w", firstLine(stmt), err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(
		"INSERT INTO version_info (version_info_id, schema_version, library_version) VALUES (1, ?, ?)"),
		versionInfoSchemaVersion, versionInfoLibraryVersion); err != nil {
		return fmt.Errorf("create schema: version_info: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO alembic_version (version_num) VALUES (?)"),
		SchemaRevision); err != nil {
		return fmt.Errorf("create schema: alembic_version: %w", err)
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// queryer is the read side shared by *sql.DB, *sql.Conn and *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
