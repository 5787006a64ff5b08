package storage

import (
	"bytes"
	"testing"
	"time"

	"github.com/c-bata/goptuna"
)

// checkpointOf loads trial id's checkpoint.
func checkpointOf(t *testing.T, s *Storage, id int) (int, []byte) {
	t.Helper()
	epoch, state, err := s.LoadCheckpoint(id)
	if err != nil {
		t.Fatalf("LoadCheckpoint(%d): %v", id, err)
	}
	return epoch, state
}

// TestCheckpointLifecycle: a checkpoint is replaced each epoch, moves to the
// retry when its trial is failed and re-queued (by FailTrial or by stale
// recovery), and is deleted when its trial ends any other way.
func TestCheckpointLifecycle(t *testing.T) {
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			id := newStudy(t, s, goptuna.StudyDirectionMaximize)
			a := res(s.CreateNewTrial(id)).must(t)
			if e, st := checkpointOf(t, s, a); e != 0 || st != nil {
				t.Fatalf("a new trial has checkpoint epoch %d (%d bytes)", e, len(st))
			}
			big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 700_000) // 2.8 MB, like a cnn with Adam
			ok(t, s.SaveCheckpoint(a, 1, []byte("epoch one")))
			ok(t, s.SaveCheckpoint(a, 2, big))
			if e, st := checkpointOf(t, s, a); e != 2 || !bytes.Equal(st, big) {
				t.Fatalf("checkpoint epoch %d, %d bytes; want epoch 2, %d bytes", e, len(st), len(big))
			}
			if st := res(s.StudyCheckpoints(id)).must(t); st.Count != 1 || st.Bytes != int64(len(big)) {
				t.Fatalf("StudyCheckpoints = %+v", st)
			}

			// Ctrl-C: FAIL and re-queue moves it to the retry.
			retry := goptuna.FrozenTrial{State: goptuna.TrialStateWaiting, SystemAttrs: map[string]string{"retry_of": "0"}}
			b1 := res(s.FailTrial(a, "interrupted", "interrupted", &retry)).must(t)
			if e, _ := checkpointOf(t, s, a); e != 0 {
				t.Fatal("the failed trial kept its checkpoint")
			}
			if e, st := checkpointOf(t, s, b1); e != 2 || !bytes.Equal(st, big) {
				t.Fatalf("the retry's checkpoint: epoch %d, %d bytes", e, len(st))
			}
			// A finished trial cannot write one.
			if err := s.SaveCheckpoint(a, 3, []byte("x")); err != goptuna.ErrTrialCannotBeUpdated { //nolint:errorlint // must stay unwrapped
				t.Fatalf("SaveCheckpoint of a FAIL trial: %v", err)
			}

			// A stale heartbeat: the retry of the retry gets it.
			ok(t, s.SetTrialState(b1, goptuna.TrialStateRunning))
			ok(t, s.RecordHeartbeat(b1))
			ok(t, s.SaveCheckpoint(b1, 3, []byte("epoch three")))
			ageHeartbeat(t, s, b1, time.Hour)
			res(s.RecoverStaleTrials(id, time.Minute, func(goptuna.FrozenTrial) (goptuna.FrozenTrial, bool) { return retry, true })).must(t)
			all := res(s.GetAllTrials(id)).must(t)
			c := all[len(all)-1].ID
			if e, st := checkpointOf(t, s, c); e != 3 || string(st) != "epoch three" {
				t.Fatalf("after stale recovery the retry has epoch %d %q", e, st)
			}

			// Ending any other way deletes it.
			ok(t, s.SetTrialState(c, goptuna.TrialStateRunning))
			ok(t, s.SaveCheckpoint(c, 4, []byte("four")))
			ok(t, s.SetTrialValue(c, 0.5))
			ok(t, s.SetTrialState(c, goptuna.TrialStateComplete))
			d := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SaveCheckpoint(d, 1, []byte("d")))
			res(s.FailTrial(d, "diverged", "", nil)).must(t)
			e := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SaveCheckpoint(e, 1, []byte("e")))
			ok(t, s.RecordHeartbeat(e))
			ageHeartbeat(t, s, e, time.Hour)
			res(s.RecoverStaleTrials(id, time.Minute, func(goptuna.FrozenTrial) (goptuna.FrozenTrial, bool) { return goptuna.FrozenTrial{}, false })).must(t)
			if st := res(s.StudyCheckpoints(id)).must(t); st.Count != 0 {
				t.Fatalf("%d checkpoints left after every trial ended", st.Count)
			}

			// Deleting the study deletes its checkpoints.
			f := res(s.CreateNewTrial(id)).must(t)
			ok(t, s.SaveCheckpoint(f, 1, []byte("f")))
			ok(t, s.DeleteStudy(id))
			if e, _ := checkpointOf(t, s, f); e != 0 {
				t.Fatal("a deleted study's checkpoint is still there")
			}
		})
	}
}

// TestReadingCheckpointsCreatesNoTable: a database whose checkpoints
// nobody wrote stays without the table, whatever is read or finished.
func TestReadingCheckpointsCreatesNoTable(t *testing.T) {
	s := mustOpen(t, sqliteURL(t))
	id := newStudy(t, s, goptuna.StudyDirectionMaximize)
	tid := res(s.CreateNewTrial(id)).must(t)
	checkpointOf(t, s, tid)
	res(s.StudyCheckpoints(id)).must(t)
	ok(t, s.SetTrialValue(tid, 1))
	ok(t, s.SetTrialState(tid, goptuna.TrialStateComplete))
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", CheckpointTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table %s created by reading", CheckpointTable)
	}
}
