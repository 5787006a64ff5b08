package storage

import (
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// budgetChooser claims the first WAITING trial, else creates one, while fewer than
// target trials are RUNNING or finished.
func budgetChooser(target int, create bool) func([]goptuna.FrozenTrial) Pick {
	return func(trials []goptuna.FrozenTrial) Pick {
		used := 0
		for _, t := range trials {
			if t.State != goptuna.TrialStateWaiting {
				used++
			}
		}
		if used >= target {
			return Pick{}
		}
		for _, t := range trials {
			if t.State == goptuna.TrialStateWaiting {
				return Pick{Action: PickClaim, TrialID: t.ID}
			}
		}
		if create {
			return Pick{Action: PickCreate}
		}
		return Pick{}
	}
}

// TestAcquireTrialHonoursBudget: many goroutines on several connections pools (as many
// processes would be) create and claim trials against one budget; the budget is met
// exactly, never overshot, and every waiting trial is claimed at most once.
func TestAcquireTrialHonoursBudget(t *testing.T) {
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			first := b.open(t)
			u := first.loc.redacted
			if first.d.kind == kindPostgres {
				u = first.loc.pgURL
			}
			for _, c := range []struct {
				name            string
				waiting, target int
				create          bool
			}{
				{"create", 0, 25, true},
				{"claim", 30, 20, false},
				{"claim-then-create", 6, 15, true},
			} {
				t.Run(c.name, func(t *testing.T) {
					id := newStudy(t, first, goptuna.StudyDirectionMaximize)
					for i := 0; i < c.waiting; i++ {
						res(first.CloneTrial(id, goptuna.FrozenTrial{State: goptuna.TrialStateWaiting,
							SystemAttrs: map[string]string{"i": string(rune('a' + i))}})).must(t)
					}
					var wg sync.WaitGroup
					var mu sync.Mutex
					got := map[int]int{}
					for h := 0; h < 3; h++ {
						s := first
						if h > 0 {
							s = mustOpen(t, u) // another pool, as another process has
						}
						for g := 0; g < 4; g++ {
							wg.Add(1)
							go func() {
								defer wg.Done()
								for {
									tid, err := s.AcquireTrial(id, budgetChooser(c.target, c.create))
									if err == goptuna.ErrTrialCannotBeUpdated {
										continue
									}
									if err != nil {
										t.Error(err)
										return
									}
									if tid < 0 {
										return
									}
									mu.Lock()
									got[tid]++
									mu.Unlock()
									if err := s.SetTrialValue(tid, 1); err != nil {
										t.Error(err)
										return
									}
									if err := s.SetTrialState(tid, goptuna.TrialStateComplete); err != nil {
										t.Error(err)
										return
									}
								}
							}()
						}
					}
					wg.Wait()
					trials := res(first.GetAllTrials(id)).must(t)
					complete, waiting := 0, 0
					for _, tr := range trials {
						switch tr.State {
						case goptuna.TrialStateComplete:
							complete++
						case goptuna.TrialStateWaiting:
							waiting++
						default:
							t.Errorf("trial %d is %s", tr.Number, tr.State)
						}
					}
					wantWaiting := max(c.waiting-c.target, 0)
					if complete != c.target || waiting != wantWaiting || len(got) != c.target {
						t.Fatalf("%d complete, %d waiting, %d acquired; want %d, %d, %d", complete, waiting, len(got), c.target, wantWaiting, c.target)
					}
					for tid, n := range got {
						if n != 1 {
							t.Fatalf("trial id %d acquired %d times", tid, n)
						}
					}
					checkNumbers(t, trials, c.target+wantWaiting)
				})
			}
		})
	}
}

func TestFailTrialRequeues(t *testing.T) {
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			id := newStudy(t, s, goptuna.StudyDirectionMaximize)
			tid := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SetTrialParam(tid, "x", 0.5, goptuna.UniformDistribution{Low: 0, High: 1}))
			retry := goptuna.FrozenTrial{State: goptuna.TrialStateWaiting, SystemAttrs: map[string]string{"fixed_params": `{"x":0.5}`}}
			newID := res(s.FailTrial(tid, "interrupted", "interrupted", &retry)).must(t)
			failed := res(s.GetTrial(tid)).must(t)
			queued := res(s.GetTrial(newID)).must(t)
			if failed.State != goptuna.TrialStateFail || failed.SystemAttrs["fail_reason"] != "interrupted" || failed.SystemAttrs[AttrFailKind] != "interrupted" ||
				queued.State != goptuna.TrialStateWaiting || queued.SystemAttrs["fixed_params"] != `{"x":0.5}` || queued.Number != 1 {
				t.Fatalf("failed %+v\nqueued %+v", failed, queued)
			}
			// A finished trial cannot be failed again, and nothing is queued.
			if _, err := s.FailTrial(tid, "again", "", &retry); err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // must stay unwrapped
				t.Fatalf("FailTrial of a FAIL trial: %v, want goptuna.ErrTrialCannotBeUpdated unwrapped", err)
			}
			if n := len(res(s.GetAllTrials(id)).must(t)); n != 2 {
				t.Fatalf("%d trials after a refused FailTrial, want 2", n)
			}
			// Without a retry.
			other := res(s.CreateNewTrial(id)).must(t)
			if got := res(s.FailTrial(other, "diverged: loss is NaN", "", nil)).must(t); got != -1 {
				t.Fatalf("FailTrial without requeue returned id %d", got)
			}
			if kind, set := res(s.GetTrial(other)).must(t).SystemAttrs[AttrFailKind]; set {
				t.Fatalf("FailTrial without a kind wrote %s = %q", AttrFailKind, kind)
			}
		})
	}
}

func TestRecoverStaleTrialsRequeuesInTheSameStep(t *testing.T) {
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			id := newStudy(t, s, goptuna.StudyDirectionMaximize)
			dead := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SetTrialSystemAttr(dead, "retry_me", "yes"))
			ok(t, s.RecordHeartbeat(dead))
			noParams := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.RecordHeartbeat(noParams))
			alive := res(s.CreateNewTrial(id)).must(t)
			ageHeartbeat(t, s, dead, time.Hour)
			ageHeartbeat(t, s, noParams, time.Hour)
			ok(t, s.RecordHeartbeat(alive))
			stale := res(s.RecoverStaleTrials(id, time.Minute, func(tr goptuna.FrozenTrial) (goptuna.FrozenTrial, bool) {
				if tr.SystemAttrs["retry_me"] != "yes" {
					return goptuna.FrozenTrial{}, false
				}
				return goptuna.FrozenTrial{State: goptuna.TrialStateWaiting, SystemAttrs: map[string]string{"retry_of": "0"}}, true
			})).must(t)
			if len(stale) != 2 {
				t.Fatalf("%d stale trials, want 2", len(stale))
			}
			trials := res(s.GetAllTrials(id)).must(t)
			if len(trials) != 4 || trials[3].State != goptuna.TrialStateWaiting || trials[3].SystemAttrs["retry_of"] != "0" ||
				trials[0].State != goptuna.TrialStateFail || trials[0].SystemAttrs[AttrFailKind] != FailKindStale ||
				trials[2].State != goptuna.TrialStateRunning {
				t.Fatalf("after recovery: %+v", trials)
			}
		})
	}
}

func TestUnavailableClassification(t *testing.T) {
	cases := []struct {
		name string
		kind string
		err  error
		want bool
	}{
		{"pg-refused", kindPostgres, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"pg-eof-at-commit", kindPostgres, io.ErrUnexpectedEOF, true},
		{"pg-admin-shutdown", kindPostgres, &pgconn.PgError{Code: "57P01"}, true},
		{"pg-starting-up", kindPostgres, &pgconn.PgError{Code: "57P03"}, true},
		{"pg-too-many-connections", kindPostgres, &pgconn.PgError{Code: "53300"}, true},
		{"pg-connection-failure", kindPostgres, &pgconn.PgError{Code: "08006"}, true},
		{"pg-unique-violation", kindPostgres, &pgconn.PgError{Code: "23505"}, false},
		{"pg-auth", kindPostgres, &pgconn.PgError{Code: "28P01"}, false},
		{"sqlite-busy", kindSQLite, sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{"sqlite-full", kindSQLite, sqlite3.Error{Code: sqlite3.ErrFull}, false},
		{"cannot-be-updated", kindSQLite, goptuna.ErrTrialCannotBeUpdated, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Storage{d: dialect{kind: c.kind}, loc: location{path: "/x/fmtune.db", redacted: "sqlite:////x/fmtune.db"}}
			err := s.classify(c.err)
			if got := errors.Is(err, ErrUnavailable); got != c.want {
				t.Fatalf("classify(%v) = %v; unavailable %v, want %v", c.err, err, got, c.want)
			}
			if c.want && !strings.HasPrefix(err.Error(), "storage unreachable: ") {
				t.Fatalf("message %q does not start with storage unreachable", err)
			}
			if !c.want && err != c.err { //nolint:errorlint // must come back as it was
				t.Fatalf("classify changed %v into %v", c.err, err)
			}
		})
	}
	full := explainSQLiteWrite(sqlite3.Error{Code: sqlite3.ErrFull}, location{path: "/x/fmtune.db", redacted: "sqlite:////x/fmtune.db"})
	if !errors.Is(full, ErrDiskFull) || !strings.Contains(full.Error(), "intact") {
		t.Fatalf("disk full: %v", full)
	}
	ro := explainSQLiteWrite(sqlite3.Error{Code: sqlite3.ErrReadonly}, location{path: "/x/fmtune.db", redacted: "sqlite:////x/fmtune.db"})
	if !errors.Is(ro, ErrReadOnly) || !strings.Contains(ro.Error(), "read-only") {
		t.Fatalf("read-only: %v", ro)
	}
}

// TestPostgresLongOutageIsUnavailable: an outage longer than the storage's own retries
// ends a call with an error that says so (ErrUnavailable), and the same Storage works
// again once the server is back.
func TestPostgresLongOutageIsUnavailable(t *testing.T) {
	u, err := url.Parse(testPostgresURL(t))
	ok(t, err)
	p := startOutageProxy(t, u.Host)
	u.Host = p.addr
	s := mustOpen(t, u.String())
	id := newStudy(t, s, goptuna.StudyDirectionMinimize)
	back := p.outage(5 * time.Second)
	_, err = s.CreateNewTrial(id)
	if !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "storage unreachable: ") {
		t.Fatalf("CreateNewTrial during a 5s outage: %v, want an ErrUnavailable", err)
	}
	<-back
	res(s.CreateNewTrial(id)).must(t)
	checkNumbers(t, res(s.GetAllTrials(id)).must(t), 1)
}

func TestInvalidURLIsMarked(t *testing.T) {
	for _, u := range []string{"mysql://u@h/db", "fmtune.db", "sqlite://rel.db", "postgresql://h:5432/", "sqlite:///:memory:"} {
		if _, err := parseURL(u); !errors.Is(err, ErrInvalidURL) {
			t.Errorf("parseURL(%q) = %v, want an ErrInvalidURL", u, err)
		}
	}
}
