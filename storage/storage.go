package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/c-bata/goptuna"
)

// Storage is a goptuna.Storage over database/sql in Optuna's RDB schema. It is safe for
// concurrent use by many goroutines, and many processes may share one database.
type Storage struct {
	db  *sql.DB
	d   dialect
	loc location

	// wmu serialises this process's SQLite write transactions so that goroutines queue
	// in Go instead of in SQLite's sleeping busy handler; other processes still wait
	// through busy_timeout. Unused for PostgreSQL.
	wmu sync.Mutex

	// nanMu guards nanValue: trials whose last SetTrialValue was NaN. Optuna cannot store
	// a NaN objective (trial_values has no NAN type), so SetTrialValue(NaN) stores no value
	// and remembers it here, for the fail_reason SetTrialState writes when it turns the
	// COMPLETE into FAIL.
	nanMu    sync.Mutex
	nanValue map[int]bool

	// ckptTable is set once the checkpoints table is known to exist.
	ckptTable atomic.Bool
}

var _ goptuna.Storage = (*Storage)(nil)

// Sentinel errors. ErrNoCompletedTrials and ErrTrialNotFound are goptuna's own, so both
// errors.Is(err, storage.ErrNoCompletedTrials) and errors.Is(err,
// goptuna.ErrNoCompletedTrials) hold.
var (
	// ErrStudyNotFound: no study with that name or id.
	ErrStudyNotFound = errors.New("study not found")
	// ErrStudyExists: CreateNewStudy with a name that is taken.
	ErrStudyExists = errors.New("study already exists")
	// ErrNoCompletedTrials: GetBestTrial on a study without a COMPLETE trial.
	ErrNoCompletedTrials = goptuna.ErrNoCompletedTrials
	// ErrTrialNotFound: no trial with that id.
	ErrTrialNotFound = goptuna.ErrInvalidTrialID
	// ErrParamNotFound: GetTrialParam for a parameter the trial does not have.
	ErrParamNotFound = errors.New("parameter not found")
	// ErrIncompatibleDistribution: SetTrialParam with a distribution of another kind (or
	// other categorical choices) than the study already uses for that parameter.
	ErrIncompatibleDistribution = errors.New("incompatible distribution")
)

// Open opens the storage at url (Optuna/SQLAlchemy form: sqlite:///relative.db,
// sqlite:////absolute.db, postgresql://user:pass@host:port/db). It creates Optuna's schema
// in an empty database, uses an existing database at SchemaRevision without changing its
// schema, and refuses anything else with an error wrapping ErrUnsupportedSchema.
func Open(ctx context.Context, url string) (*Storage, error) {
	loc, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if loc.kind == kindPostgres {
		return openPostgres(ctx, loc)
	}
	return openSQLite(ctx, loc)
}

// ErrNoDatabase is returned by OpenExisting for a SQLite file that does not exist.
var ErrNoDatabase = errors.New("no database")

// OpenExisting opens the storage at url like Open, but never creates a new
// SQLite file: reading commands (best, studies, trials) use it so that a
// mistyped path is an error, not a new empty database.
func OpenExisting(ctx context.Context, url string) (*Storage, error) {
	loc, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if loc.kind == kindSQLite {
		if _, err := os.Stat(loc.path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("storage %s: %w at %q: nothing has been stored there yet; run 'fmtune tune' first, or point --storage or $%s at your database",
				loc.redacted, ErrNoDatabase, loc.path, EnvURL)
		}
	}
	return Open(ctx, url)
}

func newStorage(db *sql.DB, d dialect, loc location) *Storage {
	return &Storage{db: db, d: d, loc: loc, nanValue: make(map[int]bool)}
}

// Close closes the database.
func (s *Storage) Close() error { return s.db.Close() }

// String returns the storage URL with any password hidden.
func (s *Storage) String() string { return s.loc.redacted }

// prepareSchema creates the schema in an empty database or checks an existing one, in one
// write transaction (serialised against other processes doing the same).
func prepareSchema(ctx context.Context, s *Storage) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if s.d.kind == kindPostgres {
			// Two processes creating the schema of one new database take turns.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7283401)"); err != nil {
				return err
			}
		}
		st, err := inspectSchema(ctx, tx, s.d)
		if err != nil {
			return fmt.Errorf("inspect schema: %w", err)
		}
		if st.empty() {
			return createSchema(ctx, tx, s.d)
		}
		return st.check(s.loc.redacted)
	})
}

// dialect holds what differs between SQLite and PostgreSQL.
type dialect struct {
	kind          string
	listTablesSQL string
	forUpdate     string // row lock suffix for SELECTs inside write transactions
	cache         *sync.Map
}

var (
	sqliteDialect = dialect{
		kind:          kindSQLite,
		listTablesSQL: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
		cache:         new(sync.Map),
	}
	postgresDialect = dialect{
		kind: kindPostgres,
		listTablesSQL: "SELECT tablename::text FROM pg_catalog.pg_tables " +
			"WHERE schemaname = current_schema() ORDER BY tablename",
		forUpdate: " FOR UPDATE",
		cache:     new(sync.Map),
	}
)

// rebind turns the ? placeholders of q into $1, $2, ... for PostgreSQL. Queries in this
// package never contain a literal question mark.
func (d dialect) rebind(q string) string {
	if d.kind != kindPostgres {
		return q
	}
	if v, ok := d.cache.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	r := b.String()
	d.cache.Store(q, r)
	return r
}

// runner runs rebound queries on a transaction or connection.
type runner struct {
	q queryer
	d dialect
}

func (r runner) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, r.d.rebind(query), args...)
}

func (r runner) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, r.d.rebind(query), args...)
}

func (r runner) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, r.d.rebind(query), args...)
}

// execN runs an UPDATE/DELETE and returns the rows it affected.
func (r runner) execN(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := r.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// write runs fn in a write transaction: BEGIN IMMEDIATE on SQLite (through the DSN's
// _txlock), READ COMMITTED plus explicit row locks on PostgreSQL. The transaction is
// retried from the start on transient errors. Errors of fn come back as they are, so
// goptuna.ErrTrialCannotBeUpdated stays unwrapped.
func (s *Storage) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.kind == kindSQLite {
		s.wmu.Lock()
		defer s.wmu.Unlock()
	}
	err := s.retry(ctx, func() (bool, error) {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		if err := fn(tx); err != nil {
			return false, err
		}
		if err := tx.Commit(); err != nil {
			return true, err
		}
		return false, nil
	})
	if err != nil && s.d.kind == kindSQLite {
		// A full disk or a read-only file: say so, and that nothing was half-written.
		return explainSQLiteWrite(err, s.loc)
	}
	return err
}

// writeR is write with a runner.
func (s *Storage) writeR(fn func(ctx context.Context, r runner) error) error {
	ctx := context.Background()
	return s.write(ctx, func(tx *sql.Tx) error { return fn(ctx, runner{tx, s.d}) })
}

// read runs fn in a read-only snapshot: a deferred transaction on SQLite (WAL readers do
// not block writers), REPEATABLE READ READ ONLY on PostgreSQL.
func (s *Storage) read(fn func(ctx context.Context, r runner) error) error {
	ctx := context.Background()
	return s.retry(ctx, func() (bool, error) {
		if s.d.kind == kindPostgres {
			tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
			if err != nil {
				return false, err
			}
			defer tx.Rollback() //nolint:errcheck // read-only
			return false, fn(ctx, runner{tx, s.d})
		}
		// go-sqlite3 begins every *sql.Tx with the DSN's BEGIN IMMEDIATE, which would
		// serialise readers with writers; a plain BEGIN on a dedicated connection gives a
		// consistent WAL snapshot instead.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
			return false, err
		}
		ferr := fn(ctx, runner{conn, s.d})
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			// Never hand a connection with an open transaction back to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if ferr == nil {
				ferr = err
			}
		}
		return false, ferr
	})
}

// Retry policy for transient errors: a short, bounded, jittered exponential backoff.
const (
	retryAttempts = 8
	retryBase     = 20 * time.Millisecond
	retryMax      = time.Second
)

// retry runs attempt until it succeeds, fails with a non-transient error, or the attempts
// run out. attempt reports whether its error came from COMMIT, where a lost connection
// leaves the outcome unknown: such errors are not retried. The error it gives up with is
// classified (see classify).
func (s *Storage) retry(ctx context.Context, attempt func() (atCommit bool, err error)) error {
	delay := retryBase
	for i := 1; ; i++ {
		atCommit, err := attempt()
		if err == nil || i == retryAttempts || !s.transient(err, atCommit) {
			return s.classify(err)
		}
		sleep := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(sleep):
		}
		delay = min(2*delay, retryMax)
	}
}

// ErrUnavailable marks an error that says the database could not be reached, rather than
// that something was wrong with the request: PostgreSQL stopped, restarting or refusing
// connections, the network cut (also when a COMMIT's outcome is unknown), or a SQLite file
// locked by another process through every retry. The storage's own short retries are
// spent by then; a caller may wait longer and try again. errors.Is(err, ErrUnavailable)
// holds for such errors, and the message starts with "storage unreachable".
var ErrUnavailable = errors.New("storage unreachable")

// ErrDiskFull and ErrReadOnly mark SQLite writes that failed because the disk is full or
// the database file (or its directory, or the file system) cannot be written. SQLite
// rolled the transaction back: what was stored before is intact.
var (
	// ErrDamaged marks a SQLite file damaged on disk (SQLITE_CORRUPT).
	ErrDamaged  = errors.New("the database file is damaged")
	ErrDiskFull = errors.New("the disk is full")
	ErrReadOnly = errors.New("the database cannot be written")
)

type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "storage unreachable: " + oneLine(e.err.Error()) }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// oneLine joins the lines of a driver's message (pgx lists each address it tried on a
// line of its own), dropping repeated ones, so a progress note stays one line.
func oneLine(msg string) string {
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" && (len(parts) == 0 || parts[len(parts)-1] != l) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// classify marks an error the retries gave up on as ErrUnavailable. Other errors come
// back as they are, so goptuna.ErrTrialCannotBeUpdated stays unwrapped.
func (s *Storage) classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *unavailableError
	if errors.As(err, &ue) || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnly) || errors.Is(err, ErrDamaged) {
		return err
	}
	if s.d.kind == kindSQLite {
		if sqliteCorrupt(err) {
			return damaged("storage "+s.loc.redacted, s.loc.path, err)
		}
		if sqliteTransient(err) {
			return &unavailableError{fmt.Errorf("%s is locked by another process: %w", s.loc.path, err)}
		}
		return err
	}
	if postgresUnavailable(err) {
		return &unavailableError{err}
	}
	return err
}

func (s *Storage) transient(err error, atCommit bool) bool {
	if s.d.kind == kindSQLite {
		return sqliteTransient(err)
	}
	return postgresTransient(err, atCommit)
}

// Helpers shared by the methods.

// studyExists locks (PostgreSQL, in write transactions) or reads the study row.
func studyExists(ctx context.Context, r runner, studyID int, lock bool) error {
	q := "SELECT study_id FROM studies WHERE study_id = ?"
	if lock {
		q += r.d.forUpdate
	}
	var id int
	err := r.queryRow(ctx, q, studyID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("study id %d: %w", studyID, ErrStudyNotFound)
	}
	return err
}

// trialState reads (and on PostgreSQL locks) a trial's state.
func trialState(ctx context.Context, r runner, trialID int, lock bool) (string, error) {
	q := "SELECT state FROM trials WHERE trial_id = ?"
	if lock {
		q += r.d.forUpdate
	}
	var st string
	err := r.queryRow(ctx, q, trialID).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("trial id %d: %w", trialID, ErrTrialNotFound)
	}
	return st, err
}

// updatable locks a trial for an update and returns goptuna.ErrTrialCannotBeUpdated,
// unwrapped, when it is finished.
func updatable(ctx context.Context, r runner, trialID int) error {
	st, err := trialState(ctx, r, trialID, true)
	if err != nil {
		return err
	}
	if st != stateRunning && st != stateWaiting {
		return goptuna.ErrTrialCannotBeUpdated
	}
	return nil
}

func (s *Storage) setNaN(trialID int, nan bool) {
	s.nanMu.Lock()
	defer s.nanMu.Unlock()
	if nan {
		s.nanValue[trialID] = true
	} else {
		delete(s.nanValue, trialID)
	}
}

func (s *Storage) wasNaN(trialID int) bool {
	s.nanMu.Lock()
	defer s.nanMu.Unlock()
	return s.nanValue[trialID]
}
