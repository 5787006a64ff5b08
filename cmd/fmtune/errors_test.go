package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/testenv"
)

// Every bad input in docs/errors.md is a case here: the command must exit
// with the documented code and message, print no Go panic trace, and leave
// every file as it was (no new database, no half-written study).
//
// The table in docs/errors.md is generated from these cases and the messages
// fmtune prints:
//
//	FMTUNE_UPDATE_ERRORS_DOC=1 go test -run TestBadInput ./cmd/fmtune
//
// Without that variable the test checks that the document has a row for
// every case with its exit code.

const errorsDoc = "../../docs/errors.md"

// badInput is one row of docs/errors.md.
type badInput struct {
	group string // section of the document
	what  string // what is wrong, as the row's first cell
	// args prepares the case in dir (the working directory, initially
	// empty) and returns fmtune's arguments.
	args func(t *testing.T, dir string) []string
	code int
	want string // part of the message
	pg   bool   // needs the PostgreSQL server in $FMTUNE_TEST_POSTGRES
}

// fixed returns args that need no preparation.
func fixed(args ...string) func(*testing.T, string) []string {
	return func(*testing.T, string) []string { return args }
}

// tinyData copies the small IDX files of data/testdata/tiny-raw (8 training
// and 4 test images) to dir/data and applies change to them, if any.
func tinyData(t *testing.T, dir string, change func(dataDir string)) string {
	t.Helper()
	src := "../../data/testdata/tiny-raw"
	dst := filepath.Join(dir, "data")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if change != nil {
		change(dst)
	}
	return dst
}

// editFile rewrites one file of a data directory.
func editFile(t *testing.T, path string, edit func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// corruptIDX is a case of a corrupted data file: the tune command on the
// tiny data set with file edited.
func corruptIDX(file string, edit func(t *testing.T, path string)) func(*testing.T, string) []string {
	return func(t *testing.T, dir string) []string {
		d := tinyData(t, dir, func(d string) { edit(t, filepath.Join(d, file)) })
		return []string{"tune", "--study", "s", "--data", d, "--val", "2"}
	}
}

// patch returns an edit that sets bytes at off.
func patch(off int, bs ...byte) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		editFile(t, path, func(b []byte) []byte { copy(b[off:], bs); return b })
	}
}

// gzipped replaces path by path.gz holding transform(gzip of its content).
func gzipped(transform func([]byte) []byte) func(*testing.T, string) {
	return func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if err := os.WriteFile(path+".gz", transform(buf.Bytes()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// withStudy creates dir/fmtune.db holding one fmtune study called "s", and
// returns args with the tiny data set.
func withStudy(args ...string) func(*testing.T, string) []string {
	return func(t *testing.T, dir string) []string {
		makeStudyDB(t, filepath.Join(dir, "fmtune.db"))
		return args
	}
}

func makeStudyDB(t *testing.T, path string) {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite:///"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	spec := study.DefaultSpec()
	spec.Name = "s"
	if _, err := study.Prepare(s, spec); err != nil {
		t.Fatal(err)
	}
}

// damagePage overwrites the first page of table's b-tree in the SQLite file
// at path with garbage, as a failing disk might.
func damagePage(t *testing.T, path, table string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var root, size int
	_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	if err == nil {
		err = db.QueryRow("SELECT rootpage FROM sqlite_master WHERE name = ?", table).Scan(&root)
	}
	if err == nil {
		err = db.QueryRow("PRAGMA page_size").Scan(&size)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	editFile(t, path, func(b []byte) []byte {
		for i := (root - 1) * size; i < root*size; i++ {
			b[i] = 0xa5
		}
		return b
	})
}

// sqliteFile writes a SQLite database made by the statements to dir/name.
func sqliteFile(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

// pgURL is the PostgreSQL server of $FMTUNE_TEST_POSTGRES with another user,
// database or port.
func pgURL(t *testing.T, user, db string, port int) string {
	t.Helper()
	u, err := url.Parse(os.Getenv("FMTUNE_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		u.User = url.User(user)
	}
	if db != "" {
		u.Path = "/" + db
	}
	if port > 0 {
		u.Host = fmt.Sprintf("%s:%d", u.Hostname(), port)
	}
	return u.String()
}

// closedPort is a port nothing listens on: 1 (tcpmux) is never served here.
func closedPort(t *testing.T) int {
	t.Helper()
	if c, err := net.Dial("tcp", "127.0.0.1:1"); err == nil {
		c.Close()
		testenv.Skip(t, "closed-port", "something listens on 127.0.0.1:1")
	}
	return 1
}

func writeText(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

var badInputs = []badInput{
	// Data.
	{group: "Data", what: "`--data` names a directory that does not exist",
		args: fixed("tune", "--study", "s", "--data", "no/such/dir"), code: 1, want: "does not exist; point it at a directory with the four Fashion-MNIST IDX files (.gz or not), or get them with `apt-get install dataset-fashion-mnist` or `fmtune data download`"},
	{group: "Data", what: "the data directory lacks some of the four files",
		args: func(t *testing.T, dir string) []string {
			d := tinyData(t, dir, func(d string) { _ = os.Remove(filepath.Join(d, "t10k-labels-idx1-ubyte")) })
			return []string{"tune", "--study", "s", "--data", d}
		}, code: 1, want: "lacks t10k-labels-idx1-ubyte"},
	{group: "Data", what: "IDX file with a wrong magic number",
		args: corruptIDX("train-images-idx3-ubyte", patch(2, 0x09)), code: 1, want: "wrong magic number"},
	{group: "Data", what: "IDX file with a wrong number of dimensions",
		args: corruptIDX("train-images-idx3-ubyte", patch(3, 0x02)), code: 1, want: "wrong number of dimensions"},
	{group: "Data", what: "images that are not 28x28",
		args: corruptIDX("train-images-idx3-ubyte", patch(8, 0, 0, 0, 56, 0, 0, 0, 14)), code: 1, want: "not 28x28"},
	{group: "Data", what: "IDX file cut short",
		args: corruptIDX("train-images-idx3-ubyte", func(t *testing.T, p string) {
			editFile(t, p, func(b []byte) []byte { return b[:len(b)-100] })
		}), code: 1, want: "truncated data"},
	{group: "Data", what: "IDX file with bytes after its end",
		args: corruptIDX("t10k-images-idx3-ubyte", func(t *testing.T, p string) {
			editFile(t, p, func(b []byte) []byte { return append(b, 1, 2, 3) })
		}), code: 1, want: "unexpected data after the end"},
	{group: "Data", what: "IDX header claiming more than 1 GiB",
		args: corruptIDX("train-images-idx3-ubyte", patch(4, 0xff, 0xff, 0xff, 0xff)), code: 1, want: "file too large"},
	{group: "Data", what: "fewer labels than images",
		args: corruptIDX("train-labels-idx1-ubyte", func(t *testing.T, p string) {
			editFile(t, p, func(b []byte) []byte { b[7] = 7; return b[:len(b)-1] })
		}), code: 1, want: "label count differs from image count"},
	{group: "Data", what: "a label outside 0-9",
		args: corruptIDX("train-labels-idx1-ubyte", patch(9, 10)), code: 1, want: "label outside 0-9"},
	{group: "Data", what: "a `.gz` file that is not gzip",
		args: corruptIDX("t10k-labels-idx1-ubyte", gzipped(func([]byte) []byte { return []byte("not gzip at all") })), code: 1, want: "bad gzip data"},
	{group: "Data", what: "a `.gz` file cut short",
		args: corruptIDX("train-images-idx3-ubyte", gzipped(func(b []byte) []byte { return b[:len(b)/2] })), code: 1, want: "truncated"},

	// Storage.
	{group: "Storage", what: "storage URL with an unknown scheme",
		args: fixed("tune", "--study", "s", "--storage", "mysql://u:secret@db/fmtune"), code: 2, want: `unsupported scheme "mysql"`},
	{group: "Storage", what: "storage URL without a scheme",
		args: fixed("studies", "--storage", "fmtune.db"), code: 2, want: "has no scheme"},
	{group: "Storage", what: "SQLite URL with two slashes",
		args: fixed("studies", "--storage", "sqlite://fmtune.db"), code: 2, want: "three slashes"},
	{group: "Storage", what: "in-memory SQLite",
		args: fixed("studies", "--storage", "sqlite:///:memory:"), code: 2, want: "in-memory"},
	{group: "Storage", what: "PostgreSQL URL without a database",
		args: fixed("studies", "--storage", "postgresql://u@db:5432/"), code: 2, want: "names no database"},
	{group: "Storage", what: "SQLite path in a directory that does not exist",
		args: func(t *testing.T, dir string) []string {
			return []string{"tune", "--study", "s", "--data", tinyData(t, dir, nil), "--val", "2",
				"--storage", "sqlite:///" + filepath.Join(dir, "no/such/dir/fmtune.db")}
		}, code: 1, want: "does not exist; create it"},
	{group: "Storage", what: "SQLite path that is a directory",
		args: func(t *testing.T, dir string) []string {
			return []string{"tune", "--study", "s", "--data", tinyData(t, dir, nil), "--val", "2", "--storage", "sqlite:///" + dir}
		}, code: 1, want: "is a directory"},
	{group: "Storage", what: "reading a SQLite file that does not exist",
		args: func(t *testing.T, dir string) []string {
			return []string{"best", "s", "--storage", "sqlite:///" + filepath.Join(dir, "typo.db")}
		}, code: 1, want: "nothing has been stored there yet"},
	{group: "Storage", what: "`dashboard` on a SQLite file that does not exist",
		args: fixed("dashboard", "--addr", "127.0.0.1:0"), code: 1, want: "nothing has been stored there yet"},
	{group: "Storage", what: "`dashboard` on an empty SQLite file",
		args: func(t *testing.T, dir string) []string {
			writeText(t, filepath.Join(dir, "fmtune.db"), "")
			return []string{"dashboard", "--addr", "127.0.0.1:0"}
		}, code: 1, want: "holds no tables"},
	{group: "Storage", what: "a file that is not a SQLite database",
		args: func(t *testing.T, dir string) []string {
			writeText(t, filepath.Join(dir, "fmtune.db"), strings.Repeat("this is not a database\n", 100))
			return []string{"studies"}
		}, code: 1, want: "is not a SQLite database"},
	{group: "Storage", what: "a SQLite database cut short",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "fmtune.db")
			makeStudyDB(t, p)
			editFile(t, p, func(b []byte) []byte { return b[:8192] })
			return []string{"trials", "s"}
		}, code: 1, want: "malformed"},
	{group: "Storage", what: "a SQLite database damaged in the middle",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "fmtune.db")
			makeStudyDB(t, p)
			damagePage(t, p, "studies")
			return []string{"trials", "s"}
		}, code: 1, want: "the database file is damaged (database disk image is malformed): part of \"fmtune.db\" cannot be read; copy out what is left with `sqlite3 fmtune.db .recover | sqlite3 recovered.db`"},
	{group: "Storage", what: "a SQLite database of another program",
		args: func(t *testing.T, dir string) []string {
			sqliteFile(t, filepath.Join(dir, "fmtune.db"), "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)", "INSERT INTO users (name) VALUES ('ann')")
			return []string{"tune", "--study", "s", "--data", tinyData(t, dir, nil), "--val", "2"}
		}, code: 1, want: "is not an Optuna study"},
	{group: "Storage", what: "an Optuna database of a newer schema",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "fmtune.db")
			makeStudyDB(t, p)
			sqliteFile(t, p, "UPDATE alembic_version SET version_num = 'v4.2.0.a'")
			return []string{"resume", "s"}
		}, code: 1, want: "unknown or newer"},
	{group: "Storage", what: "an Optuna database of an older schema (Optuna 3.1)",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "fmtune.db")
			makeStudyDB(t, p)
			sqliteFile(t, p, "UPDATE alembic_version SET version_num = 'v3.0.0.d'")
			return []string{"studies"}
		}, code: 1, want: "optuna storage upgrade"},
	{group: "Storage", what: "PostgreSQL user that does not exist (wrong credentials)", pg: true,
		args: func(t *testing.T, dir string) []string {
			return []string{"studies", "--storage", pgURL(t, "nobody", "", 0)}
		}, code: 1, want: "authentication failed for user \"nobody\""},
	{group: "Storage", what: "PostgreSQL database that does not exist", pg: true,
		args: func(t *testing.T, dir string) []string {
			return []string{"studies", "--storage", pgURL(t, "", "no_such_db", 0)}
		}, code: 1, want: "database \"no_such_db\" does not exist"},
	{group: "Storage", what: "nothing listening at the PostgreSQL address", pg: true,
		args: func(t *testing.T, dir string) []string {
			return []string{"studies", "--storage", pgURL(t, "", "", closedPort(t))}
		}, code: 1, want: "nothing accepts connections"},

	// Studies.
	{group: "Studies", what: "`resume` of a study that does not exist",
		args: withStudy("resume", "nope"), code: 1, want: `"nope" (studies in this storage: s)`},
	{group: "Studies", what: "`worker` for a study that does not exist",
		args: withStudy("worker", "--study", "nope"), code: 1, want: `study not found: "nope"`},
	{group: "Studies", what: "`best` of a study that does not exist",
		args: withStudy("best", "nope"), code: 1, want: `study not found: "nope"`},
	{group: "Studies", what: "`resume` of a study written by Optuna, not fmtune",
		args: func(t *testing.T, dir string) []string {
			s, err := storage.Open(context.Background(), "sqlite:///"+filepath.Join(dir, "fmtune.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.CreateNewStudy("optuna-made"); err != nil {
				t.Fatal(err)
			}
			return []string{"resume", "optuna-made"}
		}, code: 1, want: "was not created by fmtune"},
	{group: "Studies", what: "`tune` of an existing study with another search space",
		args: func(t *testing.T, dir string) []string {
			makeStudyDB(t, filepath.Join(dir, "fmtune.db"))
			return []string{"tune", "--study", "s", "--optimizers", "adam", "--data", tinyData(t, dir, nil), "--val", "2"}
		}, code: 2, want: "exists with a different spec"},

	// Flags.
	{group: "Flags", what: "grid sampler over a range",
		args: fixed("tune", "--study", "s", "--sampler", "grid", "--lr", "1e-4:0.3:log"), code: 2, want: "grid"},
	{group: "Flags", what: "`--workers 0`", args: fixed("tune", "--study", "s", "--workers", "0"), code: 2, want: "--workers must be at least 1"},
	{group: "Flags", what: "`--threads -1`", args: fixed("tune", "--study", "s", "--threads", "-1"), code: 2, want: "--threads must not be negative"},
	{group: "Flags", what: "`train --threads -1`", args: fixed("train", "--threads", "-1"), code: 2, want: "threads -1 must be >= 0"},
	{group: "Flags", what: "`--epochs 0`", args: fixed("tune", "--study", "s", "--epochs", "0"), code: 2, want: "--epochs must be at least 1"},
	{group: "Flags", what: "a learning rate of 0", args: fixed("tune", "--study", "s", "--lr", "0,0.1"), code: 2, want: "lr"},
	{group: "Flags", what: "a negative learning-rate range", args: fixed("tune", "--study", "s", "--lr", "-1:0.1"), code: 2, want: "lr"},
	{group: "Flags", what: "a range whose low end is above its high end", args: fixed("tune", "--study", "s", "--lr", "0.3:1e-4"), code: 2, want: "lr"},
	{group: "Flags", what: "an empty list of optimizers", args: fixed("tune", "--study", "s", "--optimizers", ""), code: 2, want: "optimizer"},
	{group: "Flags", what: "an empty list of learning rates", args: fixed("tune", "--study", "s", "--lr", ""), code: 2, want: "lr"},
	{group: "Flags", what: "an empty list of batch sizes", args: fixed("tune", "--study", "s", "--batch", ""), code: 2, want: "batch"},
	{group: "Flags", what: "a batch size of 0", args: fixed("tune", "--study", "s", "--batch", "0,128"), code: 2, want: "batch"},
	{group: "Flags", what: "an unknown optimizer", args: fixed("tune", "--study", "s", "--optimizers", "sgd,adamw"), code: 2, want: "adamw"},
	{group: "Flags", what: "an unknown architecture", args: fixed("tune", "--study", "s", "--arch", "resnet"), code: 2, want: "resnet"},
	{group: "Flags", what: "`--trials -1`", args: fixed("tune", "--study", "s", "--trials", "-1"), code: 2, want: "--trials must be 0 (the default target: the number of combinations, or 50 when lr or batch is a range) or more (got -1)"},
	{group: "Flags", what: "`--val 0`", args: fixed("tune", "--study", "s", "--val", "0"), code: 2, want: "--val"},
	{group: "Flags", what: "`--dead-after -1`", args: fixed("tune", "--study", "s", "--dead-after", "-1"), code: 2, want: "--dead-after"},
	{group: "Flags", what: "`--repeats 1000`", args: fixed("tune", "--study", "s", "--repeats", "1000"), code: 2, want: "--repeats"},
	{group: "Flags", what: "`--timeout -1s`", args: fixed("tune", "--study", "s", "--timeout", "-1s"), code: 2, want: "--timeout"},
	{group: "Flags", what: "`--storage-patience 0`", args: fixed("worker", "--study", "s", "--storage-patience", "0"), code: 2, want: "--storage-patience"},
	{group: "Flags", what: "`enqueue --epochs 0`", args: fixed("enqueue", "s", "--lr", "0.1", "--optimizer", "sgd", "--batch", "128", "--epochs", "0"), code: 2, want: "--epochs must be at least 1 (got 0); leave it out for the study's"},
	{group: "Flags", what: "`tune` without `--study`", args: fixed("tune"), code: 2, want: "--study"},
	{group: "Flags", what: "`worker` without `--study`", args: fixed("worker"), code: 2, want: "--study"},
	{group: "Flags", what: "a flag that does not exist", args: fixed("tune", "--study", "s", "--colour"), code: 2, want: "unknown flag --colour"},
	{group: "Flags", what: "a misspelt flag", args: fixed("tune", "--study", "s", "--epoch", "3"), code: 2, want: "unknown flag --epoch; did you mean --epochs?"},
	{group: "Flags", what: "a command that does not exist", args: fixed("tunee"), code: 2, want: `unknown command "tunee" for "fmtune"; did you mean "tune"?`},
	{group: "Flags", what: "a learning rate that is not a number (`train`)", args: fixed("train", "--lr", "abc"), code: 2, want: `--lr "abc": "abc" is not a number`},
	{group: "Flags", what: "a learning rate that is not a number (`tune`)", args: fixed("tune", "--study", "s", "--lr", "abc"), code: 2, want: `--lr "abc": "abc" is not a number`},
	{group: "Flags", what: "a whole number that is not one", args: fixed("tune", "--study", "s", "--epochs", "2.5"), code: 2, want: `--epochs "2.5": "2.5" is not a whole number`},
	{group: "Flags", what: "a study name too many", args: fixed("best", "loop", "extra"), code: 2, want: "fmtune best takes one argument, the study name; got 2"},
	{group: "Flags", what: "`dashboard --addr` without a port", args: fixed("dashboard", "--addr", "127.0.0.1"), code: 2, want: "give host:port"},
	{group: "Flags", what: "`dashboard --addr` with a port that is not one", args: fixed("dashboard", "--addr", "127.0.0.1:http8"), code: 2, want: "is not a port"},
	{group: "Flags", what: "`dashboard` with an argument", args: fixed("dashboard", "demo"), code: 2, want: "takes no arguments"},
	{group: "Flags", what: "`dashboard --addr` on a port in use",
		args: func(t *testing.T, dir string) []string {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return []string{"dashboard", "--addr", ln.Addr().String()}
		}, code: 1, want: "the address is in use"},

	// Files.
	{group: "Files", what: "a plan file with an unknown key (`fmtune plan run`)",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "plan.yaml")
			writeText(t, p, "storage: sqlite:///plan.db\nstudies:\n  a:\n    arch: mlp\n    epoch: 3\nsteps:\n  - tune: {study: a}\n")
			return []string{"plan", "run", p}
		}, code: 2, want: `unknown key "epoch" (valid: arch, lr,`},
	{group: "Files", what: "a spec file with an unknown key (`fmtune tune -f`)",
		args: func(t *testing.T, dir string) []string {
			p := filepath.Join(dir, "study.yaml")
			writeText(t, p, "study: s\narch: mlp\nlearning_rate: 0.1\n")
			return []string{"tune", "-f", p}
		}, code: 2, want: `unknown key "learning_rate" (valid: study, arch,`},
	{group: "Files", what: "`report --out` in a directory that does not exist",
		args: func(t *testing.T, dir string) []string {
			makeStudyDB(t, filepath.Join(dir, "fmtune.db"))
			return []string{"report", "s", "--out", filepath.Join(dir, "no", "such", "r.html")}
		}, code: 1, want: `no/such/r.html": the directory`},
	{group: "Files", what: "a spec file that does not exist",
		args: fixed("tune", "-f", "no-such-file.yaml"), code: 1, want: "no such file"},

	// Model files (keep.go, evaluate.go, predict.go).
	{group: "Model files", what: "`evaluate` of a file that does not exist",
		args: fixed("evaluate", "no-such.safetensors"), code: 1, want: "no such file"},
	{group: "Model files", what: "`evaluate` of a file that is not safetensors",
		args: func(t *testing.T, dir string) []string {
			writeText(t, filepath.Join(dir, "notes.safetensors"), "just some notes, not a model\n")
			return []string{"evaluate", "notes.safetensors"}
		}, code: 1, want: "not a safetensors file, or truncated"},
	{group: "Model files", what: "`evaluate` of a model file cut short",
		args: modelFile("mlp", func(b []byte) []byte { return b[:len(b)-1000] }, "evaluate"), code: 1, want: "(truncated file?)"},
	{group: "Model files", what: "`evaluate` of a safetensors file another program wrote",
		args: func(t *testing.T, dir string) []string {
			h := `{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
			b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
			b = append(append(b, h...), make([]byte, 8)...)
			if err := os.WriteFile(filepath.Join(dir, "other.safetensors"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"evaluate", "other.safetensors"}
		}, code: 1, want: "the file was not written by fmtune"},
	{group: "Model files", what: "`evaluate` of a model whose tensors do not fit its architecture",
		args: modelFile("cnn", relabel("mlp"), "evaluate"), code: 1, want: "the weights do not fit the architecture"},
	{group: "Model files", what: "`predict` with a label file instead of images",
		args: func(t *testing.T, dir string) []string {
			args := modelFile("mlp", nil, "predict")(t, dir)
			return append(args, filepath.Join(tinyData(t, dir, nil), "t10k-labels-idx1-ubyte"))
		}, code: 1, want: "wrong number of dimensions"},
	{group: "Model files", what: "`best --save` of a trial whose model was not kept",
		args: func(t *testing.T, dir string) []string {
			makeStudyDB(t, filepath.Join(dir, "fmtune.db"))
			s, err := storage.Open(context.Background(), "sqlite:///"+filepath.Join(dir, "fmtune.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sid, _ := s.GetStudyIDFromName("s")
			id, err := s.CreateNewTrial(sid)
			if err == nil {
				err = s.SetTrialValue(id, 0.8)
			}
			if err == nil {
				err = s.SetTrialState(id, goptuna.TrialStateComplete)
			}
			if err != nil {
				t.Fatal(err)
			}
			return []string{"best", "s", "--save", "best.safetensors"}
		}, code: 1, want: "no model kept for this trial"},
	{group: "Model files", what: "`trials --out` without `--save-model`",
		args: withStudy("trials", "s", "--out", "m.safetensors"), code: 2, want: "add --save-model"},
	{group: "Model files", what: "`--keep-models -1`",
		args: fixed("tune", "--study", "s", "--keep-models", "-1"), code: 2, want: "--keep-models must be 0 (keep none) or more"},
	{group: "Model files", what: "`evaluate` without a file",
		args: fixed("evaluate"), code: 2, want: "needs the model file"},
}

// modelFile writes an untrained model of arch to dir/model.safetensors,
// changed by edit (if any), and returns the command's args with it.
func modelFile(arch string, edit func([]byte) []byte, command string) func(*testing.T, string) []string {
	return func(t *testing.T, dir string) []string {
		m, err := models.NewModel(arch, 1)
		if err != nil {
			t.Fatal(err)
		}
		b := models.EncodeSafetensors(m, nil)
		if edit != nil {
			b = edit(b)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return []string{command, "model.safetensors"}
	}
}

// relabel changes the architecture a model file names (its JSON header
// rewritten, the tensors kept).
func relabel(arch string) func([]byte) []byte {
	return func(b []byte) []byte {
		n := binary.LittleEndian.Uint64(b)
		h := strings.Replace(string(b[8:8+n]), `"arch":"`, `"arch":"`+arch+`","was":"`, 1)
		out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(out, h...), b[8+n:]...)
	}
}

// TestBadInput runs every bad input of docs/errors.md.
func TestBadInput(t *testing.T) {
	pg := os.Getenv("FMTUNE_TEST_POSTGRES")
	rows := map[string]string{}
	for _, c := range badInputs {
		t.Run(c.what, func(t *testing.T) {
			if c.pg && pg == "" {
				testenv.Skip(t, "postgres", "needs PostgreSQL: set FMTUNE_TEST_POSTGRES (bash storage/testdata/pg-throwaway.sh start)")
			}
			dir := t.TempDir()
			args := c.args(t, dir)
			before := fileHashes(t, dir)
			_, errOut, code := runFmtune(t, dir, args...)
			noPanic(t, strings.Join(args, " "), errOut)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("fmtune %s: exit %d, stderr:\n%s\nwant exit %d and %q", strings.Join(args, " "), code, errOut, c.code, c.want)
			}
			if after := fileHashes(t, dir); after != before {
				t.Fatalf("fmtune %s changed the files:\nbefore %s\nafter  %s", strings.Join(args, " "), before, after)
			}
			var lines []string
			for _, l := range strings.Split(errOut, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					lines = append(lines, l)
				}
			}
			rows[c.what] = docRow(c, args, strings.Join(lines, " "), dir, pg)
		})
	}
	if os.Getenv("FMTUNE_UPDATE_ERRORS_DOC") == "1" {
		if pg == "" {
			t.Fatal("set FMTUNE_TEST_POSTGRES to update docs/errors.md: its PostgreSQL rows need the server")
		}
		writeErrorsDoc(t, rows)
		return
	}
	doc, err := os.ReadFile(errorsDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(doc), "\n") {
		lines[l] = true
	}
	for _, c := range badInputs {
		row, ran := rows[c.what]
		switch {
		case !hasRow(string(doc), c):
			t.Errorf("docs/errors.md has no row for %q with exit code %d; regenerate it: FMTUNE_UPDATE_ERRORS_DOC=1 go test -run TestBadInput ./cmd/fmtune", c.what, c.code)
		case ran && !lines[row]:
			// The whole row: command, message and exit code as printed now.
			t.Errorf("docs/errors.md's row for %q differs from what fmtune prints:\n%s\nregenerate it: FMTUNE_UPDATE_ERRORS_DOC=1 go test -run TestBadInput ./cmd/fmtune", c.what, row)
		}
	}
}

// hasRow reports whether doc has the case's row with its exit code.
func hasRow(doc string, c badInput) bool {
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| "+cell(c.what)+" |") && strings.HasSuffix(line, "| "+strconv.Itoa(c.code)+" |") {
			return true
		}
	}
	return false
}

// docRow is the case's row: what, command, message, exit code; paths and
// server addresses replaced by placeholders.
var ephemeralPort = regexp.MustCompile(`HOST:[0-9]{5}\b`)

func docRow(c badInput, args []string, msg, dir, pg string) string {
	clean := func(s string) string {
		s = strings.ReplaceAll(s, dir, "DIR")
		if u, err := url.Parse(pg); err == nil && u.Host != "" {
			s = strings.ReplaceAll(s, u.Hostname(), "HOST")
			if u.Port() != "" {
				s = strings.ReplaceAll(s, u.Port(), "PORT")
			}
		}
		// The loopback address (the dashboard's cases use it, with or
		// without a PostgreSQL server), and a free port picked for a case
		// (the dashboard's port in use).
		s = strings.ReplaceAll(s, "127.0.0.1", "HOST")
		return ephemeralPort.ReplaceAllString(s, "HOST:PORT")
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " *") {
			a = strconv.Quote(a)
		}
		quoted[i] = a
	}
	cmd := clean("fmtune " + strings.Join(quoted, " "))
	return fmt.Sprintf("| %s | `%s` | %s | %d |", cell(c.what), cmd, cell(codeSpan(clean(msg))), c.code)
}

// cell escapes a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// codeSpan writes s as inline code, with enough backticks around it.
func codeSpan(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

func writeErrorsDoc(t *testing.T, rows map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`# What each bad input gets

Every row is a case of ` + "`TestBadInput`" + ` (cmd/fmtune/errors_test.go), which runs the
command as a real process and checks the exit code, the message, that no Go panic
trace is printed and that no file changed: no database is created, no study is half
written, and a file that is refused (corrupt, foreign, of another Optuna schema) is left
byte for byte as it was. The table is generated from those runs:

    FMTUNE_UPDATE_ERRORS_DOC=1 FMTUNE_TEST_POSTGRES=... go test -run TestBadInput ./cmd/fmtune

Exit codes: 2 for a mistake in the command line or a spec/plan file (nothing was
done), 1 for a failure (data, storage, study), 130 for Ctrl-C. ` + "`DIR`" + ` stands for the
working directory of the case and ` + "`HOST:PORT`" + ` for the PostgreSQL server's address. The
PostgreSQL rows run only where ` + "`$FMTUNE_TEST_POSTGRES`" + ` names a server (CI starts one;
that server trusts every user, so a wrong password cannot be shown, only a wrong user
name, which PostgreSQL reports with the same code).

Faults while a study runs are tested in cmd/fmtune/faults_test.go and
storage/crash_test.go; what they do is described at the end.
`)
	group := ""
	for _, c := range badInputs {
		if c.group != group {
			group = c.group
			fmt.Fprintf(&b, "\n## %s\n\n| Input | Command | What fmtune says (stderr) | Exit |\n|---|---|---|---|\n", group)
		}
		row, ok := rows[c.what]
		if !ok {
			t.Fatalf("no row for %q: run all cases", c.what)
		}
		b.WriteString(row + "\n")
	}
	b.WriteString(faultsSection)
	if err := os.WriteFile(errorsDoc, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

const faultsSection = `
## Faults during a study

| Fault | What happens | Exit | Test |
|---|---|---|---|
| ` + "`kill -9`" + ` of one of several workers mid-trial | its trial stays RUNNING until its heartbeat is stale (4x ` + "`--heartbeat`" + `, 40 s by default), then a surviving worker marks it FAIL (` + "`fail_reason`" + ` "no heartbeat ...", ` + "`fmtune:fail_kind`" + ` "stale") and queues its parameters again in the same transaction; a survivor runs them and the study reaches its target | survivors 0 | TestKill9WorkerOthersCarryOn |
| a kill at any moment of a grid trial: after its claim (before its parameters), after its parameters, after its last report, during its completion, during a re-queue | the next run marks the dead trial FAIL (stale) and queues its point again, from its parameters or, before they were written, from its ` + "`fixed_params`" + `; every grid point completes exactly once | - | study: TestKillAtEveryFaultPointLosesNoGridPoint |
| ` + "`kill -9`" + ` during a burst of SQLite writes | the file passes ` + "`PRAGMA integrity_check`" + `; every trial the process reported committed is stored; the next process carries on in the same file | - | storage: TestKill9DuringWriteBurst |
| PostgreSQL stopped and restarted during a study | each worker notes ` + "`storage unreachable: ...; retrying in 2s`" + `, waits (1 s doubling to 30 s) and carries on when the server is back (` + "`storage reachable again after 5s; carrying on`" + `); training in progress continues and its results are written once the server is back | 0 | TestPostgresRestartDuringStudy |
| PostgreSQL down for longer than ` + "`--storage-patience`" + ` (5 min by default) | ` + "`storage unreachable: ...; gave up after 5m0s (--storage-patience); the trials this process was running stay RUNNING and the next run retries them once their heartbeat is stale (fmtune resume NAME)`" + ` | 1 | TestPostgresRestartDuringStudy |
| a diverging trial (SGD with lr 10 on ` + "`deep`" + `) | that trial is FAIL with reason ` + "`diverged: training diverged: loss NaN at epoch 1, batch N`" + ` and counts toward the target; the study goes on | 0 | TestDivergedTrialFailsAndStudyGoesOn |
| the disk fills up under a SQLite study | ` + "`storage sqlite:///...: the disk is full (database or disk is full): the write was rolled back and what was stored before is intact; free space on the file system of \"...\" and run again`" + `; the file passes ` + "`PRAGMA integrity_check`" + `, trials left RUNNING are recovered by the next run | 1 | TestDiskFullStopsCleanly |
| the database file or its file system is read-only | ` + "`storage sqlite:///...: the database cannot be written: \"...\" is not writable (read-only file system); fmtune needs to write the database file and, for its -wal and -shm files, its directory: check their permissions and whether the file system is mounted read-only; nothing was changed`" + `; the files are left byte for byte | 1 | TestReadOnlyDatabaseRefused |
| Ctrl-C | running trials are FAIL with reason ` + "`interrupted`" + ` (` + "`fmtune:fail_kind`" + ` "interrupted") and queued again (in one transaction each), including a trial claimed at the very moment of the Ctrl-C | 130 | TestInterruptExits130AndRequeues, study: TestFakeCtrlCRequeues |
`
