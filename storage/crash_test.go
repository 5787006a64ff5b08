package storage

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// envBurstChild makes the test binary a process that writes trials to the SQLite file it
// names as fast as it can, printing "committed ID VALUE" after each trial's last commit.
const envBurstChild = "FMTUNE_TEST_BURST_DB"

// writeBurst is the child: four goroutines, each creating a trial, setting a parameter,
// attributes, intermediate values and the value, then completing it, until killed.
func writeBurst(path string) int {
	s, err := Open(context.Background(), "sqlite:///"+path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id, err := s.GetStudyIDFromName("burst")
	if err != nil {
		if id, err = s.CreateNewStudy("burst"); err == nil {
			err = s.SetStudyDirection(id, goptuna.StudyDirectionMaximize)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	pad := strings.Repeat("x", 1500)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				v := rand.Float64()
				tid, err := s.CreateNewTrial(id)
				if err == nil {
					err = s.SetTrialParam(tid, "lr", v, goptuna.UniformDistribution{Low: 0, High: 1})
				}
				if err == nil {
					err = s.SetTrialUserAttr(tid, "curve", pad)
				}
				for step := 1; step <= 3 && err == nil; step++ {
					err = s.SetTrialIntermediateValue(tid, step, v)
				}
				if err == nil {
					err = s.SetTrialValue(tid, v)
				}
				if err == nil {
					err = s.SetTrialState(tid, goptuna.TrialStateComplete)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "committed %d %s\n", tid, strconv.FormatFloat(v, 'g', -1, 64))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

// TestKill9DuringWriteBurst kills a process with kill -9 in the middle of a burst of
// writes to a SQLite file, three times over: each time the file passes PRAGMA
// integrity_check and every trial the process reported committed is stored, complete,
// with its value; the next process carries on in the same file.
func TestKill9DuringWriteBurst(t *testing.T) {
	path := strings.TrimPrefix(sqliteURL(t), "sqlite:///")
	committed := map[int]float64{}
	for round := 1; round <= 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envBurstChild+"="+path)
		stdout, err := cmd.StdoutPipe()
		ok(t, err)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		ok(t, cmd.Start())
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill after 40 to 80 committed trials, at a random moment within a trial.
		want := 40 + rand.IntN(40)
		n := 0
		timeout := time.After(time.Minute)
	read:
		for n < want {
			select {
			case line, more := <-lines:
				if !more {
					break read
				}
				record(t, committed, line)
				n++
			case <-timeout:
				t.Fatalf("round %d: only %d trials committed in a minute; stderr: %s", round, n, stderr.String())
			}
		}
		time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		ok(t, cmd.Process.Signal(syscall.SIGKILL))
		for line := range lines {
			record(t, committed, line)
		}
		_ = cmd.Wait()
		if n < want {
			t.Fatalf("round %d: the writer stopped by itself after %d trials: %s", round, n, stderr.String())
		}

		db, err := sql.Open("sqlite3", "file:"+path)
		ok(t, err)
		var check string
		ok(t, db.QueryRow("PRAGMA integrity_check").Scan(&check))
		db.Close()
		if check != "ok" {
			t.Fatalf("round %d: integrity_check: %s", round, check)
		}
		s := mustOpen(t, "sqlite:///"+path)
		id := res(s.GetStudyIDFromName("burst")).must(t)
		stored := map[int]goptuna.FrozenTrial{}
		trials := res(s.GetAllTrials(id)).must(t)
		for _, tr := range trials {
			stored[tr.ID] = tr
		}
		for tid, v := range committed {
			tr, found := stored[tid]
			if !found || tr.State != goptuna.TrialStateComplete || tr.Value != v || tr.Params["lr"] != v ||
				len(tr.IntermediateValues) != 3 || len(tr.UserAttrs["curve"]) != 1500 {
				t.Fatalf("round %d: trial id %d was committed with value %v but is stored as %+v", round, tid, v, tr)
			}
		}
		checkNumbers(t, trials, len(trials))
		s.Close()
		t.Logf("round %d: killed after %d reported commits; %d trials stored, %d reported", round, n, len(trials), len(committed))
	}
}

func record(t *testing.T, committed map[int]float64, line string) {
	t.Helper()
	var tid int
	var v float64
	if _, err := fmt.Sscanf(line, "committed %d %g", &tid, &v); err != nil {
		return // the line the kill cut short
	}
	committed[tid] = v
}
