package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// sqliteBusyTimeoutMS is how long a connection waits for another process's write lock
// before SQLITE_BUSY (then the storage's own retry takes over).
const sqliteBusyTimeoutMS = 10000

// sqliteDSN is the one way this package opens SQLite. The normal DSN turns on WAL (readers
// never block the writer and survive concurrent processes), a busy timeout, foreign keys,
// synchronous=NORMAL (safe with WAL: a crash of the process loses nothing, a power cut at
// most the last transactions) and BEGIN IMMEDIATE for every *sql.Tx, so a write
// transaction takes the write lock up front instead of failing on lock upgrade with
// "database is locked". inspect gives a read-only DSN that changes nothing in the file
// (not even the journal mode): Open looks at an existing database with it before deciding
// to use it.
func sqliteDSN(path string, inspect bool) string {
	v := url.Values{}
	v.Set("_busy_timeout", fmt.Sprint(sqliteBusyTimeoutMS))
	if inspect {
		v.Set("mode", "ro")
	} else {
		v.Set("_journal_mode", "WAL")
		v.Set("_foreign_keys", "on")
		v.Set("_synchronous", "NORMAL")
		v.Set("_txlock", "immediate")
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

func openSQLite(ctx context.Context, loc location) (*Storage, error) {
	where := fmt.Sprintf("storage %s", loc.redacted)
	info, err := os.Stat(loc.path)
	switch {
	case err == nil && info.IsDir():
		return nil, fmt.Errorf("%s: %q is a directory; name a database file inside it, e.g. sqlite:///%s",
			where, loc.path, filepath.Join(loc.path, "fmtune.db"))
	case err == nil:
		if err := writable(loc); err != nil {
			return nil, err
		}
		if err := inspectSQLite(ctx, loc, where); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(loc.path)
		if di, derr := os.Stat(dir); derr != nil || !di.IsDir() {
			return nil, fmt.Errorf("%s: directory %q does not exist; create it (mkdir -p %s) or choose "+
				"another path with --storage or $%s", where, dir, dir, EnvURL)
		}
		if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
			return nil, fmt.Errorf("%s: %w: directory %q is not writable (%v), so no database can be created "+
				"in it; choose another path with --storage or $%s", where, ErrReadOnly, dir, err, EnvURL)
		}
	default:
		return nil, fmt.Errorf("%s: %w", where, err)
	}

	db, err := sql.Open("sqlite3", sqliteDSN(loc.path, false))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: cannot open the database file: %w; check the path and its permissions", where, err)
	}
	s := newStorage(db, sqliteDialect, loc)
	if err := prepareSchema(ctx, s); err != nil {
		db.Close()
		if errors.Is(err, ErrUnsupportedSchema) || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnly) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return s, nil
}

// writable refuses, before SQLite does it less clearly, an existing database that cannot
// be written: a read-only file, a read-only directory (WAL needs its -wal and -shm files
// beside the database) or a read-only file system.
func writable(loc location) error {
	for _, p := range []string{loc.path, filepath.Dir(loc.path)} {
		if err := syscall.Access(p, 2 /* W_OK */); err != nil {
			return fmt.Errorf("storage %s: %w: %q is not writable (%v); fmtune needs to write the database file "+
				"and, for its -wal and -shm files, its directory: check their permissions and whether the file "+
				"system is mounted read-only; nothing was changed", loc.redacted, ErrReadOnly, p, err)
		}
	}
	return nil
}

// inspectSQLite checks an existing file read-only, so that a database fmtune refuses is
// left exactly as it was.
func inspectSQLite(ctx context.Context, loc location, where string) error {
	dsn := sqliteDSN(loc.path, true)
	if quietWAL(loc.path) {
		// A read-only connection to a WAL database creates its -wal and -shm files and
		// cannot remove them: a refused file would be left with two new files beside it.
		// With no -wal file the database file holds every commit, and immutable reads
		// it without creating anything.
		dsn += "&immutable=1"
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer db.Close()
	st, err := inspectSchema(ctx, db, sqliteDialect)
	if err != nil {
		var se sqlite3.Error
		if sqliteCorrupt(err) {
			return damaged(where, loc.path, err)
		}
		if errors.As(err, &se) && se.Code == sqlite3.ErrNotADB {
			return fmt.Errorf("%s: %q is not a SQLite database (%v); point --storage at an fmtune/Optuna "+
				"database or a new file", where, loc.path, err)
		}
		return fmt.Errorf("%s: cannot read %q: %w", where, loc.path, err)
	}
	if st.empty() {
		return nil
	}
	return st.check(where)
}

// quietWAL reports whether path is a SQLite database in WAL mode (header byte 18 is 2)
// that no connection has open: it has no -wal file.
func quietWAL(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:16]) != "SQLite format 3\x00" || hdr[18] != 2 {
		return false
	}
	_, err = os.Stat(path + "-wal")
	return errors.Is(err, fs.ErrNotExist)
}

// sqliteTransient reports errors worth retrying: the database was busy or locked past the
// busy timeout. A SQLite transaction that failed never committed, so retrying is safe.
func sqliteTransient(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked
	}
	return false
}

// explainSQLiteWrite names the cause and the remedy of a write that failed for lack of
// space or of write access; other errors come back as they are.
func explainSQLiteWrite(err error, loc location) error {
	var se sqlite3.Error
	if !errors.As(err, &se) || errors.Is(err, ErrDiskFull) || errors.Is(err, ErrReadOnly) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrFull:
		return fmt.Errorf("storage %s: %w (%v): the write was rolled back and what was stored before is intact; "+
			"free space on the file system of %q and run again", loc.redacted, ErrDiskFull, err, filepath.Dir(loc.path))
	case sqlite3.ErrReadonly, sqlite3.ErrPerm, sqlite3.ErrCantOpen, sqlite3.ErrAuth:
		return fmt.Errorf("storage %s: %w (%v): fmtune needs to write %q and, for its -wal and -shm files, "+
			"its directory; check their permissions and whether the file system is mounted read-only",
			loc.redacted, ErrReadOnly, err, loc.path)
	case sqlite3.ErrIoErr:
		if se.ExtendedCode == sqlite3.ErrIoErrWrite || se.ExtendedCode == sqlite3.ErrIoErrFsync {
			return fmt.Errorf("storage %s: %w (%v): the write was rolled back; check the disk holding %q",
				loc.redacted, ErrReadOnly, err, loc.path)
		}
	}
	return err
}

// sqliteCorrupt reports a damaged database file ("database disk image is malformed").
func sqliteCorrupt(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrCorrupt
}

// damaged explains a damaged database file and what to do about it.
func damaged(where, path string, err error) error {
	return fmt.Errorf("%s: %w (%v): part of %q cannot be read; copy out what is left with "+
		"`sqlite3 %s .recover | sqlite3 recovered.db` and point --storage at recovered.db, or restore the file from a copy",
		where, ErrDamaged, err, path, path)
}

func sqliteUnique(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique
}
