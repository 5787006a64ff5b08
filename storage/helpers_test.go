package storage

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/testenv"
)

// envTestPostgres names the PostgreSQL server of the tests (see testenv.EnvPostgres).
const envTestPostgres = testenv.EnvPostgres

var pgOnce struct {
	sync.Once
	url string // the per-run test database
	err error
}

// testPostgresURL returns a URL of a fresh database on the server in
// $FMTUNE_TEST_POSTGRES, created once per test binary and dropped by TestMain, or skips.
func testPostgresURL(t testing.TB) string {
	t.Helper()
	admin := testenv.PostgresAdmin(t)
	pgOnce.Do(func() {
		name := "fmtune_test_" + strings.ReplaceAll(uuid4()[:13], "-", "")
		pgOnce.url, pgOnce.err = testenv.CreateDB(admin, name)
	})
	if pgOnce.err != nil {
		t.Fatalf("create test database on %s: %v", redactURL(admin), pgOnce.err)
	}
	return pgOnce.url
}

// freshPostgresURL creates a database of its own for a test that needs an empty one.
func freshPostgresURL(t testing.TB) string {
	t.Helper()
	return testenv.PostgresDB(t, "fmtune_test")
}

func TestMain(m *testing.M) {
	if path := os.Getenv(envBurstChild); path != "" {
		os.Exit(writeBurst(path)) // the child process of TestKill9DuringWriteBurst
	}
	code := m.Run()
	if pgOnce.url != "" {
		if u, err := url.Parse(pgOnce.url); err == nil {
			testenv.DropDB(os.Getenv(envTestPostgres), strings.TrimPrefix(u.Path, "/"))
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
