package report

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

func openStore(t *testing.T) *storage.Storage {
	t.Helper()
	s, err := storage.Open(context.Background(), "sqlite:///"+filepath.Join(t.TempDir(), "report.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// trial is one stored trial, written through the goptuna.Storage API as
// the engine or a manual run stores it.
type trial struct {
	source          string
	lr, opt, batch  string
	state           goptuna.TrialState
	test, seconds   string
	epochs          int
	trainLoss, last float64 // train loss and val acc of the last epoch
}

func (tr trial) curve() []models.EpochStats {
	c := make([]models.EpochStats, tr.epochs)
	for i := range c {
		back := float64(tr.epochs - 1 - i)
		c[i] = models.EpochStats{Epoch: i + 1, TrainLoss: tr.trainLoss + 0.2*back, TrainAcc: tr.last + 0.01 - 0.03*back,
			ValLoss: tr.trainLoss + 0.1 + 0.15*back, ValAcc: tr.last - 0.03*back, Seconds: 0.5}
	}
	return c
}

// newStudy creates an fmtune study called name with the given trials,
// finished in number order.
func newStudy(t *testing.T, store *storage.Storage, name string, trials []trial) {
	t.Helper()
	spec := study.DefaultSpec()
	spec.Name, spec.Epochs, spec.DataChecksum, spec.Version = name, 4, "4d8e31d2057f00112233", "test"
	spec.Created = time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	if _, err := study.Prepare(store, spec); err != nil {
		t.Fatal(err)
	}
	sid, err := store.GetStudyIDFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range trials {
		id, err := store.CreateNewTrial(sid)
		must(err)
		for _, p := range []struct {
			name    string
			choices []string
			v       string
		}{
			{search.ParamLR, []string{"0.001", "0.01", "0.1"}, tr.lr},
			{search.ParamOptimizer, []string{"sgd", "adam", "nadam", "rmsprop"}, tr.opt},
			{search.ParamBatch, []string{"128", "256"}, tr.batch},
		} {
			idx := -1
			for i, c := range p.choices {
				if c == p.v {
					idx = i
				}
			}
			if idx < 0 {
				t.Fatalf("%s=%s is not a choice", p.name, p.v)
			}
			must(store.SetTrialParam(id, p.name, float64(idx), goptuna.CategoricalDistribution{Choices: p.choices}))
		}
		if tr.source != "" {
			must(store.SetTrialSystemAttr(id, study.AttrSource, tr.source))
		}
		curve := tr.curve()
		for _, e := range curve {
			must(store.SetTrialIntermediateValue(id, e.Epoch, e.ValAcc))
		}
		b, _ := json.Marshal(curve)
		must(store.SetTrialUserAttr(id, "curve", string(b)))
		must(store.SetTrialUserAttr(id, "epochs", strconv.Itoa(tr.epochs)))
		must(store.SetTrialUserAttr(id, "seconds", tr.seconds))
		if tr.test != "" {
			must(store.SetTrialUserAttr(id, "test_accuracy", tr.test))
		}
		must(store.SetTrialValue(id, tr.last))
		must(store.SetTrialState(id, tr.state))
	}
}

const (
	complete = goptuna.TrialStateComplete
	pruned   = goptuna.TrialStatePruned
)

// demoTrials: sampled 0-3 (2 pruned), manual 4-5. Best sampled is 1
// (0.86), best manual 5 (0.84).
var demoTrials = []trial{
	{"", "0.01", "adam", "128", complete, "0.80", "10", 4, 0.40, 0.81},
	{"grid", "0.001", "nadam", "256", complete, "0.85", "12", 4, 0.30, 0.86},
	{"sampled", "0.1", "sgd", "128", pruned, "", "3", 2, 1.20, 0.40},
	{"retry", "0.1", "rmsprop", "256", pruned, "", "2", 1, 2.00, 0.10},
	{"manual", "0.1", "adam", "128", complete, "0.70", "5", 4, 0.60, 0.71},
	{"manual", "0.01", "sgd", "256", complete, "0.83", "6", 4, 0.35, 0.84},
}

func render(t *testing.T, store goptuna.Storage, names ...string) (string, []Input) {
	t.Helper()
	in, err := Load(store, names)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, in, Options{Generated: time.Date(2025, 3, 2, 10, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	return buf.String(), in
}

var svgElement = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)

// svgs returns the <svg> elements of page, each checked to be well-formed XML.
func svgs(t *testing.T, page string) []string {
	t.Helper()
	found := svgElement.FindAllString(page, -1)
	if n := strings.Count(page, "<svg"); n != len(found) {
		t.Fatalf("%d <svg but %d complete <svg>...</svg> elements", n, len(found))
	}
	for i, s := range found {
		dec := xml.NewDecoder(strings.NewReader(s))
		for {
			_, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("svg %d is not well-formed XML: %v", i, err)
			}
		}
	}
	return found
}

var urlRE = regexp.MustCompile(`(?i)https?://[^\s"'<>)]*`)

// checkSelfContained fails on anything that would make the browser fetch.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, u := range urlRE.FindAllString(page, -1) {
		if u != "http://www.w3.org/2000/svg" && u != "http://www.w3.org/1999/xlink" {
			t.Errorf("external reference %q", u)
		}
	}
	lower := strings.ToLower(page)
	// The one url() allowed is the embedded plot font, a data: URL.
	if n, data := strings.Count(lower, "url("), strings.Count(lower, "url(data:font/ttf;base64,"); n != 1 || data != 1 {
		t.Errorf("the report has %d url() references, %d of them the embedded font: want exactly the font", n, data)
	}
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "src=", "//cdn", "<?xml"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the report contains %q", bad)
		}
	}
}

var (
	rowRE  = regexp.MustCompile(`(?s)<tr class="(manual|sampled)">(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`)
	tagRE  = regexp.MustCompile(`<[^>]+>`)
)

// tableRows returns the cells (text only) of the comparison rows by source.
func tableRows(page string) map[string][][]string {
	out := map[string][][]string{}
	for _, m := range rowRE.FindAllStringSubmatch(page, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(m[2], -1) {
			cells = append(cells, strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(c[1], ""))))
		}
		out[m[1]] = append(out[m[1]], cells)
	}
	return out
}

func TestWriteOneStudy(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "demo", demoTrials)
	page, in := render(t, store, "demo")

	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "</html>") {
		t.Fatalf("not a whole HTML document:\n%.300s", page)
	}
	found := svgs(t, page)
	if want := []string{FigHistory, FigCurves, FigParams, FigPruning, FigImportance, FigParallel}; strings.Join(Figures(in[0]), ",") != strings.Join(want, ",") {
		t.Fatalf("figures %v, want %v", Figures(in[0]), want)
	}
	if len(found) != 6 {
		t.Fatalf("%d <svg> elements, want 6", len(found))
	}
	checkSelfContained(t, page)

	rows := tableRows(page)
	want := map[string][]string{
		//           source    trials states       best val  test      trial  config                    epochs compute  to best  gap
		"manual":  {"▲manual", "2", "2 / 0 / 0", "0.8400", "0.8300", "#5", "0.01 · sgd · 256", "8", "11.0 s", "11.0 s", "+0.100"},
		"sampled": {"●sampled", "4", "2 / 2 / 0", "0.8600", "0.8500", "#1", "0.001 · nadam · 256", "11", "27.0 s", "22.0 s", "+0.100"},
	}
	for source, cells := range want {
		if len(rows[source]) != 1 {
			t.Fatalf("%d %s rows, want 1", len(rows[source]), source)
		}
		if got := rows[source][0]; strings.Join(got, "|") != strings.Join(cells, "|") {
			t.Errorf("%s row\n got %q\nwant %q", source, got, cells)
		}
	}
	for _, s := range []string{
		"<h2>demo</h2>", "arch mlp", "sampler tpe", "pruner median", "4 epochs per trial",
		"data sha256 4d8e31d2057f…", "created 2025-03-01 09:30 UTC", "generated 2025-03-02 10:00 UTC",
		"6 trials: 4 complete, 2 pruned, 0 failed",
		"beat the best manual trial by 0.0200 validation accuracy",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the report lacks %q", s)
		}
	}

	// The history tells the sources apart by colour and shape and has a legend.
	hist := found[0]
	for _, s := range []string{"#1F6FB4", "#D95F02", "#8C8C8C", ">sampled<", ">manual<", ">sampled, pruned<", ">best so far<"} {
		if !strings.Contains(hist, s) {
			t.Errorf("the history plot lacks %q", s)
		}
	}
	if !strings.Contains(found[1], ">manual #5 validation<") || !strings.Contains(found[1], ">sampled #1 train<") {
		t.Error("the learning curves are not labelled by source and trial")
	}
	if !strings.Contains(found[3], "#C01C28") {
		t.Error("the pruning plot has no stop marks")
	}

	// Every mark has a native tooltip naming its trial; the report has no links.
	for i, want := range []string{
		"<title>trial #1 · grid · lr 0.001 · nadam · batch 256\ncomplete, val accuracy 0.8600</title>",
		"<title>trial #5 · manual · lr 0.01 · sgd · batch 256\nepoch 4: train loss 0.3500",
		"<title>trial #4 · manual · lr 0.1 · adam · batch 128\nval accuracy 0.7100</title>",
		"<title>trial #2 · sampled · lr 0.1 · sgd · batch 128\npruned after epoch 2: val accuracy 0.4000</title>",
		"<title>optimizer: ",
		"<title>trial #1 · grid · lr 0.001 · nadam · batch 256\nval accuracy 0.8600</title>",
	} {
		if !strings.Contains(found[i], want) {
			t.Errorf("figure %d lacks the tooltip %q", i, want)
		}
	}
	if strings.Contains(page, "<a href") {
		t.Error("the report file links to trial pages that it does not have")
	}
	// The trial table: one row per trial, in number order.
	trialRows := regexp.MustCompile(`<tr class="st-(\w+) (manual|sampled)" data-state`).FindAllStringSubmatch(page, -1)
	var states []string
	for _, m := range trialRows {
		states = append(states, m[1]+"/"+m[2])
	}
	if got := strings.Join(states, " "); got != "complete/sampled complete/sampled pruned/sampled pruned/sampled complete/manual complete/manual" {
		t.Errorf("trial table rows: %s", got)
	}
}

// TestStudyLinksAndLive: WriteStudy links trials when asked, shows a
// running trial's epochs so far, and escapes what anyone may have stored.
func TestStudyLinksAndLive(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "live", demoTrials)
	sid, err := store.GetStudyIDFromName("live")
	if err != nil {
		t.Fatal(err)
	}
	id, err := store.CreateNewTrial(sid)
	if err != nil {
		t.Fatal(err)
	}
	for e, v := range []float64{0.5, 0.6, 0.65} {
		if err := store.SetTrialIntermediateValue(id, e+1, v); err != nil {
			t.Fatal(err)
		}
	}
	const hostile = `<script>alert("x")</script>`
	if err := store.SetTrialSystemAttr(id, study.AttrSource, hostile); err != nil {
		t.Fatal(err)
	}
	if err := store.SetTrialSystemAttr(id, study.AttrWorker, hostile); err != nil {
		t.Fatal(err)
	}
	in, err := Load(store, []string{"live"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteStudy(&buf, in[0], StudyOptions{TrialURL: func(n int) string { return "trial/" + strconv.Itoa(n) }}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(page, "<script") {
		t.Fatal("a stored string reached the page as markup")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("the hostile source is not shown as text")
	}
	for _, want := range []string{`<a href="trial/1">#1</a>`, `<a href="trial/6">`, `data-running="1"`, `1 running`,
		`running, epoch 3: val accuracy 0.6500</title>`, `>running (○ = so far)<`} {
		if !strings.Contains(page, want) {
			t.Errorf("the study section lacks %q", want)
		}
	}
	svgs(t, page)
}

func TestWriteSeveralStudies(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "a", demoTrials)
	// No manual trial, and nothing complete: history and pruning only.
	newStudy(t, store, "b", []trial{{"", "0.1", "sgd", "128", pruned, "", "1", 2, 1.5, 0.3}})
	newStudy(t, store, `x<y>&"z"`, nil)
	page, in := render(t, store, "a", "b", `x<y>&"z"`)

	if got := Figures(in[1]); strings.Join(got, ",") != FigHistory+","+FigPruning {
		t.Fatalf("figures of b: %v", got)
	}
	if got := Figures(in[2]); len(got) != 0 {
		t.Fatalf("figures of an empty study: %v", got)
	}
	if n := len(svgs(t, page)); n != 6+2 {
		t.Fatalf("%d <svg> elements, want 8", n)
	}
	checkSelfContained(t, page)
	if !strings.Contains(page, "x&lt;y&gt;&amp;&#34;z&#34;") || strings.Contains(page, `x<y>`) {
		t.Error("the study name is not escaped")
	}
	if !strings.Contains(page, "No finished trial yet") {
		t.Error("the empty study says nothing")
	}
	rows := tableRows(page)
	if len(rows["manual"]) != 3 || len(rows["sampled"]) != 3 {
		t.Fatalf("rows %v, want 3 manual and 3 sampled", rows)
	}
	if got := rows["manual"][1]; got[1] != "0" || got[3] != "–" {
		t.Errorf("b's manual row %q: want 0 trials and no best", got)
	}
}

func TestLoadUnknownStudy(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "a", nil)
	_, err := Load(store, []string{"a", "missing"})
	if !errors.Is(err, storage.ErrStudyNotFound) {
		t.Fatalf("got %v, want storage.ErrStudyNotFound", err)
	}
}

func TestLogTicks(t *testing.T) {
	var labels []string
	for _, tk := range (logTicks{}).Ticks(6e-5, 0.5) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got := strings.Join(labels, " "); got != "1e-4 0.001 0.01 0.1" {
		t.Fatalf("labels %q", got)
	}
}

func TestIntTicks(t *testing.T) {
	for _, c := range []struct {
		min, max float64
		want     string
	}{
		{0.7, 4.3, "1 2 3 4"},
		{-0.5, 23.5, "0 5 10 15 20"},
		{-0.5, 0.5, "0"},
	} {
		var labels []string
		for _, tk := range (intTicks{}).Ticks(c.min, c.max) {
			labels = append(labels, tk.Label)
		}
		if got := strings.Join(labels, " "); got != c.want {
			t.Errorf("intTicks(%v, %v) = %q, want %q", c.min, c.max, got, c.want)
		}
	}
}
