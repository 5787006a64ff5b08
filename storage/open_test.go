package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fmtune/fmtune/internal/numchoice"
)

func TestResolveURL(t *testing.T) {
	cases := []struct {
		name, flag, env, want string
	}{
		{"default", "", "", DefaultURL},
		{"env", "", "sqlite:////tmp/env.db", "sqlite:////tmp/env.db"},
		{"flag-beats-env", "postgresql://u@h/db", "sqlite:////tmp/env.db", "postgresql://u@h/db"},
		{"flag-only", "sqlite:///x.db", "", "sqlite:///x.db"},
		{"blank-flag", "  ", "sqlite:///e.db", "sqlite:///e.db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvURL, c.env)
			if got := ResolveURL(c.flag); got != c.want {
				t.Errorf("ResolveURL(%q) with $%s=%q = %q, want %q", c.flag, EnvURL, c.env, got, c.want)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	cases := []struct {
		name, url  string
		kind, path string
		pg         string
		errHas     string
	}{
		{name: "default", url: DefaultURL, kind: kindSQLite, path: "fmtune.db"},
		{name: "sqlite-relative", url: "sqlite:///runs/a.db", kind: kindSQLite, path: "runs/a.db"},
		{name: "sqlite-absolute", url: "sqlite:////var/lib/fmtune/a.db", kind: kindSQLite, path: "/var/lib/fmtune/a.db"},
		{name: "sqlite-escaped", url: "sqlite:////tmp/my%20study.db", kind: kindSQLite, path: "/tmp/my study.db"},
		{name: "postgresql", url: "postgresql://user:secret@db.local:5433/optuna", kind: kindPostgres,
			pg: "postgresql://user:secret@db.local:5433/optuna"},
		{name: "postgres-alias", url: "postgres://u@h/db?sslmode=disable", kind: kindPostgres, pg: "postgresql://u@h/db?sslmode=disable"},
		{name: "sqlalchemy-driver", url: "postgresql+psycopg2://u@h:5432/db", kind: kindPostgres, pg: "postgresql://u@h:5432/db"},
		{name: "unknown-scheme", url: "mysql://u:p@h/db", errHas: `unsupported scheme "mysql"`},
		{name: "no-scheme", url: "fmtune.db", errHas: "no scheme"},
		{name: "sqlite-two-slashes", url: "sqlite://fmtune.db", errHas: "three slashes"},
		{name: "sqlite-memory", url: "sqlite:///:memory:", errHas: "in-memory"},
		{name: "sqlite-empty", url: "sqlite://", errHas: "three slashes"},
		{name: "sqlite-empty-path", url: "sqlite:///", errHas: "in-memory"},
		{name: "sqlite-options", url: "sqlite:///a.db?timeout=5", errHas: "not supported"},
		{name: "postgres-no-db", url: "postgresql://u:p@h:5432", errHas: "names no database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := parseURL(c.url)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("parseURL(%q) = %v, want error containing %q", c.url, err, c.errHas)
				}
				if strings.Contains(err.Error(), "p@") && strings.Contains(c.url, ":p@") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseURL(%q): %v", c.url, err)
			}
			if loc.kind != c.kind || loc.path != c.path || loc.pgURL != c.pg {
				t.Errorf("parseURL(%q) = %+v, want kind %s path %q pg %q", c.url, loc, c.kind, c.path, c.pg)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgresql://user:secret@h:5432/db": "postgresql://user:xxxxx@h:5432/db",
		"postgresql://user@h/db":             "postgresql://user@h/db",
		"sqlite:////tmp/a@b.db":              "sqlite:////tmp/a@b.db",
		"postgresql://h/db":                  "postgresql://h/db",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.db")
	ok(t, os.WriteFile(notDB, []byte("these are not the tables you are looking for\n"), 0o644))
	cases := []struct {
		name, url string
		errHas    []string
	}{
		{"unknown-scheme", "mysql://u:hunter2@localhost/db", []string{"unsupported scheme", "sqlite:///"}},
		{"missing-directory", "sqlite:///" + filepath.Join(dir, "no", "such", "dir", "f.db"), []string{"does not exist", "mkdir -p"}},
		{"path-is-directory", "sqlite:///" + dir, []string{"is a directory"}},
		{"not-a-database", "sqlite:///" + notDB, []string{"is not a SQLite database"}},
		{"postgres-refused", "postgresql://fmtune:hunter2@127.0.0.1:1/fmtune", []string{"is PostgreSQL running"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(context.Background(), c.url)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s): no error", c.url)
			}
			for _, want := range c.errHas {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open(%s) = %v\nwant it to mention %q", c.url, err, want)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	t.Run("postgres-unknown-database", func(t *testing.T) {
		admin := testPostgresURL(t)
		u := admin[:strings.LastIndex(admin, "/")] + "/fmtune_no_such_db"
		_, err := Open(context.Background(), u)
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "createdb") {
			t.Errorf("Open(unknown database) = %v, want 'does not exist ... createdb'", err)
		}
	})
	t.Run("postgres-bad-credentials-message", func(t *testing.T) {
		// The throwaway test server trusts every user, so the server's answer is made up here.
		cfg, err := pgx.ParseConfig("postgresql://fmtune:hunter2@db.example:5432/studies")
		ok(t, err)
		e := explainPostgresErr(&pgconn.PgError{Code: "28P01", Message: `password authentication failed for user "fmtune"`}, cfg, location{})
		for _, want := range []string{"authentication failed", `"fmtune"`, "password in the storage URL", EnvURL} {
			if !strings.Contains(e.Error(), want) {
				t.Errorf("message %q lacks %q", e, want)
			}
		}
	})
}

// TestSchemaCreated checks the schema fmtune creates on an empty database, and that a
// second Open (or a second process) accepts it.
func TestSchemaCreated(t *testing.T) {
	for _, b := range []struct {
		name string
		url  func(t testing.TB) string
	}{
		{"sqlite", sqliteURL},
		{"postgres", freshPostgresURL},
	} {
		t.Run(b.name, func(t *testing.T) {
			u := b.url(t)
			s := mustOpen(t, u)
			st := res(inspectSchema(context.Background(), s.db, s.d)).must(t)
			want := append([]string(nil), optunaTables...)
			if got := append([]string(nil), st.tables...); !sameSet(got, want) {
				t.Errorf("tables = %v, want %v", got, want)
			}
			if st.revision != SchemaRevision {
				t.Errorf("alembic revision = %q, want %q", st.revision, SchemaRevision)
			}
			var sv int
			var lv string
			ok(t, s.db.QueryRow("SELECT schema_version, library_version FROM version_info WHERE version_info_id = 1").Scan(&sv, &lv))
			if sv != 12 || lv == "" {
				t.Errorf("version_info = %d %q", sv, lv)
			}
			if b.name == "sqlite" {
				for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
					var got string
					ok(t, s.db.QueryRow("PRAGMA "+pragma).Scan(&got))
					if got != want {
						t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
					}
				}
			}
			id := res(s.CreateNewStudy("kept")).must(t)
			ok(t, s.Close())
			again := mustOpen(t, u)
			if got := res(again.GetStudyIDFromName("kept")).must(t); got != id {
				t.Errorf("after reopening, study id %d, want %d", got, id)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestOpenRefusesSchema: databases of another schema are refused with a clear error and
// left byte for byte as they were.
func TestOpenRefusesSchema(t *testing.T) {
	type setup func(db *sql.DB) error
	stamp := func(rev string) setup {
		return func(db *sql.DB) error {
			_, err := db.Exec("UPDATE alembic_version SET version_num = '" + rev + "'")
			return err
		}
	}
	cases := []struct {
		name   string
		schema bool // start from fmtune's schema
		change setup
		errHas string
	}{
		{"older-optuna-3.1", true, stamp("v3.0.0.d"), "optuna storage upgrade"},
		{"older-optuna-2", true, stamp("v2.6.0.a"), "older than"},
		{"newer-optuna", true, stamp("v3.4.0.a"), "unknown or newer"},
		{"unknown-revision", true, stamp("deadbeef"), "unknown or newer"},
		{"missing-table", true, func(db *sql.DB) error {
			_, err := db.Exec("DROP TABLE trial_heartbeats")
			return err
		}, "missing"},
		{"goptuna-like", false, func(db *sql.DB) error {
			_, err := db.Exec("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT, direction TEXT)")
			return err
		}, "no Optuna alembic_version"},
		{"foreign-tables", false, func(db *sql.DB) error {
			_, err := db.Exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
			return err
		}, "not an Optuna study database"},
	}
	for _, c := range cases {
		t.Run("sqlite/"+c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			if c.schema {
				s := mustOpen(t, "sqlite:///"+path)
				ok(t, s.Close())
			}
			// Change it through a plain connection in rollback-journal mode, as Optuna's files are.
			db := res(sql.Open("sqlite3", "file:"+path)).must(t)
			_, err := db.Exec("PRAGMA journal_mode=DELETE")
			ok(t, err)
			ok(t, c.change(db))
			ok(t, db.Close())
			before := fileHash(t, path)
			_, err = Open(context.Background(), "sqlite:///"+path)
			if !errors.Is(err, ErrUnsupportedSchema) || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("Open = %v\nwant ErrUnsupportedSchema mentioning %q", err, c.errHas)
			}
			if after := fileHash(t, path); after != before {
				t.Errorf("a refused database was modified")
			}
		})
	}
	t.Run("postgres/older-optuna-3.1", func(t *testing.T) {
		u := freshPostgresURL(t)
		s := mustOpen(t, u)
		_, err := s.db.Exec("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
		ok(t, err)
		ok(t, s.Close())
		_, err = Open(context.Background(), u)
		if !errors.Is(err, ErrUnsupportedSchema) || !strings.Contains(err.Error(), "optuna storage upgrade") {
			t.Fatalf("Open = %v, want ErrUnsupportedSchema with the upgrade hint", err)
		}
		db := res(sql.Open("pgx", u)).must(t)
		defer db.Close()
		var rev string
		ok(t, db.QueryRow("SELECT version_num FROM alembic_version").Scan(&rev))
		if rev != "v3.0.0.d" {
			t.Errorf("revision changed to %q", rev)
		}
	})
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	ok(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func TestSQLiteDSN(t *testing.T) {
	got := sqliteDSN("/tmp/my study.db", false)
	for _, want := range []string{"file:/tmp/my%20study.db?", "_journal_mode=WAL", "_busy_timeout=10000",
		"_foreign_keys=on", "_txlock=immediate", "_synchronous=NORMAL"} {
		if !strings.Contains(got, want) {
			t.Errorf("sqliteDSN = %q lacks %q", got, want)
		}
	}
	ro := sqliteDSN("a.db", true)
	if !strings.Contains(ro, "mode=ro") || strings.Contains(ro, "journal_mode") {
		t.Errorf("inspection DSN %q must be read-only and keep the journal mode", ro)
	}
}

func TestDistributionJSON(t *testing.T) {
	// Byte for byte what Optuna 3's distribution_to_json writes.
	cases := []struct {
		name string
		dist any
		json string
		back any // what reading it gives, when not dist itself
	}{
		{"uniform", paramCases[0].dist, `{"name": "FloatDistribution", "attributes": {"step": null, "low": -1.5, "high": 2.0, "log": false}}`, nil},
		{"log", paramCases[1].dist, `{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 0.1, "log": true}}`, nil},
		{"discrete", paramCases[2].dist, `{"name": "FloatDistribution", "attributes": {"step": 0.1, "low": 0.0, "high": 0.5, "log": false}}`, nil},
		{"int", paramCases[3].dist, `{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 1, "high": 5}}`, nil},
		{"step-int", paramCases[4].dist, `{"name": "IntDistribution", "attributes": {"log": false, "step": 32, "low": 32, "high": 256}}`, nil},
		{"categorical", goptuna.CategoricalDistribution{Choices: []string{"a", "é", `q"`}},
			`{"name": "CategoricalDistribution", "attributes": {"choices": ["a", "\u00e9", "q\""]}}`, nil},
		{"numeric-categorical", goptuna.CategoricalDistribution{Choices: []string{numchoice.Float(0.001), numchoice.Float(1), numchoice.Int(128), "0.1"}},
			`{"name": "CategoricalDistribution", "attributes": {"choices": [0.001, 1.0, 128, "0.1"]}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := res(distributionToJSON(c.dist)).must(t)
			if got != c.json {
				t.Errorf("distributionToJSON\n got %s\nwant %s", got, c.json)
			}
			back := res(distributionFromJSON(got)).must(t)
			want := c.back
			if want == nil {
				want = c.dist
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("round trip = %#v, want %#v", back, want)
			}
		})
	}
	// What Optuna writes that goptuna cannot express exactly.
	lossy := map[string]any{
		`{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 1, "high": 10}}`:           goptuna.IntUniformDistribution{Low: 1, High: 10},
		`{"name": "CategoricalDistribution", "attributes": {"choices": ["a", 1, null, 2.5, true]}}`:           goptuna.CategoricalDistribution{Choices: []string{"a", numchoice.Int(1), "null", numchoice.Float(2.5), "true"}},
		`{"name": "UniformDistribution", "attributes": {"low": 0, "high": 1}}`:                                goptuna.UniformDistribution{Low: 0, High: 1},
		`{"name": "IntLogUniformDistribution", "attributes": {"low": 1, "high": 8, "step": 1}}`:               goptuna.IntUniformDistribution{Low: 1, High: 8},
		`{"name": "DiscreteUniformDistribution", "attributes": {"low": 0, "high": 1, "q": 0.25}}`:             goptuna.DiscreteUniformDistribution{Low: 0, High: 1, Q: 0.25},
		`{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 1.0, "log": true}}`: goptuna.LogUniformDistribution{Low: 1e-5, High: 1},
	}
	for js, want := range lossy {
		if got := res(distributionFromJSON(js)).must(t); !reflect.DeepEqual(got, want) {
			t.Errorf("distributionFromJSON(%s) = %#v, want %#v", js, got, want)
		}
	}
	if _, err := distributionFromJSON(`{"name": "WeirdDistribution", "attributes": {}}`); !errors.Is(err, goptuna.ErrUnknownDistribution) {
		t.Errorf("unknown distribution: %v", err)
	}
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{0: "0.0", 1: "1.0", -1.5: "-1.5", 0.1: "0.1", 1e-4: "0.0001",
		1e-5: "1e-05", 1e16: "1e+16", 123456789012345.0: "123456789012345.0", 2.5e-7: "2.5e-07"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%v) = %q, want %q", f, got, want)
		}
	}
}
