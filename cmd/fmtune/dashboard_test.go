package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
	"github.com/chromedp/chromedp"

	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/testenv"
)

// hostileName is a study name, source and attribute that would run a
// script if the dashboard ever wrote it into a page as markup.
const hostileName = `<script>window.__pwned=1</script>`

// TestDashboardInChromium and TestDashboardInChromiumPostgres open the
// dashboard (a real fmtune process) in headless Chromium while other fmtune
// processes write a study, then check that nothing was written.
func TestDashboardInChromium(t *testing.T) {
	dir := t.TempDir()
	dashboardSession(t, dir, "sqlite:///"+filepath.Join(dir, "fmtune.db"))
}

func TestDashboardInChromiumPostgres(t *testing.T) {
	u, err := url.Parse(testenv.PostgresDB(t, "fmtune_dash"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.User.Password(); !ok {
		// The test server trusts 127.0.0.1, so any password does: one
		// that the dashboard must never show.
		u.User = url.UserPassword(u.User.Username(), "never-shown-pw")
	}
	dashboardSession(t, t.TempDir(), u.String())
}

const chromiumPath = "/usr/bin/chromium"

func dashboardSession(t *testing.T, dir, storeURL string) {
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Skip(t, "chromium", "no %s (apt-get install chromium): skipping the browser test", chromiumPath)
	}
	d := tinyData(t, dir, nil)
	run := func(env []string, wantOK bool, args ...string) {
		t.Helper()
		cmd := fmtune(t, dir, args...)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("fmtune %q: %v\n%s", args, err, out)
		}
	}
	common := []string{"--storage", storeURL, "--data", d}
	run(nil, true, append([]string{"tune", "--study", "live", "--arch", "mlp", "--trials", "3", "--epochs", "2", "--val", "2", "--workers", "1", "-q"}, common...)...)
	run(nil, true, append([]string{"train", "--study", "live", "--arch", "mlp", "--optimizer", "sgd", "--lr", "0.1", "--batch", "128", "--epochs", "2", "--val", "2"}, common...)...)
	writeHostileStudy(t, storeURL)

	base := startDashboard(t, dir, storeURL)
	ctx, logs := newBrowser(t)
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() int {
		return eval[int](t, ctx, `document.querySelectorAll("table.trials tbody tr[data-state]").length`)
	}
	// waitFor polls the page until cond holds and returns how long it took.
	waitFor := func(what string, limit time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > limit {
				t.Fatalf("%s: not within %v", what, limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}

	// The study page: the stored trials, the figures, a screenshot with ink.
	do(chromedp.Navigate(base+"study/live"), chromedp.WaitVisible(chromedp.CSS("table.trials")))
	if n := rows(); n != 4 {
		t.Fatalf("the trial table shows %d trials, want the 4 stored", n)
	}
	if pw := passwordOf(storeURL); eval[bool](t, ctx, `document.documentElement.outerHTML.includes(`+strconv.Quote(pw)+`)`) {
		t.Fatal("the page shows the storage password")
	}
	if figures := eval[int](t, ctx, `document.querySelectorAll("section.study figure svg").length`); figures != 6 {
		t.Fatalf("%d figures drawn, want 6", figures)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "study.png")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	checkScreenshot(t, png)

	// Another process adds trials: they appear without a reload, within 2 s.
	eval[int](t, ctx, `window.__marker = 42`)
	run(nil, true, append([]string{"resume", "live", "--trials", "5", "--workers", "1", "-q"}, common...)...)
	took := waitFor("the new trials", 10*time.Second, func() bool { return rows() == 6 })
	t.Logf("new trials on the page %v after the writer ended", took)
	if took > 2*time.Second {
		t.Errorf("the new trials took %v to appear, want at most 2 s", took)
	}
	if eval[int](t, ctx, `window.__marker || 0`) != 42 {
		t.Fatal("the page was reloaded to show the new trials")
	}
	// A process killed in the middle of a trial leaves it running: marked.
	run([]string{"FMTUNE_FAULT=after-params"}, false, append([]string{"resume", "live", "--trials", "6", "--workers", "1", "-q"}, common...)...)
	took = waitFor("the running trial", 10*time.Second, func() bool {
		return eval[int](t, ctx, `document.querySelectorAll('table.trials tr.st-running[data-state="running"]').length`) == 1
	})
	t.Logf("the running trial on the page %v after it was stored", took)
	if took > 2*time.Second {
		t.Errorf("the running trial took %v to appear, want at most 2 s", took)
	}

	// Sorting and filtering the trial table.
	do(chromedp.Click(chromedp.CSS(`th[data-key="val"]`)), chromedp.Click(chromedp.CSS(`th[data-key="val"]`)))
	order := eval[string](t, ctx, `Array.from(document.querySelectorAll("table.trials tbody tr")).map(r => r.cells[6].dataset.v).join(",")`)
	vals := strings.Split(order, ",")
	for i := 1; i < len(vals); i++ {
		if vals[i] != "" && vals[i-1] != "" && vals[i] > vals[i-1] {
			t.Fatalf("sorted by val acc, descending: %s", order)
		}
	}
	do(chromedp.SetValue(chromedp.CSS(`select[data-control="kind"]`), "manual"))
	eval[bool](t, ctx, `document.querySelector('select[data-control="kind"]').dispatchEvent(new Event("change"))`)
	if shown := eval[string](t, ctx, `document.querySelector(".controls .count").textContent`); shown != "1 of 7 trials" {
		t.Fatalf("filtered to manual trials: %q, want 1 of 7 trials", shown)
	}

	// A trial's page; the studies page; the hostile study.
	do(chromedp.Navigate(base+"study/live/trial/0"), chromedp.WaitVisible(chromedp.CSS("h2")))
	h2 := eval[string](t, ctx, `document.querySelector("h2").textContent`)
	if figures := eval[int](t, ctx, `document.querySelectorAll("figure svg").length`); !strings.HasPrefix(h2, "Trial #0") || figures != 1 {
		t.Fatalf("trial page: %q, %d figures", h2, figures)
	}
	for _, page := range []string{base, base + "study/" + url.PathEscape(hostileName)} {
		do(chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("section.study")),
			chromedp.Sleep(1500*time.Millisecond)) // one live refresh too
		if !eval[bool](t, ctx, `window.__pwned === undefined && document.scripts.length === 1 &&
				Array.from(document.querySelectorAll("a, h2, td")).some(e => e.textContent === `+"`"+hostileName+"`"+`)`) {
			t.Fatalf("%s: the hostile string ran or is not shown as text", page)
		}
	}

	// Read-only: with the writers gone, a dashboard session changes nothing.
	before := snapshot(t, storeURL)
	for _, p := range []string{"", "study/live", "study/live/trial/5"} {
		do(chromedp.Navigate(base+p), chromedp.Sleep(1200*time.Millisecond))
	}
	logs.check(t)
	stopDashboard(t)
	if after := snapshot(t, storeURL); after != before {
		t.Fatalf("the storage changed during a dashboard session:\nbefore %s\nafter  %s", before, after)
	}
}

// writeHostileStudy stores a study whose name, source, worker and
// attribute are a script.
func writeHostileStudy(t *testing.T, u string) {
	t.Helper()
	s, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sid, err := s.CreateNewStudy(hostileName)
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateNewTrial(sid)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.SetTrialParam(id, hostileName, 0, goptuna.CategoricalDistribution{Choices: []string{hostileName}}),
		s.SetTrialUserAttr(id, hostileName, hostileName),
		s.SetTrialSystemAttr(id, study.AttrSource, hostileName),
		s.SetTrialSystemAttr(id, study.AttrWorker, hostileName),
		s.SetStudyUserAttr(sid, hostileName, hostileName),
		s.SetTrialValue(id, 0.5),
		s.SetTrialState(id, goptuna.TrialStateComplete),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

var dashboards sync.Map // *testing.T -> *exec.Cmd

// startDashboard runs fmtune dashboard on a free port and returns its URL.
func startDashboard(t *testing.T, dir, storeURL string) string {
	t.Helper()
	cmd := fmtune(t, dir, "dashboard", "--addr", "127.0.0.1:0", "--storage", storeURL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dashboards.Store(t, cmd)
	t.Cleanup(func() { stopDashboard(t) })
	line, err := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("dashboard said %q (%v), stderr: %s", line, err, stderr.String())
	}
	if strings.Contains(line, passwordOf(storeURL)) {
		t.Fatalf("the dashboard printed the storage password: %q", line)
	}
	return m[1]
}

func passwordOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return "\x00"
	}
	if pw, ok := p.User.Password(); ok && pw != "" {
		return pw
	}
	return "\x00"
}

// stopDashboard interrupts the dashboard of t (Ctrl-C) and waits for it.
func stopDashboard(t *testing.T) {
	v, ok := dashboards.LoadAndDelete(t)
	if !ok {
		return
	}
	cmd := v.(*exec.Cmd)
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != exitInterrupted {
			t.Errorf("the dashboard ended with %v on Ctrl-C, want exit code %d", err, exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Error("the dashboard did not stop within 10 s of Ctrl-C")
	}
}

// consoleLog collects what the page said on its console, its uncaught
// exceptions and the browser's errors (a blocked script, a failed load).
type consoleLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *consoleLog) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }

func (l *consoleLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		t.Errorf("browser console: %s", s)
	}
}

// newBrowser starts headless Chromium (no network but the dashboard's
// loopback address) and returns a tab and its console log.
func newBrowser(t *testing.T) (context.Context, *consoleLog) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	logs := &consoleLog{}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				logs.add(fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, logs
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// snapshot sums up the stored bytes: the SQLite database file and its WAL,
// or every row of every table on PostgreSQL.
func snapshot(t *testing.T, u string) string {
	t.Helper()
	if strings.HasPrefix(u, "sqlite:///") {
		path := strings.TrimPrefix(u, "sqlite:///")
		var sums []string
		for _, p := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0 && strings.HasSuffix(p, "-wal")) {
				sums = append(sums, "no "+filepath.Base(p))
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			sums = append(sums, fmt.Sprintf("%s %x (%d bytes)", filepath.Base(p), sha256.Sum256(b), len(b)))
		}
		return strings.Join(sums, ", ")
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := sha256.New()
	var tables []string
	rows, err := db.Query("SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema() ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 13 {
		t.Fatalf("tables %v: want Optuna's 13 at least", tables)
	}
	for _, table := range tables {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%s %v\n", table, vals)
			n++
		}
		rows.Close()
		fmt.Fprintf(h, "%s: %d rows\n", table, n)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
