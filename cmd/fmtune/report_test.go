package main

import (
	"context"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/testenv"
)

// reportTrial is a trial written straight into the storage, as the engine
// or a manual run stores it.
type reportTrial struct {
	source         string
	lr, opt, batch string
	state          goptuna.TrialState
	test, seconds  string
	epochs         int
	trainLoss, acc float64 // of the last epoch
}

// writeReportStudy creates the study "cmp" in dir/fmtune.db: sampled trials
// 0-3 (2 pruned) and manual trials 4-5, finished in number order.
func writeReportStudy(t *testing.T, dir string) {
	t.Helper()
	store := openDB(t, dir)
	spec := study.DefaultSpec()
	spec.Name, spec.Epochs, spec.DataChecksum = "cmp", 4, "4d8e31d2057f0011"
	if _, err := study.Prepare(store, spec); err != nil {
		t.Fatal(err)
	}
	sid, err := store.GetStudyIDFromName("cmp")
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	choices := map[string][]string{
		search.ParamLR: {"0.001", "0.01", "0.1"}, search.ParamOptimizer: {"sgd", "adam", "nadam", "rmsprop"}, search.ParamBatch: {"128", "256"},
	}
	for _, tr := range []reportTrial{
		{"", "0.01", "adam", "128", goptuna.TrialStateComplete, "0.80", "10", 4, 0.40, 0.81},
		{"grid", "0.001", "nadam", "256", goptuna.TrialStateComplete, "0.85", "12", 4, 0.30, 0.86},
		{"sampled", "0.1", "sgd", "128", goptuna.TrialStatePruned, "", "3", 2, 1.20, 0.40},
		{"retry", "0.1", "rmsprop", "256", goptuna.TrialStatePruned, "", "2", 1, 2.00, 0.10},
		{"manual", "0.1", "adam", "128", goptuna.TrialStateComplete, "0.70", "5", 4, 0.60, 0.71},
		{"manual", "0.01", "sgd", "256", goptuna.TrialStateComplete, "0.83", "6", 4, 0.35, 0.84},
	} {
		id, err := store.CreateNewTrial(sid)
		must(err)
		for name, v := range map[string]string{search.ParamLR: tr.lr, search.ParamOptimizer: tr.opt, search.ParamBatch: tr.batch} {
			idx := -1
			for i, c := range choices[name] {
				if c == v {
					idx = i
				}
			}
			must(store.SetTrialParam(id, name, float64(idx), goptuna.CategoricalDistribution{Choices: choices[name]}))
		}
		if tr.source != "" {
			must(store.SetTrialSystemAttr(id, study.AttrSource, tr.source))
		}
		curve := make([]models.EpochStats, tr.epochs)
		for i := range curve {
			back := float64(tr.epochs - 1 - i)
			curve[i] = models.EpochStats{Epoch: i + 1, TrainLoss: tr.trainLoss + 0.2*back, TrainAcc: tr.acc + 0.01 - 0.03*back,
				ValLoss: tr.trainLoss + 0.1 + 0.15*back, ValAcc: tr.acc - 0.03*back, Seconds: 0.5}
			must(store.SetTrialIntermediateValue(id, i+1, curve[i].ValAcc))
		}
		b, _ := json.Marshal(curve)
		for k, v := range map[string]string{"curve": string(b), "epochs": strconv.Itoa(tr.epochs), "seconds": tr.seconds, "test_accuracy": tr.test} {
			if v != "" {
				must(store.SetTrialUserAttr(id, k, v))
			}
		}
		must(store.SetTrialValue(id, tr.acc))
		must(store.SetTrialState(id, tr.state))
	}
	got, err := study.Trials(store, "cmp", "")
	if err != nil || len(got) != 6 || got[1].Params["lr"] != 0.001 || got[5].Params["optimizer"] != "sgd" {
		t.Fatalf("the test study was not written as meant: %v %+v", err, got)
	}
}

func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	writeReportStudy(t, dir)

	out, errOut, code := runFmtune(t, dir, "compare", "cmp")
	if code != 0 {
		t.Fatalf("compare exited %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "STUDY") {
		t.Fatalf("want a header and 2 rows:\n%s", out)
	}
	for i, want := range [][]string{
		{"cmp", "manual", "2", "2", "0", "0", "0", "0", "0.8400", "0.8300", "5", "lr=0.01", "sgd", "batch=256", "8", "11.0", "11.0", "+0.100"},
		// The retry and the grid point are sampled trials, and named.
		{"cmp", "sampled", "4", "(1", "grid", "point,", "1", "retry)", "2", "2", "0", "0", "0", "0.8600", "0.8500", "1", "lr=0.001", "nadam", "batch=256", "11", "27.0", "22.0", "+0.100"},
	} {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d\n got %q\nwant %q", i+1, got, want)
		}
	}

	out, errOut, code = runFmtune(t, dir, "compare", "cmp", "--json")
	var rows []study.SourceSummary
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
		t.Fatalf("compare --json: exit %d, %s\n%s", code, errOut, out)
	}
	if len(rows) != 2 || rows[1].Best == nil || rows[1].Best.Trial != 1 || rows[1].Best.SecondsToBest != 22 || rows[0].Seconds != 11 {
		t.Fatalf("compare --json: %+v", rows)
	}

	_, errOut, code = runFmtune(t, dir, "compare", "cmp", "nope")
	if code != 1 || !strings.Contains(errOut, "study not found") || !strings.Contains(errOut, `"nope"`) {
		t.Fatalf("unknown study: exit %d, %s", code, errOut)
	}
	_, errOut, code = runFmtune(t, dir, "compare")
	if code != 2 {
		t.Fatalf("compare without a name: exit %d, want 2: %s", code, errOut)
	}
	out, _, code = runFmtune(t, dir, "compare", "--help")
	if code != 0 || !strings.Contains(out, "in the\n                     order they finished, up to and including the best one") {
		t.Fatalf("compare --help does not say how seconds to best are counted:\n%s", out)
	}
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	writeReportStudy(t, dir)
	for _, args := range [][]string{{"report", "cmp"}, {"report", "--out", "r.html"}} {
		if _, errOut, code := runFmtune(t, dir, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2: %s", args, code, errOut)
		}
	}
	_, errOut, code := runFmtune(t, dir, "report", "cmp", "nope", "--out", "r.html")
	if code != 1 || !strings.Contains(errOut, "study not found") {
		t.Fatalf("unknown study: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "r.html")); !os.IsNotExist(err) {
		t.Fatalf("a failed report left a file: %v", err)
	}
	out, errOut, code := runFmtune(t, dir, "report", "cmp", "--out", "r.html")
	if code != 0 || !strings.Contains(out, "wrote r.html") {
		t.Fatalf("report: exit %d: %s%s", code, out, errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if n := strings.Count(page, "<svg"); n != 6 || !strings.Contains(page, "0.8600") || !strings.Contains(page, "22.0 s") {
		t.Fatalf("report has %d <svg> (want 6) or lacks the table numbers", n)
	}
}

// chromiumArgs are the flags that render a page headless here, with no
// network and no profile left behind.
func chromiumArgs(profile string) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=" + profile}
}

// TestReportRendersInChromium renders the report in a real browser: the
// screenshot must decode and show the plots, the console must stay silent,
// and the parsed document must hold every SVG.
func TestReportRendersInChromium(t *testing.T) {
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		testenv.Skip(t, "chromium", "no /usr/bin/chromium (apt-get install chromium): skipping the browser test")
	}
	dir := t.TempDir()
	writeReportStudy(t, dir)
	if _, errOut, code := runFmtune(t, dir, "report", "cmp", "--out", "report.html"); code != 0 {
		t.Fatalf("report exited %d: %s", code, errOut)
	}
	url := "file://" + filepath.Join(dir, "report.html")
	browse := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append(chromiumArgs(t.TempDir()), append(args, url)...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chromium %q: %v\n%s", args, err, out)
		}
		return out
	}

	png := filepath.Join(dir, "report.png")
	log := browse("--enable-logging=stderr", "--v=0", "--screenshot="+png, "--window-size=1280,3000")
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("browser console: %s", line)
		}
	}
	checkScreenshot(t, png)

	dom := string(browse("--dump-dom"))
	if n := strings.Count(dom, "<svg"); n != 6 || !strings.Contains(dom, "</html>") || !strings.Contains(dom, "0.8600") {
		t.Fatalf("the parsed document has %d <svg> elements (want 6), or lost the table:\n%.2000s", n, dom)
	}
}

// checkScreenshot wants a decodable PNG that is not blank: plenty of
// non-background pixels and many distinct colours (text, lines, glyphs).
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 {
		t.Fatalf("screenshot is %v, want 1280 wide", b)
	}
	bg := img.At(b.Min.X, b.Min.Y)
	colours := map[[3]uint32]bool{}
	var ink, blue, orange int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.At(x, y)
			r, g, bl, _ := c.RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
			if c != bg && !(r>>8 > 0xf0 && g>>8 > 0xf0 && bl>>8 > 0xf0) {
				ink++
			}
			if isNear(r, g, bl, 0x1f, 0x6f, 0xb4) {
				blue++
			}
			if isNear(r, g, bl, 0xd9, 0x5f, 0x02) {
				orange++
			}
		}
	}
	total := b.Dx() * b.Dy()
	t.Logf("screenshot %v: %d colours, %.1f%% ink, %d blue and %d orange pixels", b, len(colours), 100*float64(ink)/float64(total), blue, orange)
	if len(colours) < 64 || ink < total/100 {
		t.Fatalf("the screenshot looks blank: %d colours, %d of %d pixels not background", len(colours), ink, total)
	}
	if blue < 200 || orange < 100 {
		t.Fatalf("the plots' sampled (blue, %d px) or manual (orange, %d px) marks are missing", blue, orange)
	}
}

func isNear(r, g, b uint32, wr, wg, wb int) bool {
	d := func(v uint32, w int) bool { x := int(v>>8) - w; return x > -12 && x < 12 }
	return d(r, wr) && d(g, wg) && d(b, wb)
}
