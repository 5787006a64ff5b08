package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/c-bata/goptuna"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// envTestPostgres names a PostgreSQL server for the tests, as a URL with a database the
// tests may create other databases from (e.g. postgresql://postgres@127.0.0.1:55432/postgres).
// storage/testdata/pg-throwaway.sh starts a disposable one and prints the URL.
const envTestPostgres = "FMTUNE_TEST_POSTGRES"

var pgOnce struct {
	sync.Once
	url string // the per-run test database
	err error
}

// testPostgresURL returns a URL of a fresh database on the server in
// $FMTUNE_TEST_POSTGRES, created once per test binary and dropped by TestMain, or skips.
func testPostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(envTestPostgres)
	if admin == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a server URL (bash storage/testdata/pg-throwaway.sh start prints one)", envTestPostgres)
	}
	pgOnce.Do(func() {
		name := "fmtune_test_" + strings.ReplaceAll(uuid4()[:13], "-", "")
		pgOnce.url, pgOnce.err = createPostgresDB(admin, name)
	})
	if pgOnce.err != nil {
		t.Fatalf("create test database on %s: %v", redactURL(admin), pgOnce.err)
	}
	return pgOnce.url
}

// freshPostgresURL creates a database of its own for a test that needs an empty one.
func freshPostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(envTestPostgres)
	if admin == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a server URL", envTestPostgres)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("fmtune_test_%x", b)
	u, err := createPostgresDB(admin, name)
	if err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropPostgresDB(admin, name) })
	return u
}

func createPostgresDB(admin, name string) (string, error) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropPostgresDB(admin, name string) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
}

func TestMain(m *testing.M) {
	if path := os.Getenv(envBurstChild); path != "" {
		os.Exit(writeBurst(path)) // the child process of TestKill9DuringWriteBurst
	}
	code := m.Run()
	if pgOnce.url != "" {
		if u, err := url.Parse(pgOnce.url); err == nil {
			dropPostgresDB(os.Getenv(envTestPostgres), strings.TrimPrefix(u.Path, "/"))
		}
	}
	os.Exit(code)
}

// sqliteURL is the storage URL of a new database file in a test's temporary directory.
func sqliteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:///" + filepath.Join(t.TempDir(), "fmtune.db")
}

func mustOpen(t testing.TB, u string) *Storage {
	t.Helper()
	s, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open(%s): %v", redactURL(u), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backend is a storage implementation under test.
type backend struct {
	name string
	// fmtune marks our storage: the cases that check where it deliberately differs from
	// goptuna's InMemoryStorage run only there.
	fmtune bool
	open   func(t *testing.T) goptuna.Storage
}

func backends() []backend {
	return []backend{
		{name: "inmemory", open: func(*testing.T) goptuna.Storage { return goptuna.NewInMemoryStorage() }},
		{name: "sqlite", fmtune: true, open: func(t *testing.T) goptuna.Storage { return mustOpen(t, sqliteURL(t)) }},
		{name: "postgres", fmtune: true, open: func(t *testing.T) goptuna.Storage { return mustOpen(t, testPostgresURL(t)) }},
	}
}

// sqlBackends are the fmtune backends, opened as *Storage.
func sqlBackends() []struct {
	name string
	open func(t *testing.T) *Storage
} {
	return []struct {
		name string
		open func(t *testing.T) *Storage
	}{
		{"sqlite", func(t *testing.T) *Storage { return mustOpen(t, sqliteURL(t)) }},
		{"postgres", func(t *testing.T) *Storage { return mustOpen(t, testPostgresURL(t)) }},
	}
}

// studyName gives each test its own study name, so tests can share a PostgreSQL database.
func studyName(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + uuid4()[:8]
}

// newStudy creates a study with a direction.
func newStudy(t testing.TB, s goptuna.Storage, dir goptuna.StudyDirection) int {
	t.Helper()
	id, err := s.CreateNewStudy(studyName(t))
	if err != nil {
		t.Fatalf("CreateNewStudy: %v", err)
	}
	if err := s.SetStudyDirection(id, dir); err != nil {
		t.Fatalf("SetStudyDirection: %v", err)
	}
	return id
}

// result carries a (value, error) pair so that res(f()).must(t) can check any call.
type result[T any] struct {
	v   T
	err error
}

func res[T any](v T, err error) result[T] { return result[T]{v, err} }

// must returns the value, or fails the test with the error.
func (r result[T]) must(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
