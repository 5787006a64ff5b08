// Package testenv is what fmtune's tests share about their environment:
// skipping a test for want of something (PostgreSQL, Optuna, Chromium,
// root, the dataset), which CI turns into a failure, and throwaway
// PostgreSQL databases. It imports no fmtune package, so every package's
// tests can use it.
package testenv

import (
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver for the admin connection
)

// EnvRequire lists what the tests must find rather than skip without:
// "all", or names separated by commas (postgres, optuna, torch, chromium, root,
// data, tmpfs). .ci/run sets it to all, so that a test that would skip in
// CI fails instead.
const EnvRequire = "FMTUNE_REQUIRE"

// EnvPostgres names a PostgreSQL server for the tests, as a URL with a
// database the tests may create other databases from (for example
// postgresql://postgres@127.0.0.1:55432/postgres).
// storage/testdata/pg-throwaway.sh starts a disposable one and prints it.
const EnvPostgres = "FMTUNE_TEST_POSTGRES"

// Required reports whether what may not be skipped without (EnvRequire).
func Required(what string) bool {
	req := os.Getenv(EnvRequire)
	if req == "" {
		return false
	}
	names := strings.Split(req, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return slices.Contains(names, "all") || slices.Contains(names, what)
}

// Skip skips the test for want of what (postgres, optuna, chromium, root,
// data, ...), with a message that says how to get it; when what is
// Required, the test fails instead.
func Skip(t testing.TB, what, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required(what) {
		t.Fatalf("%s is required here (%s=%s) but missing: %s", what, EnvRequire, os.Getenv(EnvRequire), msg)
	}
	t.Skip(msg)
}

// PostgresConfigured reports whether EnvPostgres names a server.
func PostgresConfigured() bool { return os.Getenv(EnvPostgres) != "" }

// PostgresAdmin is the server URL in EnvPostgres, or skips the test.
func PostgresAdmin(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		Skip(t, "postgres", "PostgreSQL tests skipped: set %s to a server URL (bash storage/testdata/pg-throwaway.sh start prints one)", EnvPostgres)
	}
	return admin
}

// PostgresDB creates an empty database on the server in EnvPostgres (or
// skips the test), dropped when the test ends, and returns its URL. prefix
// starts its name, for whoever reads the server's log.
func PostgresDB(t testing.TB, prefix string) string {
	t.Helper()
	admin := PostgresAdmin(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("%s_%x", prefix, b)
	u, err := CreateDB(admin, name)
	if err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() { DropDB(admin, name) })
	return u
}

// CreateDB creates the database name on the server at admin and returns its URL.
func CreateDB(admin, name string) (string, error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDB drops the database name on the server at admin, if it exists.
func DropDB(admin, name string) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}
