package storage

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"
)

// completeTrials adds one COMPLETE trial per value and returns their ids.
func completeTrials(t *testing.T, s *Storage, studyID int, values ...float64) []int {
	t.Helper()
	var ids []int
	for _, v := range values {
		id := res(s.CreateNewTrial(studyID)).must(t)
		ok(t, s.SetTrialValue(id, v))
		ok(t, s.SetTrialState(id, goptuna.TrialStateComplete))
		ids = append(ids, id)
	}
	return ids
}

func modelsTableExists(t *testing.T, s *Storage) bool {
	t.Helper()
	var has bool
	ok(t, s.read(func(ctx context.Context, r runner) (err error) {
		has, err = hasModelsTable(ctx, r)
		return err
	}))
	return has
}

func keptIDs(t *testing.T, s *Storage, studyID int) []int {
	t.Helper()
	var ids []int
	for _, m := range res(s.KeptModels(studyID)).must(t) {
		ids = append(ids, m.TrialID)
	}
	return ids
}

func TestKeepModels(t *testing.T) {
	for _, b := range sqlBackends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			study := newStudy(t, s, goptuna.StudyDirectionMaximize)
			ids := completeTrials(t, s, study, 0.5, 0.9, 0.7, 0.9, 0.6)

			// Readers see no models and do not create the table.
			if got := res(s.KeptModels(study)).must(t); len(got) != 0 {
				t.Fatalf("KeptModels before any write: %v", got)
			}
			if _, err := s.KeptModel(ids[0]); !errors.Is(err, ErrModelNotKept) {
				t.Fatalf("KeptModel before any write: %v, want ErrModelNotKept", err)
			}
			if modelsTableExists(t, s) && b.name == "sqlite" {
				t.Fatal("a reader created the models table")
			}

			// Trial 3 ties trial 1 (0.9) and ranks after it; it pushes out
			// trial 0 (0.5); trial 4 (0.6) does not enter.
			wantKept := []bool{true, true, true, true, false}
			for i, id := range ids {
				v := res(s.GetTrial(id)).must(t).Value
				w := []byte(strings.Repeat(string(rune('a'+i)), 8+i))
				kept := res(s.KeepModel(KeptModel{StudyID: study, TrialID: id, Arch: "mlp", Value: v, Meta: `{"i":1}`, Weights: w}, 3)).must(t)
				if kept != wantKept[i] {
					t.Errorf("trial %d (value %v): kept %v, want %v", i, v, kept, wantKept[i])
				}
			}
			if got, want := keptIDs(t, s, study), []int{ids[1], ids[3], ids[2]}; !slices.Equal(got, want) {
				t.Errorf("kept %v, want %v", got, want)
			}
			m := res(s.KeptModel(ids[3])).must(t)
			if string(m.Weights) != "ddddddddddd" || m.Size != 11 || m.Number != 3 || m.Arch != "mlp" || m.Value != 0.9 || m.Meta != `{"i":1}` || m.Created.IsZero() {
				t.Errorf("KeptModel = %+v", m)
			}
			if _, err := s.KeptModel(ids[0]); !errors.Is(err, ErrModelNotKept) {
				t.Errorf("the pushed-out model: %v, want ErrModelNotKept", err)
			}
			// keep < 1 keeps nothing and deletes nothing.
			if kept := res(s.KeepModel(KeptModel{StudyID: study, TrialID: ids[4], Arch: "mlp", Value: 1, Weights: []byte("x")}, 0)).must(t); kept {
				t.Error("keep 0 kept a model")
			}
			if got := keptIDs(t, s, study); len(got) != 3 {
				t.Errorf("after keep 0: %v", got)
			}
			// A trial of another study is refused.
			other := newStudy(t, s, goptuna.StudyDirectionMaximize)
			if _, err := s.KeepModel(KeptModel{StudyID: other, TrialID: ids[4], Weights: []byte("x")}, 3); err == nil {
				t.Error("kept a model under the wrong study")
			}

			// A minimized study keeps the lowest values.
			low := newStudy(t, s, goptuna.StudyDirectionMinimize)
			lids := completeTrials(t, s, low, 3, 1, 2)
			for i, id := range lids {
				_ = res(s.KeepModel(KeptModel{StudyID: low, TrialID: id, Value: []float64{3, 1, 2}[i], Weights: []byte("w")}, 2)).must(t)
			}
			if got, want := keptIDs(t, s, low), []int{lids[1], lids[2]}; !slices.Equal(got, want) {
				t.Errorf("minimize: kept %v, want %v", got, want)
			}

			// Deleting the study deletes its models.
			ok(t, s.DeleteStudy(study))
			if _, err := s.KeptModel(ids[1]); !errors.Is(err, ErrModelNotKept) {
				t.Errorf("after DeleteStudy: %v, want ErrModelNotKept", err)
			}
			if got := keptIDs(t, s, low); len(got) != 2 {
				t.Errorf("another study's models: %v", got)
			}
		})
	}
}

// TestModelsTableLeavesOptunaAlone: a database with kept models still opens
// in fmtune and in Optuna 3.1, which reads the study unchanged.
func TestModelsTableLeavesOptunaAlone(t *testing.T) {
	requireOptuna(t)
	dir := t.TempDir()
	u := "sqlite:///" + filepath.Join(dir, "fmtune.db")
	s := mustOpen(t, u)
	const name = "fmtune-study"
	writeFmtuneStudy(t, s, name)
	study := res(s.GetStudyIDFromName(name)).must(t)
	best := res(s.GetBestTrial(study)).must(t)
	if !res(s.KeepModel(KeptModel{StudyID: study, TrialID: best.ID, Arch: "mlp", Value: best.Value, Meta: "{}", Weights: make([]byte, 1000)}, 3)).must(t) {
		t.Fatal("the best trial's model was not kept")
	}
	ok(t, s.Close())
	s = mustOpen(t, u) // the schema check accepts the extra table
	want := fmtuneView(t, s, name)
	wantPath := filepath.Join(dir, "want.json")
	ok(t, os.WriteFile(wantPath, res(json.MarshalIndent(want, "", " ")).must(t), 0o644))
	cp := filepath.Join(dir, "optuna31.db")
	optuna31Copy(t, s, cp)
	runOptunaScript(t, "check", "sqlite:///"+cp, name, wantPath)
	if m := res(s.KeptModel(best.ID)).must(t); len(m.Weights) != 1000 {
		t.Errorf("kept model has %d bytes", len(m.Weights))
	}
}

// TestOrphanModelRowsStayHidden: a model row whose trial was deleted with
// foreign keys off (as Optuna deletes a study on SQLite) does not show up
// under the trial that reuses its id.
func TestOrphanModelRowsStayHidden(t *testing.T) {
	s := mustOpen(t, sqliteURL(t))
	study := newStudy(t, s, goptuna.StudyDirectionMaximize)
	ids := completeTrials(t, s, study, 0.9)
	_ = res(s.KeepModel(KeptModel{StudyID: study, TrialID: ids[0], Arch: "mlp", Value: 0.9, Meta: "{}", Weights: []byte("old")}, 3)).must(t)
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	ok(t, err)
	for _, q := range []string{"PRAGMA foreign_keys = OFF", "DELETE FROM trial_values", "DELETE FROM trials", "DELETE FROM study_directions", "DELETE FROM studies"} {
		_, err := conn.ExecContext(ctx, q)
		ok(t, err)
	}
	_, err = conn.ExecContext(ctx, "PRAGMA foreign_keys = ON")
	ok(t, err)
	ok(t, conn.Close())
	again := newStudy(t, s, goptuna.StudyDirectionMaximize)
	reused := completeTrials(t, s, again, 0.5)
	if again != study || reused[0] != ids[0] {
		t.Skipf("SQLite did not reuse the ids (study %d -> %d, trial %d -> %d)", study, again, ids[0], reused[0])
	}
	if got := res(s.KeptModels(again)).must(t); len(got) != 0 {
		t.Errorf("KeptModels shows the orphan: %+v", got)
	}
	if _, err := s.KeptModel(reused[0]); !errors.Is(err, ErrModelNotKept) {
		t.Errorf("KeptModel of the reused trial id: %v, want ErrModelNotKept", err)
	}
	// The next model kept takes the orphan's place.
	_ = res(s.KeepModel(KeptModel{StudyID: again, TrialID: reused[0], Arch: "mlp", Value: 0.5, Meta: "{}", Weights: []byte("new")}, 3)).must(t)
	if m := res(s.KeptModel(reused[0])).must(t); string(m.Weights) != "new" {
		t.Errorf("kept %q", m.Weights)
	}
	var rows int
	ok(t, s.db.QueryRow("SELECT count(*) FROM fmtune_models").Scan(&rows))
	if rows != 1 {
		t.Errorf("%d rows in fmtune_models, want 1", rows)
	}
}

// TestKeepModelDropsOrphans: rows whose trial was deleted without foreign
// keys are deleted by the next KeepModel.
func TestKeepModelDropsOrphans(t *testing.T) {
	s := mustOpen(t, sqliteURL(t))
	a := newStudy(t, s, goptuna.StudyDirectionMaximize)
	b := newStudy(t, s, goptuna.StudyDirectionMaximize)
	ia, ib := completeTrials(t, s, a, 0.9), completeTrials(t, s, b, 0.8)
	_ = res(s.KeepModel(KeptModel{StudyID: a, TrialID: ia[0], Value: 0.9, Meta: "{}", Weights: []byte("a")}, 3)).must(t)
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	ok(t, err)
	for _, q := range []string{"PRAGMA foreign_keys = OFF", "DELETE FROM trial_values WHERE trial_id = " + strconv.Itoa(ia[0]), "DELETE FROM trials WHERE trial_id = " + strconv.Itoa(ia[0]), "PRAGMA foreign_keys = ON"} {
		_, err := conn.ExecContext(ctx, q)
		ok(t, err)
	}
	ok(t, conn.Close())
	_ = res(s.KeepModel(KeptModel{StudyID: b, TrialID: ib[0], Value: 0.8, Meta: "{}", Weights: []byte("b")}, 3)).must(t)
	var rows int
	ok(t, s.db.QueryRow("SELECT count(*) FROM fmtune_models").Scan(&rows))
	if rows != 1 {
		t.Errorf("%d rows in fmtune_models, want 1 (the orphan deleted)", rows)
	}
}
