package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, loc location) (*Storage, error) {
	where := fmt.Sprintf("storage %s", loc.redacted)
	cfg, err := pgx.ParseConfig(loc.pgURL)
	if err != nil {
		return nil, badURL("%s: %s: %s", where, redactErr(err, loc), urlHelp)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, explainPostgresErr(err, cfg, loc))
	}
	s := newStorage(db, postgresDialect, loc)
	if err := prepareSchema(ctx, s); err != nil {
		db.Close()
		if errors.Is(err, ErrUnsupportedSchema) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", where, explainPostgresErr(err, cfg, loc))
	}
	return s, nil
}

// explainPostgresErr names the problem and the fix for the usual connection failures.
func explainPostgresErr(err error, cfg *pgx.ConnConfig, loc location) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01", "28000":
			return fmt.Errorf("authentication failed for user %q (%s): check the user and password in the "+
				"storage URL (--storage or $%s): %w", cfg.User, pe.Message, EnvURL, err)
		case "3D000":
			return fmt.Errorf("database %q does not exist on %s:%d: create it (createdb -h %s -p %d -U %s %s) or "+
				"fix the storage URL: %w", cfg.Database, cfg.Host, cfg.Port, cfg.Host, cfg.Port, cfg.User,
				cfg.Database, err)
		case "42501":
			return fmt.Errorf("user %q lacks a privilege fmtune needs (%s): grant it CREATE and USAGE on the "+
				"schema, or create the tables as another user: %w", cfg.User, pe.Message, err)
		}
		return err
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing accepts connections on %s:%d: is PostgreSQL running and listening there "+
			"(listen_addresses, port)? %w", cfg.Host, cfg.Port, err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("cannot resolve host %q: fix the host in the storage URL: %w", cfg.Host, err)
	}
	return err
}

// redactErr removes the password from a pgx parse error message.
func redactErr(err error, loc location) string {
	msg := err.Error()
	if u, perr := parseURLPassword(loc.pgURL); perr == nil && u != "" {
		msg = strings.ReplaceAll(msg, u, "xxxxx")
	}
	return msg
}

func parseURLPassword(raw string) (string, error) {
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return "", err
	}
	return cfg.Password, nil
}

// postgresTransient reports errors worth retrying. Before COMMIT: serialization failures,
// deadlocks, lock timeouts, a server shutting down or starting up, and lost or refused
// connections (the server rolled the transaction back, or it never began). At COMMIT only
// serialization failures and deadlocks: after a lost connection the outcome is unknown.
func postgresTransient(err error, atCommit bool) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01":
			return true
		case "55P03", "57P01", "57P02", "57P03":
			return !atCommit
		}
		return !atCommit && strings.HasPrefix(pe.Code, "08")
	}
	if atCommit {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, pgconn.ErrConnClosed)
}

// postgresUnavailable reports errors that say the server could not be reached or is not
// serving: a lost or refused connection (also at COMMIT, where the outcome is unknown), a
// server shutting down or starting up, or out of connection slots.
func postgresUnavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	return postgresTransient(err, false)
}

func postgresUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
