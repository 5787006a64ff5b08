package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/internal/testenv"
)

// The interoperability tests run Debian's python3-optuna (Optuna 3.1, whose alembic head
// is v3.0.0.d: the v3.2.0.a schema without the index trials_study_id_key) in a separate
// process through storage/testdata/optuna_check.py.
const python = "/usr/bin/python3"

func requireOptuna(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import optuna; print(optuna.__version__)").CombinedOutput()
	if err != nil {
		testenv.Skip(t, "optuna", "Optuna interoperability tests skipped: %s cannot import optuna (apt-get install python3-optuna): %v: %s",
			python, err, strings.TrimSpace(string(out)))
	}
}

func runOptunaScript(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(python, append([]string{filepath.Join("testdata", "optuna_check.py")}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("optuna_check.py %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// studyView is the JSON description of a study that optuna_check.py reads and writes.
type studyView struct {
	StudyName   string         `json:"study_name"`
	Direction   string         `json:"direction"`
	UserAttrs   map[string]any `json:"user_attrs"`
	SystemAttrs map[string]any `json:"system_attrs"`
	BestTrial   *int           `json:"best_trial"`
	BestValue   any            `json:"best_value"`
	Trials      []trialView    `json:"trials"`
}

type trialView struct {
	Number             int            `json:"number"`
	State              string         `json:"state"`
	Value              any            `json:"value"`
	Params             map[string]any `json:"params"`
	Distributions      map[string]any `json:"distributions"`
	IntermediateValues map[string]any `json:"intermediate_values"`
	UserAttrs          map[string]any `json:"user_attrs"`
	SystemAttrs        map[string]any `json:"system_attrs"`
	DatetimeStart      *string        `json:"datetime_start"`
	DatetimeComplete   *string        `json:"datetime_complete"`
}

// jsonFloat encodes floats JSON cannot carry as optuna_check.py does.
func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return f
}

func viewTime(tm time.Time) *string {
	if tm.IsZero() {
		return nil
	}
	s := tm.Format(dbTimeLayout)
	return &s
}

// attrView is how Optuna sees a goptuna string attribute: json.loads of its value_json.
func attrView(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		var x any
		if err := json.Unmarshal([]byte(attrToJSON(v)), &x); err != nil {
			panic(err)
		}
		out[k] = x
	}
	return out
}

// fmtuneView describes a study as fmtune reads it, in optuna_check.py's format.
func fmtuneView(t *testing.T, s *Storage, name string) studyView {
	t.Helper()
	id := res(s.GetStudyIDFromName(name)).must(t)
	dir := res(s.GetStudyDirection(id)).must(t)
	v := studyView{
		StudyName:   name,
		Direction:   strings.ToUpper(string(dir)),
		UserAttrs:   attrView(res(s.GetStudyUserAttrs(id)).must(t)),
		SystemAttrs: attrView(res(s.GetStudySystemAttrs(id)).must(t)),
	}
	if best, err := s.GetBestTrial(id); err == nil {
		n := best.Number
		v.BestTrial, v.BestValue = &n, jsonFloat(best.Value)
	}
	// Which trials have a stored objective value (goptuna's Value is 0 when there is none).
	hasValue := map[int]bool{}
	rows := res(s.db.Query("SELECT trial_id FROM trial_values WHERE objective = 0")).must(t)
	for rows.Next() {
		var tid int
		ok(t, rows.Scan(&tid))
		hasValue[tid] = true
	}
	ok(t, rows.Close())
	for _, tr := range res(s.GetAllTrials(id)).must(t) {
		st := res(stateToDB(tr.State)).must(t)
		tv := trialView{
			Number: tr.Number, State: st,
			Params: map[string]any{}, Distributions: map[string]any{}, IntermediateValues: map[string]any{},
			UserAttrs: attrView(tr.UserAttrs), SystemAttrs: attrView(tr.SystemAttrs),
			DatetimeStart: viewTime(tr.DatetimeStart), DatetimeComplete: viewTime(tr.DatetimeComplete),
		}
		if hasValue[tr.ID] {
			tv.Value = jsonFloat(tr.Value)
		}
		for k, p := range tr.Params {
			if f, isFloat := p.(float64); isFloat {
				tv.Params[k] = jsonFloat(f)
			} else {
				tv.Params[k] = p
			}
			var d any
			ok(t, json.Unmarshal([]byte(res(distributionToJSON(tr.Distributions[k])).must(t)), &d))
			tv.Distributions[k] = d
		}
		for step, iv := range tr.IntermediateValues {
			tv.IntermediateValues[strconv.Itoa(step)] = jsonFloat(iv)
		}
		v.Trials = append(v.Trials, tv)
	}
	sort.Slice(v.Trials, func(i, j int) bool { return v.Trials[i].Number < v.Trials[j].Number })
	return v
}

// normalise turns a view into plain JSON values, so two views compare with DeepEqual.
func normalise(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	ok(t, err)
	var out any
	ok(t, json.Unmarshal(b, &out))
	return out
}

// TestOptunaInterop: fmtune and real Optuna (3.1, in another process) read each other's
// studies with the same values.
func TestOptunaInterop(t *testing.T) {
	requireOptuna(t)
	t.Run("schema-matches-optuna", testSchemaMatchesOptuna)
	t.Run("postgres-schema-matches-optuna", testPostgresSchemaMatchesOptuna)
	t.Run("fmtune-writes-optuna-reads", testFmtuneToOptuna)
	t.Run("optuna-writes-fmtune-reads", testOptunaToFmtune)
}

// sqliteMaster lists a database's schema objects as "type name: sql".
func sqliteMaster(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows := res(db.Query("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")).must(t)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, name, stmt string
		ok(t, rows.Scan(&typ, &name, &stmt))
		out = append(out, typ+" "+name+": "+stmt)
	}
	ok(t, rows.Err())
	return out
}

func testSchemaMatchesOptuna(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "optuna.db")
	runOptunaScript(t, "schema", "sqlite:///"+ref)
	refDB := res(sql.Open("sqlite3", "file:"+ref+"?mode=ro")).must(t)
	defer refDB.Close()
	s := mustOpen(t, "sqlite:///"+filepath.Join(dir, "fmtune.db"))

	want := sqliteMaster(t, refDB)
	want = append(want, "index trials_study_id_key: CREATE INDEX trials_study_id_key ON trials (study_id)")
	sort.Strings(want)
	got := sqliteMaster(t, s.db)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("schema differs from Optuna 3.1's plus v3.2.0.a's index:\n%s", listDiff(got, want))
	}
	var rev string
	ok(t, refDB.QueryRow("SELECT version_num FROM alembic_version").Scan(&rev))
	if rev != "v3.0.0.d" {
		t.Errorf("Optuna 3.1 stamps %q; the test assumes v3.0.0.d", rev)
	}
}

// listDiff shows the lines only one of two sorted lists has.
func listDiff(got, want []string) string {
	var b strings.Builder
	in := func(list []string, x string) bool {
		i := sort.SearchStrings(list, x)
		return i < len(list) && list[i] == x
	}
	for _, x := range want {
		if !in(got, x) {
			fmt.Fprintf(&b, "- %s\n", x)
		}
	}
	for _, x := range got {
		if !in(want, x) {
			fmt.Fprintf(&b, "+ %s\n", x)
		}
	}
	return b.String()
}

// pgSchema describes a PostgreSQL database's schema: enum types, columns, constraints
// and indexes of the current schema.
func pgSchema(t *testing.T, u string) []string {
	t.Helper()
	db := res(sql.Open("pgx", u)).must(t)
	defer db.Close()
	queries := []string{
		`SELECT 'type ' || t.typname || ': ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
		   FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
		`SELECT 'column ' || table_name || '.' || column_name || ': ' || udt_name || ' ' || is_nullable || ' ' ||
		        COALESCE(character_maximum_length::text, '') || ' ' || COALESCE(column_default, '')
		   FROM information_schema.columns WHERE table_schema = current_schema()`,
		`SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || pg_get_constraintdef(oid)
		   FROM pg_constraint WHERE connamespace = current_schema()::regnamespace`,
		`SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()`,
	}
	var out []string
	for _, q := range queries {
		rows := res(db.Query(q)).must(t)
		for rows.Next() {
			var line string
			ok(t, rows.Scan(&line))
			out = append(out, line)
		}
		ok(t, rows.Close())
	}
	sort.Strings(out)
	return out
}

// testPostgresSchemaMatchesOptuna compares fmtune's PostgreSQL schema with the one
// Optuna 3.1 creates (which needs Debian's python3-psycopg2 besides a server).
func testPostgresSchemaMatchesOptuna(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import psycopg2").CombinedOutput(); err != nil {
		testenv.Skip(t, "optuna", "needs python3-psycopg2 for Optuna to reach PostgreSQL: %v %s", err, out)
	}
	ref := freshPostgresURL(t)
	runOptunaScript(t, "schema", ref)
	ours := freshPostgresURL(t)
	mustOpen(t, ours)
	want := append(pgSchema(t, ref), "index trials_study_id_key: CREATE INDEX trials_study_id_key ON public.trials USING btree (study_id)")
	sort.Strings(want)
	if got := pgSchema(t, ours); !reflect.DeepEqual(got, want) {
		t.Errorf("PostgreSQL schema differs from Optuna 3.1's plus v3.2.0.a's index:\n%s", listDiff(got, want))
	}
}

// writeFmtuneStudy writes, through fmtune's storage, a study with params of all kinds,
// intermediate values, attributes, and complete, pruned, failed, waiting and running trials.
func writeFmtuneStudy(t *testing.T, s *Storage, name string) {
	id := res(s.CreateNewStudy(name)).must(t)
	ok(t, s.SetStudyDirection(id, goptuna.StudyDirectionMaximize))
	ok(t, s.SetStudyUserAttr(id, "architecture", "cnn"))
	ok(t, s.SetStudyUserAttr(id, "note", `accuracy on "val", é ✓`))
	ok(t, s.SetStudySystemAttr(id, "fmtune:version", "0.1.0"))
	space := []struct {
		name string
		dist any
		ir   func(i int) float64
	}{
		{"lr", goptuna.LogUniformDistribution{Low: 1e-5, High: 0.1}, func(i int) float64 { return 1e-3 * float64(i+1) }},
		{"momentum", goptuna.UniformDistribution{Low: 0, High: 0.99}, func(i int) float64 { return 0.1 * float64(i) }},
		{"dropout", goptuna.DiscreteUniformDistribution{Low: 0, High: 0.5, Q: 0.1}, func(i int) float64 { return []float64{0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5}[i%6] }},
		{"epochs", goptuna.IntUniformDistribution{Low: 1, High: 20}, func(i int) float64 { return float64(i + 3) }},
		{"batch_size", goptuna.StepIntUniformDistribution{Low: 32, High: 256, Step: 32}, func(i int) float64 { return float64(32 * (i%8 + 1)) }},
		{"optimizer", goptuna.CategoricalDistribution{Choices: []string{"sgd", "adam", "nadam", "rmsprop"}}, func(i int) float64 { return float64(i % 4) }},
	}
	type plan struct {
		final   goptuna.TrialState
		value   float64
		reports []float64
	}
	plans := []plan{
		{goptuna.TrialStateComplete, 0.8125, []float64{0.5, math.NaN(), math.Inf(1), 0.8125}},
		{goptuna.TrialStatePruned, 0, []float64{0.25, 0.3}},               // value = last report, as goptuna does
		{goptuna.TrialStateFail, 0, []float64{0.1}},                       // objective error
		{goptuna.TrialStateComplete, math.NaN(), []float64{0.6}},          // becomes FAIL
		{goptuna.TrialStateComplete, 0.9375, []float64{0.7, 0.9, 0.9375}}, // the best
		{goptuna.TrialStateComplete, math.Inf(1), nil},                    // becomes FAIL
		{goptuna.TrialStateRunning, 0, []float64{math.Inf(-1)}},           // still running
		{goptuna.TrialStatePruned, 0, []float64{0.5, math.NaN()}},         // pruned without value
		{goptuna.TrialStateComplete, 0.875, []float64{0.4, 0.6, 0.75, 0.8, 0.875}},
	}
	for i, p := range plans {
		tid := res(s.CreateNewTrial(id)).must(t)
		for _, sp := range space {
			ok(t, s.SetTrialParam(tid, sp.name, sp.ir(i), sp.dist))
		}
		for step, r := range p.reports {
			ok(t, s.SetTrialIntermediateValue(tid, step, r))
		}
		ok(t, s.SetTrialUserAttr(tid, "device", "cpu"))
		ok(t, s.SetTrialSystemAttr(tid, "completed_rung_0", strconv.FormatFloat(0.5, 'f', -1, 64)))
		ok(t, s.RecordHeartbeat(tid))
		switch p.final {
		case goptuna.TrialStateComplete:
			ok(t, s.SetTrialValue(tid, p.value))
		case goptuna.TrialStatePruned:
			ok(t, s.SetTrialValue(tid, p.reports[len(p.reports)-1]))
		}
		if p.final != goptuna.TrialStateRunning {
			ok(t, s.SetTrialState(tid, p.final))
		}
	}
	// An enqueued trial, as goptuna's EnqueueTrial writes it.
	_ = res(s.CloneTrial(id, goptuna.FrozenTrial{State: goptuna.TrialStateWaiting, DatetimeStart: time.Now(),
		SystemAttrs: map[string]string{"fixed_params": `{"lr":0.01,"optimizer":1}`}})).must(t)
}

// optuna31Copy copies an fmtune SQLite database into the v3.0.0.d layout Optuna 3.1
// accepts: the same schema without trials_study_id_key.
func optuna31Copy(t *testing.T, s *Storage, dst string) {
	t.Helper()
	_, err := s.db.ExecContext(context.Background(), "VACUUM INTO ?", dst)
	ok(t, err)
	db := res(sql.Open("sqlite3", "file:"+dst)).must(t)
	defer db.Close()
	for _, q := range []string{"DROP INDEX trials_study_id_key", "UPDATE alembic_version SET version_num = 'v3.0.0.d'"} {
		_, err := db.Exec(q)
		ok(t, err)
	}
}

func testFmtuneToOptuna(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, "sqlite:///"+filepath.Join(dir, "fmtune.db"))
	const name = "fmtune-study"
	writeFmtuneStudy(t, s, name)
	want := fmtuneView(t, s, name)
	if want.BestTrial == nil || *want.BestTrial != 4 {
		t.Fatalf("fmtune's own best trial = %v, want #4", want.BestTrial)
	}
	states := map[string]int{}
	for _, tr := range want.Trials {
		states[tr.State]++
	}
	if fmt.Sprint(states) != "map[COMPLETE:3 FAIL:3 PRUNED:2 RUNNING:1 WAITING:1]" {
		t.Fatalf("trial states %v", states)
	}
	wantPath := filepath.Join(dir, "want.json")
	ok(t, os.WriteFile(wantPath, res(json.MarshalIndent(want, "", " ")).must(t), 0o644))

	cp := filepath.Join(dir, "optuna31.db")
	optuna31Copy(t, s, cp)
	out := runOptunaScript(t, "check", "sqlite:///"+cp, name, wantPath)
	t.Log(strings.TrimSpace(out))
}

// sqliteDump returns the schema and every row of a database, to prove fmtune left it alone.
func sqliteDump(t *testing.T, path string) string {
	t.Helper()
	db := res(sql.Open("sqlite3", "file:"+path+"?mode=ro")).must(t)
	defer db.Close()
	var b strings.Builder
	for _, line := range sqliteMaster(t, db) {
		b.WriteString(line + "\n")
	}
	for _, table := range optunaTables {
		rows := res(db.Query("SELECT * FROM " + table + " ORDER BY 1")).must(t)
		cols := res(rows.Columns()).must(t)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			ok(t, rows.Scan(ptrs...))
			fmt.Fprintf(&b, "%s %v\n", table, vals)
		}
		ok(t, rows.Close())
	}
	return b.String()
}

func testOptunaToFmtune(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "optuna.db")
	const name = "optuna-study"
	wantPath := filepath.Join(dir, "optuna.json")
	runOptunaScript(t, "write", "sqlite:///"+path, name, wantPath)

	// As written by Optuna 3.1 the database is at v3.0.0.d: fmtune refuses it untouched.
	before := fileHash(t, path)
	if _, err := Open(context.Background(), "sqlite:///"+path); err == nil || !strings.Contains(err.Error(), "optuna storage upgrade") {
		t.Fatalf("Open(Optuna 3.1 database) = %v, want a refusal with the upgrade hint", err)
	}
	if fileHash(t, path) != before {
		t.Fatal("the refused Optuna 3.1 database was modified")
	}

	// Stamped up to v3.2.0.a (what `optuna storage upgrade` of Optuna >= 3.2 does).
	db := res(sql.Open("sqlite3", "file:"+path)).must(t)
	for _, q := range []string{"CREATE INDEX trials_study_id_key ON trials (study_id)", "UPDATE alembic_version SET version_num = 'v3.2.0.a'"} {
		_, err := db.Exec(q)
		ok(t, err)
	}
	ok(t, db.Close())
	dump := sqliteDump(t, path)

	s := mustOpen(t, "sqlite:///"+path)
	var listed bool
	for _, sum := range res(s.GetAllStudySummaries()).must(t) {
		if sum.Name == name {
			listed = true
			if sum.BestTrial.Number != 6 || sum.Direction != goptuna.StudyDirectionMinimize {
				t.Errorf("summary: best #%d direction %s, want #6 minimize", sum.BestTrial.Number, sum.Direction)
			}
		}
	}
	if !listed {
		t.Errorf("GetAllStudySummaries does not list %q", name)
	}
	got := fmtuneView(t, s, name)
	var want studyView
	ok(t, json.Unmarshal(res(os.ReadFile(wantPath)).must(t), &want))
	// Optuna's non-string attributes come to goptuna as their JSON text; compare them as JSON.
	reviveAttrs := func(m map[string]any) {
		for k, v := range m {
			if sv, isStr := v.(string); isStr {
				var x any
				if json.Unmarshal([]byte(sv), &x) == nil && !strings.HasPrefix(strings.TrimSpace(sv), `"`) {
					m[k] = x
				}
			}
		}
	}
	reviveAttrs(got.UserAttrs)
	reviveAttrs(got.SystemAttrs)
	for _, tr := range got.Trials {
		reviveAttrs(tr.UserAttrs)
		reviveAttrs(tr.SystemAttrs)
	}
	if g, w := normalise(t, got), normalise(t, want); !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", " ")
		wj, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("fmtune reads the Optuna study differently:\n got %s\nwant %s", gj, wj)
	}
	ok(t, s.Close())
	if after := sqliteDump(t, path); after != dump {
		t.Errorf("opening and reading the Optuna database changed its schema or rows:\nbefore\n%s\nafter\n%s", dump, after)
	}
}
