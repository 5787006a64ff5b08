package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

func TestTransientErrors(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		name     string
		kind     string
		err      error
		atCommit bool
		want     bool
	}{
		{"sqlite-busy", kindSQLite, sqlite3.Error{Code: sqlite3.ErrBusy}, false, true},
		{"sqlite-locked", kindSQLite, fmt.Errorf("x: %w", sqlite3.Error{Code: sqlite3.ErrLocked}), false, true},
		{"sqlite-busy-at-commit", kindSQLite, sqlite3.Error{Code: sqlite3.ErrBusy}, true, true},
		{"sqlite-constraint", kindSQLite, sqlite3.Error{Code: sqlite3.ErrConstraint}, false, false},
		{"pg-serialization", kindPostgres, &pgconn.PgError{Code: "40001"}, false, true},
		{"pg-serialization-at-commit", kindPostgres, &pgconn.PgError{Code: "40001"}, true, true},
		{"pg-deadlock", kindPostgres, &pgconn.PgError{Code: "40P01"}, false, true},
		{"pg-admin-shutdown", kindPostgres, &pgconn.PgError{Code: "57P01"}, false, true},
		{"pg-connection-failure", kindPostgres, &pgconn.PgError{Code: "08006"}, false, true},
		{"pg-connection-failure-at-commit", kindPostgres, &pgconn.PgError{Code: "08006"}, true, false},
		{"pg-unique-violation", kindPostgres, &pgconn.PgError{Code: "23505"}, false, false},
		{"pg-refused", kindPostgres, refused, false, true},
		{"pg-eof", kindPostgres, fmt.Errorf("read: %w", io.ErrUnexpectedEOF), false, true},
		{"pg-eof-at-commit", kindPostgres, io.ErrUnexpectedEOF, true, false},
		{"cannot-be-updated", kindPostgres, goptuna.ErrTrialCannotBeUpdated, false, false},
		{"study-not-found", kindSQLite, ErrStudyNotFound, false, false},
		{"context-canceled", kindPostgres, context.Canceled, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Storage{d: dialect{kind: c.kind}}
			if got := s.transient(c.err, c.atCommit); got != c.want {
				t.Errorf("transient(%v, atCommit=%v) = %v, want %v", c.err, c.atCommit, got, c.want)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	busy := sqlite3.Error{Code: sqlite3.ErrBusy}
	cases := []struct {
		name      string
		errs      []error // returned by successive attempts; nil ends
		atCommit  bool
		wantCalls int
		wantErr   error
	}{
		{"succeeds-at-once", []error{nil}, false, 1, nil},
		{"busy-then-ok", []error{busy, busy, nil}, false, 3, nil},
		{"not-transient", []error{goptuna.ErrTrialCannotBeUpdated, nil}, false, 1, goptuna.ErrTrialCannotBeUpdated},
		{"gives-up", []error{busy, busy, busy, busy, busy, busy, busy, busy, busy, busy}, false, retryAttempts, busy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Storage{d: dialect{kind: kindSQLite}}
			calls := 0
			start := time.Now()
			err := s.retry(context.Background(), func() (bool, error) {
				e := c.errs[calls]
				calls++
				return c.atCommit, e
			})
			if calls != c.wantCalls || !errors.Is(err, c.wantErr) && err != c.wantErr { //nolint:errorlint
				t.Errorf("retry: %d calls, err %v; want %d calls, err %v", calls, err, c.wantCalls, c.wantErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("retry took %v: the backoff must stay short", d)
			}
		})
	}
}

// outageProxy forwards TCP connections to a PostgreSQL server and can simulate an outage:
// existing connections are cut and new ones refused for a while.
type outageProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func startOutageProxy(t *testing.T, target string) *outageProxy {
	p := &outageProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ok(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut() })
	return p
}

func (p *outageProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener (new connections are refused) and every open connection.
func (p *outageProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// outage cuts everything now and listens again on the same address after d.
func (p *outageProxy) outage(d time.Duration) <-chan struct{} {
	p.cut()
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(d)
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.t.Errorf("proxy relisten on %s: %v", p.addr, err)
			return
		}
		p.serve(ln)
	}()
	return done
}

// TestPostgresOutage: during a short PostgreSQL outage (connections cut, then refused)
// storage calls wait through the retry backoff and succeed, without duplicate trials.
func TestPostgresOutage(t *testing.T) {
	u, err := url.Parse(testPostgresURL(t))
	ok(t, err)
	p := startOutageProxy(t, u.Host)
	u.Host = p.addr
	s := mustOpen(t, u.String())
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	first := res(s.CreateNewTrial(id)).must(t)

	back := p.outage(400 * time.Millisecond)
	start := time.Now()
	second, err := s.CreateNewTrial(id)
	if err != nil {
		t.Fatalf("CreateNewTrial during a 400ms outage: %v", err)
	}
	ok(t, s.SetTrialValue(second, 1))
	ok(t, s.SetTrialState(second, goptuna.TrialStateComplete))
	<-back
	t.Logf("first call after the outage began returned after %v", time.Since(start).Round(time.Millisecond))
	trials := res(s.GetAllTrials(id)).must(t)
	checkNumbers(t, trials, 2)
	if best := res(s.GetBestTrial(id)).must(t); best.ID != second || first == second {
		t.Errorf("best = %d, want %d", best.ID, second)
	}
}
