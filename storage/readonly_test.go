package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"
)

// TestOpenReadOnlySQLite: a read-only handle reads what a writer commits
// while it is open, cannot write, and leaves the database file byte for
// byte as it was.
func TestOpenReadOnlySQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ro.db")
	u := "sqlite:///" + path
	if _, err := OpenReadOnly(ctx, u); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing file: got %v, want ErrNoDatabase", err)
	}
	w, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := w.CreateNewStudy("s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.CreateNewTrial(sid); err != nil {
		t.Fatal(err)
	}
	w.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r, err := OpenReadOnly(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if trials, err := r.GetAllTrials(sid); err != nil || len(trials) != 1 {
		t.Fatalf("read-only handle: %d trials, %v; want 1", len(trials), err)
	}
	if _, err := r.CreateNewStudy("x"); err == nil || !errors.Is(err, ErrReadOnly) && !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("a write through the read-only handle: %v, want a read-only error", err)
	}
	r.Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("the database file changed under a read-only handle")
	}

	// A writer in the meantime: the read-only handle sees its commits.
	r, err = OpenReadOnly(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err = Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.CreateNewTrial(sid); err != nil {
		t.Fatal(err)
	}
	if trials, err := r.GetAllTrials(sid); err != nil || len(trials) != 2 {
		t.Fatalf("after another handle's commit: %d trials, %v; want 2", len(trials), err)
	}
}

func TestOpenReadOnlyRefusesEmptyDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenReadOnly(context.Background(), "sqlite:///"+path)
	if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), "fmtune tune") {
		t.Fatalf("got %v, want ErrNoDatabase saying what to do", err)
	}
}

// TestOpenReadOnlyPostgres: the server refuses a write from a read-only
// handle (SQLSTATE 25006), and nothing is written.
func TestOpenReadOnlyPostgres(t *testing.T) {
	ctx := context.Background()
	u := freshPostgresURL(t)
	w, err := Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sid, err := w.CreateNewStudy("s")
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := w.CreateNewTrial(sid); err != nil {
		t.Fatal(err)
	}
	if trials, err := r.GetAllTrials(sid); err != nil || len(trials) != 1 {
		t.Fatalf("read-only handle: %d trials, %v; want 1", len(trials), err)
	}
	_, err = r.CreateNewStudy("x")
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("a write through the read-only handle: %v, want the server's read-only refusal", err)
	}
	if _, err := w.GetStudyIDFromName("x"); !errors.Is(err, ErrStudyNotFound) {
		t.Fatalf("the refused study exists: %v", err)
	}
	if summaries, err := r.GetAllStudySummaries(); err != nil || len(summaries) != 1 {
		t.Fatalf("summaries %v, %v", summaries, err)
	}
}

// TestVersion: the token changes with every kind of row a viewer shows.
func TestVersion(t *testing.T) {
	ctx := context.Background()
	for name, u := range map[string]string{"sqlite": "sqlite:///" + filepath.Join(t.TempDir(), "v.db"), "postgres": ""} {
		t.Run(name, func(t *testing.T) {
			if u == "" {
				u = freshPostgresURL(t)
			}
			w, err := Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			sid, _ := w.CreateNewStudy("a")
			other, _ := w.CreateNewStudy("b")
			seen := map[string]string{}
			step := func(what string, f func() error) {
				t.Helper()
				if err := f(); err != nil {
					t.Fatal(err)
				}
				v, err := w.Version(sid)
				if err != nil {
					t.Fatal(err)
				}
				if prev, ok := seen[v]; ok {
					t.Fatalf("%s left the version as after %s: %s", what, prev, v)
				}
				seen[v] = what
			}
			var id int
			step("start", func() error { return nil })
			step("a trial", func() (err error) { id, err = w.CreateNewTrial(sid); return err })
			step("a param", func() error {
				return w.SetTrialParam(id, "x", 0, goptuna.CategoricalDistribution{Choices: []string{"a"}})
			})
			step("an epoch", func() error { return w.SetTrialIntermediateValue(id, 1, 0.5) })
			step("a user attr", func() error { return w.SetTrialUserAttr(id, "k", "v") })
			step("a system attr", func() error { return w.SetTrialSystemAttr(id, "k", "v") })
			step("a value", func() error { return w.SetTrialValue(id, 0.5) })
			step("complete", func() error { return w.SetTrialState(id, goptuna.TrialStateComplete) })
			before, _ := w.Version(sid)
			if _, err := w.CreateNewTrial(other); err != nil {
				t.Fatal(err)
			}
			if after, _ := w.Version(sid); after != before {
				t.Fatal("another study's trial changed this study's version")
			}
			all, _ := w.Version(-1)
			if _, err := w.CreateNewTrial(other); err != nil {
				t.Fatal(err)
			}
			if after, _ := w.Version(-1); after == all {
				t.Fatal("a new trial left the storage's version as it was")
			}
		})
	}
}
