package main

import (
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/testenv"
)

// Faults, each with real processes: a worker killed mid-trial, the
// PostgreSQL server stopped and restarted, a diverging trial, a full disk and
// a read-only database.

// noPanic fails if a process printed a Go panic or a goroutine dump.
func noPanic(t *testing.T, name, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Fatalf("%s printed a Go panic trace:\n%s", name, stderr)
	}
}

// TestKill9WorkerOthersCarryOn kills one of three processes sharing a study
// in the middle of a trial: the others go on, the killed trial becomes FAIL
// once its heartbeat is stale, a surviving worker retries its parameters,
// and the study reaches its target.
func TestKill9WorkerOthersCarryOn(t *testing.T) {
	needData(t)
	dir := t.TempDir()
	u := sharedStorage(t, dir)
	each := []string{"--heartbeat", "500ms", "--workers", "1", "--quiet"}
	victim := startFmtune(t, dir, "victim", append([]string{"tune", "--study", "kill", "--storage", u, "--trials", "6",
		"--epochs", "3", "--train-limit", "3000", "--val", "1000", "--pruner", "none"}, each...)...)
	s := openURL(t, u)
	waitFor(t, time.Minute, "the study to be created", func() bool {
		_, _, err := study.LoadSpec(s, "kill")
		return err == nil
	})
	survivors := map[int]*proc{}
	for i := 1; i <= 2; i++ {
		p := startFmtune(t, dir, fmt.Sprintf("worker %d", i), append([]string{"worker", "--study", "kill", "--storage", u}, each...)...)
		survivors[p.pid()] = p
	}
	// Kill the victim once one of its trials has trained an epoch.
	var killed []goptuna.FrozenTrial
	waitFor(t, 2*time.Minute, "a trial of the victim in mid-training", func() bool {
		for _, tr := range storedTrials(s, "kill") {
			if tr.State == goptuna.TrialStateRunning && workerPID(tr) == victim.pid() && len(tr.IntermediateValues) >= 1 {
				return true
			}
		}
		return false
	})
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	victim.wait(t, time.Minute)
	for _, tr := range storedTrials(s, "kill") {
		if tr.State == goptuna.TrialStateRunning && workerPID(tr) == victim.pid() {
			killed = append(killed, tr)
		}
	}
	if len(killed) == 0 {
		t.Fatal("the kill left no running trial of the victim")
	}
	for _, p := range survivors {
		if code := p.wait(t, 3*time.Minute); code != 0 {
			t.Fatalf("%s exited %d:\n%s", p.name, code, tail(p.err.String(), 30))
		}
	}

	trials := storedTrials(s, "kill")
	checkNumbers(t, trials)
	for _, tr := range trials {
		if tr.State == goptuna.TrialStateRunning || tr.State == goptuna.TrialStateWaiting {
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
	}
	if n := budgetDone(trials); n != 6 {
		t.Fatalf("%d trials count toward the target, want 6", n)
	}
	for _, k := range killed {
		dead := trials[k.Number]
		if dead.State != goptuna.TrialStateFail || !strings.Contains(dead.SystemAttrs[study.AttrFailReason], "heartbeat") {
			t.Fatalf("killed trial %d is %s (%q), want FAIL for its heartbeat", k.Number, dead.State, dead.SystemAttrs[study.AttrFailReason])
		}
		want, _ := search.PointFromParams(k.Params)
		retried := false
		for _, tr := range trials {
			got, _ := search.PointFromParams(tr.Params)
			if tr.SystemAttrs[study.AttrRetryOf] == strconv.Itoa(k.Number) && got == want &&
				tr.State == goptuna.TrialStateComplete && survivors[workerPID(tr)] != nil {
				retried = true
			}
		}
		if !retried {
			t.Fatalf("killed trial %d (%v) was not retried to completion by a surviving worker", k.Number, want)
		}
	}
}

// TestDivergedTrialFailsAndStudyGoesOn: SGD with lr 10 makes the deep
// network's loss NaN. By default that trial stops as PRUNED, not learning
// (--dead-after); with --dead-after 0 it is FAIL with reason "diverged:
// ...". Either way the other one completes and the study ends normally.
func TestDivergedTrialFailsAndStudyGoesOn(t *testing.T) {
	needData(t)
	for _, deadAfter := range []string{"2", "0"} {
		dir := t.TempDir()
		out, errOut, code := runFmtune(t, dir, "tune", "--study", "dv", "--arch", "deep", "--sampler", "grid",
			"--lr", "0.01,10", "--optimizers", "sgd", "--batch", "128", "--epochs", "2", "--train-limit", "1000",
			"--val", "500", "--workers", "2", "--quiet", "--dead-after", deadAfter)
		noPanic(t, "tune", errOut)
		if code != 0 || !strings.Contains(out, "grid complete") {
			t.Fatalf("tune exited %d:\n%s\n%s", code, out, errOut)
		}
		for _, tr := range trialsOf(t, dir, "dv") {
			p := pointOf(t, tr)
			switch {
			case p.LR == 10 && deadAfter == "0" && (tr.State != "fail" || !strings.HasPrefix(tr.FailReason, "diverged")):
				t.Fatalf("--dead-after 0, lr 10: %s (%q), want fail with reason diverged", tr.State, tr.FailReason)
			case p.LR == 10 && deadAfter != "0" && tr.State != "pruned":
				t.Fatalf("lr 10: %s (%q), want pruned as not learning", tr.State, tr.FailReason)
			case p.LR == 0.01 && tr.State != "complete":
				t.Fatalf("lr 0.01: %s (%q), want complete", tr.State, tr.FailReason)
			}
		}
	}
}

// throwawayPostgres starts a PostgreSQL cluster of the test's own (so that
// stopping it disturbs no other test) and returns its URL and a function
// running pg-throwaway.sh down|up on it.
func throwawayPostgres(t *testing.T) (string, func(cmd string)) {
	t.Helper()
	testenv.PostgresAdmin(t) // the outage test starts a server of its own, but only where the others run
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(m) == 0 {
		testenv.Skip(t, "postgres", "PostgreSQL outage test skipped: no server binaries (apt-get install postgresql)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir, err := os.MkdirTemp("", "fmtune-outage-pg-")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs("../../storage/testdata/pg-throwaway.sh")
	if err != nil {
		t.Fatal(err)
	}
	pg := func(cmd string) string {
		c := exec.Command("bash", script, cmd, dir)
		c.Env = append(os.Environ(), "FMTUNE_PG_PORT="+port)
		out, err := c.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("pg-throwaway.sh %s: %v\n%s", cmd, err, ee.Stderr)
			}
			t.Fatalf("pg-throwaway.sh %s: %v", cmd, err)
		}
		return strings.TrimSpace(string(out))
	}
	u := pg("start")
	t.Cleanup(func() { pg("stop") })
	return u, func(cmd string) { pg(cmd) }
}

// TestPostgresRestartDuringStudy stops the PostgreSQL server in the middle
// of a study and starts it again: the process says the storage is
// unreachable, retries with backoff and carries on to the target. Then a run
// whose server stays down longer than --storage-patience stops with a clear
// error, and the next run recovers its trials: nothing is lost.
func TestPostgresRestartDuringStudy(t *testing.T) {
	needData(t)
	u, pg := throwawayPostgres(t)
	dir := t.TempDir()
	s := openURL(t, u)
	midTrial := func(name string) func() bool {
		return func() bool {
			for _, tr := range storedTrials(s, name) {
				if tr.State == goptuna.TrialStateRunning && len(tr.IntermediateValues) >= 1 {
					return true
				}
			}
			return false
		}
	}
	flags := []string{"--storage", u, "--workers", "2", "--heartbeat", "1s"}

	// 1. A restart: the run waits and carries on.
	p := startFmtune(t, dir, "tune", append([]string{"tune", "--study", "outage", "--trials", "4", "--epochs", "3",
		"--train-limit", "2000", "--val", "500", "--pruner", "none"}, flags...)...)
	waitFor(t, 2*time.Minute, "a trial in mid-training", midTrial("outage"))
	pg("down")
	// Up again once a write of the run has met the outage and waits to
	// retry (not after a fixed sleep, which a loaded machine may not fill;
	// nor at the first failed heartbeat, which the run rides out silently).
	waitFor(t, 2*time.Minute, "a write of the run to wait for the storage", func() bool { return strings.Contains(p.err.String(), "retrying in") })
	pg("up")
	if code := p.wait(t, 3*time.Minute); code != 0 {
		t.Fatalf("tune across a server restart exited %d:\n%s", code, tail(p.err.String(), 40))
	}
	errOut := p.err.String()
	noPanic(t, "tune", errOut)
	for _, want := range []string{"storage unreachable", "retrying in", "storage reachable again"} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("tune's output lacks %q:\n%s", want, tail(errOut, 40))
		}
	}
	logStorageLines(t, "tune", errOut)
	trials := storedTrials(s, "outage")
	checkNumbers(t, trials)
	for _, tr := range trials {
		if tr.State == goptuna.TrialStateRunning || tr.State == goptuna.TrialStateWaiting {
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
	}
	if n := budgetDone(trials); n != 4 {
		t.Fatalf("%d trials count toward the target after the restart, want 4", n)
	}

	// 2. An outage past the patience: a clean stop, the trials recoverable.
	p = startFmtune(t, dir, "resume", append([]string{"resume", "outage", "--trials", "7", "--storage-patience", "3s"}, flags...)...)
	waitFor(t, 2*time.Minute, "a trial in mid-training", midTrial("outage"))
	var running []int
	for _, tr := range storedTrials(s, "outage") {
		if tr.State == goptuna.TrialStateRunning {
			running = append(running, tr.Number)
		}
	}
	pg("down")
	code := p.wait(t, 2*time.Minute)
	errOut = p.err.String()
	noPanic(t, "resume", errOut)
	if code != 1 || !strings.Contains(errOut, "storage unreachable") || !strings.Contains(errOut, "gave up after 3s") {
		t.Fatalf("resume with the server down: exit %d, want 1 with a clear message:\n%s", code, tail(errOut, 20))
	}
	logStorageLines(t, "resume", errOut)
	pg("up")
	out, errOut2, code := runFmtune(t, dir, append([]string{"resume", "outage", "--quiet"}, flags...)...)
	if code != 0 {
		t.Fatalf("resume after the outage exited %d:\n%s\n%s", code, out, errOut2)
	}
	trials = storedTrials(s, "outage")
	checkNumbers(t, trials)
	if n := budgetDone(trials); n != 7 {
		t.Fatalf("%d trials count toward the target of 7", n)
	}
	for _, tr := range trials {
		if tr.State == goptuna.TrialStateRunning || tr.State == goptuna.TrialStateWaiting {
			t.Fatalf("trial %d left %s", tr.Number, tr.State)
		}
	}
	t.Logf("running when the server went down for good: %v", running)
	for _, n := range running {
		tr := trials[n]
		if tr.State == goptuna.TrialStateComplete {
			continue // its result was written before the outage
		}
		if tr.State != goptuna.TrialStateFail || !strings.Contains(tr.SystemAttrs[study.AttrFailReason], "heartbeat") {
			t.Fatalf("trial %d, running at the outage, is %s (%q)", n, tr.State, tr.SystemAttrs[study.AttrFailReason])
		}
	}
}

// logStorageLines logs what a process said about the storage.
func logStorageLines(t *testing.T, name, stderr string) {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "storage") || strings.Contains(line, "heartbeat") || strings.Contains(line, "marked FAIL") {
			t.Logf("%s: %s", name, line)
		}
	}
}

// mountTmpfs mounts a tmpfs of the given size on a new directory, or skips
// the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Skip(t, "root", "cannot mount a tmpfs here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// integrityCheck runs SQLite's PRAGMA integrity_check on the file.
func integrityCheck(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("PRAGMA integrity_check on %s: %q, %v", path, res, err)
	}
}

// finishedLines are the trials a LogProgress output reported as complete,
// with their validation accuracy as printed.
var finishedLine = regexp.MustCompile(`trial (\d+) complete: val ([0-9.]+)`)

// TestDiskFullStopsCleanly fills the file system under a SQLite study in the
// middle of a run: the run stops with a clear error, the file passes
// PRAGMA integrity_check, every trial reported complete is stored, and once
// space is freed the study resumes and reaches its target.
func TestDiskFullStopsCleanly(t *testing.T) {
	needData(t)
	mnt := mountTmpfs(t, "8M")
	db := filepath.Join(mnt, "fmtune.db")
	u := "sqlite:///" + db
	dir := t.TempDir()
	flags := []string{"--storage", u, "--workers", "2", "--heartbeat", "300ms"}
	if out, errOut, code := runFmtune(t, dir, append([]string{"tune", "--study", "full", "--trials", "1",
		"--epochs", "2", "--train-limit", "1000", "--val", "500", "--pruner", "none", "-q"}, flags...)...); code != 0 {
		t.Fatalf("first run: %d\n%s\n%s", code, out, errOut)
	}
	before := storedTrials(openURL(t, u), "full")

	// Leave 160 KB: room to start, not for the trials.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	var size int64
	for {
		n, err := f.Write(chunk)
		size += int64(n)
		if err != nil {
			break
		}
	}
	if err := f.Truncate(size - 160<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()

	out, errOut, code := runFmtune(t, dir, append([]string{"resume", "full", "--trials", "8"}, flags...)...)
	noPanic(t, "resume", errOut)
	if code != 1 || !strings.Contains(errOut, "the disk is full") {
		t.Fatalf("resume on a full disk: exit %d, want 1 saying the disk is full\n%s\n%s", code, out, tail(errOut, 20))
	}
	t.Logf("message: %s", tail(errOut, 1))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	integrityCheck(t, db)
	s := openURL(t, u)
	after := storedTrials(s, "full")
	if after[0].State != before[0].State || after[0].Value != before[0].Value || after[0].UserAttrs["curve"] != before[0].UserAttrs["curve"] {
		t.Fatalf("the trial stored before the disk filled changed: %+v -> %+v", before[0], after[0])
	}
	for _, m := range finishedLine.FindAllStringSubmatch(errOut, -1) {
		n, _ := strconv.Atoi(m[1])
		if n >= len(after) || after[n].State != goptuna.TrialStateComplete || fmt.Sprintf("%.4f", after[n].Value) != m[2] {
			t.Fatalf("trial %d was reported complete with val %s, but is not stored so", n, m[2])
		}
	}
	if out, errOut, code := runFmtune(t, dir, append([]string{"resume", "full", "-q"}, flags...)...); code != 0 {
		t.Fatalf("resume after freeing space: %d\n%s\n%s", code, out, errOut)
	}
	final := storedTrials(s, "full")
	if n := budgetDone(final); n != 8 {
		t.Fatalf("%d trials count toward the target of 8 after the resume", n)
	}
	integrityCheck(t, db)
}

// TestReadOnlyDatabaseRefused: a study on a file system mounted read-only is
// refused with a clear error (root ignores file modes, so the test remounts
// instead of chmod), and the file is left exactly as it was.
func TestReadOnlyDatabaseRefused(t *testing.T) {
	needData(t)
	mnt := mountTmpfs(t, "8M")
	db := filepath.Join(mnt, "fmtune.db")
	u := "sqlite:///" + db
	dir := t.TempDir()
	if out, errOut, code := runFmtune(t, dir, "tune", "--study", "ro", "--trials", "1", "--epochs", "1",
		"--train-limit", "500", "--val", "200", "-q", "--storage", u); code != 0 {
		t.Fatalf("first run: %d\n%s\n%s", code, out, errOut)
	}
	hash := fileHashes(t, mnt)
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		testenv.Skip(t, "root", "cannot remount read-only: %v %s", err, out)
	}
	defer exec.Command("mount", "-o", "remount,rw", mnt).Run() //nolint:errcheck // best effort before umount
	for _, args := range [][]string{
		{"resume", "ro", "--trials", "2", "--storage", u},
		{"tune", "--study", "ro2", "--trials", "1", "--epochs", "1", "--storage", u},
		{"worker", "--study", "ro", "--storage", u},
	} {
		_, errOut, code := runFmtune(t, dir, args...)
		noPanic(t, args[0], errOut)
		if code != 1 || !strings.Contains(errOut, "cannot be written") || !strings.Contains(errOut, "read-only") {
			t.Fatalf("%v on a read-only file system: exit %d, %s", args, code, errOut)
		}
	}
	if got := fileHashes(t, mnt); got != hash {
		t.Fatalf("the read-only directory changed:\nbefore %s\nafter  %s", hash, got)
	}
	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount rw: %v %s", err, out)
	}
	integrityCheck(t, db)
}

// fileHashes describes every file in dir by name, size and content hash.
func fileHashes(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%s:%d:%x ", rel, info.Size(), sha(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }
