// Package teststore opens the storages that the tests of study and cmd use:
// a SQLite file in the test's temporary directory, or a throwaway database
// on the PostgreSQL server of the tests (see testenv), closed when the test
// ends.
package teststore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fmtune/fmtune/internal/testenv"
	"github.com/fmtune/fmtune/storage"
)

// SQLiteURL is the URL of a new SQLite file in a temporary directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:///" + filepath.Join(t.TempDir(), "fmtune.db")
}

// SharedURL is an empty storage that several handles (or processes) can
// share: a fresh database on the PostgreSQL server of the tests when there
// is one, else a SQLite file. In CI (testenv.Required("postgres")) it must
// be PostgreSQL.
func SharedURL(t testing.TB) string {
	t.Helper()
	if testenv.Required("postgres") || testenv.PostgresConfigured() {
		return testenv.PostgresDB(t, "fmtune_shared")
	}
	t.Logf("%s not set: the handles share a SQLite file", testenv.EnvPostgres)
	return SQLiteURL(t)
}

// Open opens the storage at u, closed when the test ends.
func Open(t testing.TB, u string) *storage.Storage {
	t.Helper()
	s, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenSQLite opens a new SQLite storage in a temporary directory.
func OpenSQLite(t testing.TB) *storage.Storage {
	t.Helper()
	return Open(t, SQLiteURL(t))
}
