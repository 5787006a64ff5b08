package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenReadOnly opens an existing storage for reading only, for viewers such
// as the dashboard: nothing it does can write to the database.
//
// SQLite is opened with mode=ro: the database file is never written (its
// bytes stay the same), and commits of other processes are seen at the
// next read. On a WAL database SQLite may create the -wal and -shm files
// beside it (empty: a reader writes no pages), which the next writer uses.
// PostgreSQL sessions start with default_transaction_read_only=on, so the
// server itself refuses any write. The schema is checked, never created or
// changed; a database without tables is ErrNoDatabase.
func OpenReadOnly(ctx context.Context, url string) (*Storage, error) {
	loc, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("storage %s", loc.redacted)
	var db *sql.DB
	var d dialect
	switch loc.kind {
	case kindSQLite:
		info, err := os.Stat(loc.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s: %w at %q: nothing has been stored there yet; run 'fmtune tune' first, or point --storage or $%s at your database",
				where, ErrNoDatabase, loc.path, EnvURL)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", where, err)
		case info.IsDir():
			return nil, fmt.Errorf("%s: %q is a directory; name the database file inside it", where, loc.path)
		}
		// inspectSQLite names what is wrong with a file that is not a
		// database or not one fmtune reads, and creates no -wal or -shm.
		if err := inspectSQLite(ctx, loc, where); err != nil {
			return nil, err
		}
		// Its DSN (mode=ro, a busy timeout), but never immutable: a viewer
		// must see what other processes commit.
		db, err = sql.Open("sqlite3", sqliteDSN(loc.path, true))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		db.SetMaxOpenConns(4)
		d = sqliteDialect
	default:
		cfg, err := pgx.ParseConfig(loc.pgURL)
		if err != nil {
			return nil, badURL("%s: %s: %s", where, redactErr(err, loc), urlHelp)
		}
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
		db = stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(4)
		d = postgresDialect
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: %w", where, explainPostgresErr(err, cfg, loc))
		}
	}
	s := newStorage(db, d, loc)
	var st schemaState
	err = s.read(func(ctx context.Context, r runner) error {
		var err error
		st, err = inspectSchema(ctx, r.q, d)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: cannot read the database: %w", where, err)
	}
	if st.empty() {
		db.Close()
		return nil, fmt.Errorf("%s: %w yet: it holds no tables, so nothing has been stored there; run 'fmtune tune' first, or point --storage or $%s at your database",
			where, ErrNoDatabase, EnvURL)
	}
	if err := st.check(where); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
