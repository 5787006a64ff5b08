package study

// "Every grid point exactly once, whatever the moment of a kill": a child
// process (this test binary, re-run) works on a grid study with a fake
// trainer and is killed (SIGKILL) at one of the fault points of package
// fault; the next run recovers, and every point completes exactly once.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fmtune/fmtune/internal/fault"
	"github.com/fmtune/fmtune/internal/teststore"
	"github.com/fmtune/fmtune/storage"
)

// envFaultChild makes the test binary a child that runs a study: the value
// is the storage URL, the study is faultStudy.
const envFaultChild = "FMTUNE_TEST_FAULT_CHILD"

const faultStudy = "faults"

// faultHeartbeat is the heartbeat of the child and of the recovering run:
// a dead trial is stale after 4 of them (and a second, on SQLite). A live
// trial on a loaded machine (-race) must not look dead meanwhile.
const faultHeartbeat = 250 * time.Millisecond

// envSeedChild makes the test binary a child that runs a study whose
// sampler cannot be seeded (GODEBUG=randseednop=1): the value is the
// storage URL.
const envSeedChild = "FMTUNE_TEST_SEED_CHILD"

func TestMain(m *testing.M) {
	if u := os.Getenv(envFaultChild); u != "" {
		os.Exit(faultChild(u))
	}
	if u := os.Getenv(envSeedChild); u != "" {
		os.Exit(seedChild(u))
	}
	os.Exit(m.Run())
}

// seedChild runs the study at u and exits 0 when Run refused to, saying that
// the sampler cannot be seeded; 1 when it ran.
func seedChild(u string) int {
	store, err := storage.Open(context.Background(), u)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 3
	}
	defer store.Close()
	spec, _, err := LoadSpec(store, faultStudy)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 3
	}
	fake := &fakeTrainer{}
	_, err = Run(context.Background(), store, noData, spec, RunOptions{Workers: 1, Train: fake.Train})
	if err != nil && strings.Contains(err.Error(), "cannot be seeded") && fake.count() == 0 {
		return 0
	}
	os.Stderr.WriteString(fmt.Sprintf("Run: %v after %d trainings; want the seeding error before any\n", err, fake.count()))
	return 1
}

// TestUnseedableSamplerStopsTheRun: where the global math/rand cannot be
// seeded (a binary built without //go:debug randseednop=0; here the
// GODEBUG of a child process), Run says so instead of sampling
// unreproducibly.
func TestUnseedableSamplerStopsTheRun(t *testing.T) {
	u := teststore.SQLiteURL(t)
	prepare(t, teststore.Open(t, u), testSpec(faultStudy))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSeedChild+"="+u, "GODEBUG=randseednop=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// faultChild runs the study at u with two workers and the fake trainer; a
// fault point armed by FMTUNE_FAULT kills it on the way.
func faultChild(u string) int {
	store, err := storage.Open(context.Background(), u)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 3
	}
	defer store.Close()
	spec, _, err := LoadSpec(store, faultStudy)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 3
	}
	fake := &fakeTrainer{}
	if _, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Heartbeat: faultHeartbeat, Train: fake.Train}); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

// killedAt runs a child on the study at u with the fault point armed and
// fails unless the point killed it.
func killedAt(t *testing.T, u, point string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envFaultChild+"="+u, fault.Env+"="+point)
	done := make(chan error, 1)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("the child armed at %s did not end within 2 minutes", point)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the child armed at %s ended with %v: the point was never reached\n%s", point, err, stderr.String())
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child armed at %s ended with %v, not killed at the point\n%s", point, err, stderr.String())
	}
}

// TestKillAtEveryFaultPointLosesNoGridPoint: for each fault point, a child
// dies there; then a run in this process (the next run, on the same
// storage) recovers the dead trials and completes the grid, each point
// exactly once. During a requeue the child first dies after storing
// parameters, and a second child dies recovering that trial.
func TestKillAtEveryFaultPointLosesNoGridPoint(t *testing.T) {
	if fault.Armed() != "" {
		t.Fatalf("%s=%s is set for the test process itself", fault.Env, fault.Armed())
	}
	cases := map[string][]string{
		fault.AfterClaim:       {fault.AfterClaim},
		fault.AfterParams:      {fault.AfterParams},
		fault.AfterLastReport:  {fault.AfterLastReport},
		fault.DuringCompletion: {fault.DuringCompletion},
		fault.DuringRequeue:    {fault.AfterParams, fault.DuringRequeue},
	}
	for _, point := range fault.Points {
		t.Run(point, func(t *testing.T) {
			u := teststore.SQLiteURL(t)
			store := teststore.Open(t, u)
			spec := gridSpec(faultStudy)
			spec = prepare(t, store, spec)
			for _, p := range cases[point] {
				killedAt(t, u, p)
			}
			progress := &notes{}
			fake := &fakeTrainer{}
			out, err := Run(context.Background(), store, noData, spec, RunOptions{Workers: 2, Heartbeat: faultHeartbeat, Train: fake.Train, Progress: progress})
			if err != nil || out.Reason != "grid complete" {
				t.Fatalf("the run after the kill: %+v, %v\n%s", out, err, progress.text())
			}
			checkGridOnce(t, store, spec)
			t.Logf("after a kill at %s: %d trials, %d trained again here\n%s", point, len(trialsOf(t, store, spec.Name)), fake.count(), progress.text())
		})
	}
}

// syncBuffer is a bytes.Buffer that a child process writes while the test
// may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
