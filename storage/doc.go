// Package storage owns fmtune's persistence: a goptuna.Storage over database/sql that
// writes Optuna's own RDB schema (alembic revision v3.2.0.a, Optuna 3.2 to 4.x), so that
// Optuna, optuna-dashboard and fmtune read and write the same studies.
//
// Open takes a storage URL in Optuna's (SQLAlchemy's) form:
//
//	sqlite:///relative/path.db      SQLite file relative to the working directory
//	sqlite:////absolute/path.db     SQLite file with an absolute path
//	postgresql://user:pass@host:port/dbname
//
// ResolveURL picks the URL from the --storage flag, $FMTUNE_STORAGE or DefaultURL. SQLite
// goes through github.com/mattn/go-sqlite3 (WAL, busy timeout, foreign keys, BEGIN
// IMMEDIATE for writes; see sqliteDSN), PostgreSQL through pgx's database/sql driver. An
// empty database gets the schema; an existing one at v3.2.0.a is used as it is; anything
// else (older or newer Optuna revisions, foreign tables) is refused with ErrUnsupportedSchema
// and left untouched (Open inspects an existing SQLite file read-only first). A SQLite
// database fmtune uses is switched to WAL journal mode, a file flag rather than a schema
// change: Optuna reads and writes WAL databases as before, but WAL needs a local file
// system (not NFS).
//
// Where it differs from goptuna's rdb storage and InMemoryStorage, on purpose:
//
//   - A trial told COMPLETE with a NaN, ±Inf or missing objective becomes FAIL (with the
//     trial system attribute "fail_reason"), so it never becomes the best trial; Optuna also
//     refuses NaN objectives. GetBestTrial without a COMPLETE trial returns an error
//     wrapping goptuna.ErrNoCompletedTrials.
//   - Trial numbers are assigned in the inserting transaction with the study locked, so they
//     are 0..n-1 without gaps or duplicates across goroutines and processes.
//   - SetTrialState(id, RUNNING) claims only a WAITING trial, atomically; every update of a
//     finished trial (and a lost claim) returns goptuna.ErrTrialCannotBeUpdated unwrapped.
//   - Intermediate values keep NaN and ±Inf (Optuna's intermediate_value_type).
//   - Heartbeats: RecordHeartbeat and RecoverStaleTrials recover trials of crashed workers.
//   - Many workers, one budget: AcquireTrial decides (through a caller's function over the
//     study's trials) and claims or creates a trial in one transaction under the study's
//     lock, so a trial budget holds across processes; FailTrial and RecoverStaleTrials
//     fail a trial and queue its retry in one transaction.
//   - Transient errors (SQLite busy, PostgreSQL serialization failures and deadlocks, a lost
//     or refused connection before COMMIT) are retried with a short bounded backoff. When
//     that is not enough the error wraps ErrUnavailable ("storage unreachable: ..."), for
//     the caller to wait longer; a full disk or a read-only SQLite file gives ErrDiskFull or
//     ErrReadOnly with the remedy (the failed transaction was rolled back), and a URL that
//     cannot be parsed ErrInvalidURL.
//
// Attributes are strings in goptuna and JSON in Optuna: fmtune stores a string as
// json.dumps would, and reads back a JSON string as the string and any other JSON value
// (written by Optuna) as its JSON text. The mapping of goptuna's six distributions to
// Optuna's FloatDistribution, IntDistribution and CategoricalDistribution is described at
// distributionToJSON; datetimes are naive local time as Optuna writes them.
package storage
