package storage

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// DefaultURL is the storage used when neither --storage nor FMTUNE_STORAGE is given:
// fmtune.db in the working directory.
const DefaultURL = "sqlite:///fmtune.db"

// EnvURL is the environment variable that overrides DefaultURL.
const EnvURL = "FMTUNE_STORAGE"

// ResolveURL picks the storage URL: the flag value if set, else $FMTUNE_STORAGE if set,
// else DefaultURL.
func ResolveURL(flagValue string) string {
	if v := strings.TrimSpace(flagValue); v != "" {
		return v
	}
	if v := strings.TrimSpace(os.Getenv(EnvURL)); v != "" {
		return v
	}
	return DefaultURL
}

const urlHelp = "use sqlite:///relative/path.db, sqlite:////absolute/path.db or " +
	"postgresql://user:password@host:port/dbname (flag --storage or $" + EnvURL + ")"

// ErrInvalidURL marks a storage URL that cannot be parsed or names no database: a
// mistake in the command line (or $FMTUNE_STORAGE), found before anything is opened.
var ErrInvalidURL = errors.New("invalid storage URL")

type urlError struct{ msg string }

func (e *urlError) Error() string             { return e.msg }
func (e *urlError) Is(target error) bool      { return target == ErrInvalidURL }
func badURL(format string, args ...any) error { return &urlError{fmt.Sprintf(format, args...)} }

// location is a parsed storage URL.
type location struct {
	kind     string // kindSQLite or kindPostgres
	path     string // SQLite file path
	pgURL    string // PostgreSQL connection URL for pgx
	redacted string // the URL with any password replaced, for messages
}

const (
	kindSQLite   = "sqlite"
	kindPostgres = "postgres"
)

// parseURL parses a storage URL in Optuna's (SQLAlchemy's) form.
func parseURL(raw string) (location, error) {
	raw = strings.TrimSpace(raw)
	red := redactURL(raw)
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return location{}, badURL("storage URL %q has no scheme: %s", red, urlHelp)
	}
	// SQLAlchemy allows dialect+driver, e.g. postgresql+psycopg2://.
	dialect, _, _ := strings.Cut(strings.ToLower(scheme), "+")
	switch dialect {
	case "sqlite":
		return parseSQLiteURL(raw, rest, red)
	case "postgresql", "postgres":
		u, err := url.Parse("postgresql://" + rest)
		if err != nil {
			return location{}, badURL("storage URL %q: %v: %s", red, err, urlHelp)
		}
		if strings.Trim(u.Path, "/") == "" {
			return location{}, badURL("storage URL %q names no database: %s", red, urlHelp)
		}
		return location{kind: kindPostgres, pgURL: u.String(), redacted: red}, nil
	}
	return location{}, badURL("storage URL %q: unsupported scheme %q: %s", red, scheme, urlHelp)
}

func parseSQLiteURL(raw, rest, red string) (location, error) {
	// sqlite:///relative.db -> rest "/relative.db"; sqlite:////abs.db -> rest "//abs.db".
	if !strings.HasPrefix(rest, "/") {
		return location{}, badURL("storage URL %q: a SQLite URL has three slashes before a relative path "+
			"and four before an absolute one: %s", red, urlHelp)
	}
	path := rest[1:]
	if q := strings.IndexByte(path, '?'); q >= 0 {
		return location{}, badURL("storage URL %q: SQLite URL options (%q) are not supported; "+
			"fmtune sets WAL, busy timeout and foreign keys itself: %s", red, path[q:], urlHelp)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return location{}, badURL("storage URL %q: in-memory SQLite cannot hold a study beyond one "+
			"process; give a file path: %s", red, urlHelp)
	}
	if unescaped, err := url.PathUnescape(path); err == nil {
		path = unescaped
	}
	return location{kind: kindSQLite, path: path, redacted: raw}, nil
}

// redactURL hides the password of a URL for messages and logs.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	at := strings.LastIndex(rest, "@")
	slash := strings.IndexByte(rest, '/')
	if at < 0 || (slash >= 0 && slash < at) {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}
