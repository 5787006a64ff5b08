package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

const hostile = `<script>window.__pwned=1</script>`

// newStore writes a study "demo" of three complete trials and a running
// one, and a study with a hostile name and attributes, then opens the file
// read-only as the dashboard does.
func newStore(t *testing.T) *storage.Storage {
	t.Helper()
	ctx := context.Background()
	u := "sqlite:///" + filepath.Join(t.TempDir(), "dash.db")
	w, err := storage.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	spec := study.DefaultSpec()
	spec.Name = "demo"
	if _, err := study.Prepare(w, spec); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"demo", hostile} {
		sid, err := w.GetStudyIDFromName(name)
		if err != nil {
			if sid, err = w.CreateNewStudy(name); err != nil {
				t.Fatal(err)
			}
		}
		for i, acc := range []float64{0.7, 0.8, 0.75, -1} {
			id, err := w.CreateNewTrial(sid)
			if err != nil {
				t.Fatal(err)
			}
			must(t, w.SetTrialParam(id, search.ParamLR, float64(i%3), goptuna.CategoricalDistribution{Choices: []string{"0.001", "0.01", "0.1"}}))
			must(t, w.SetTrialParam(id, search.ParamOptimizer, float64(i%2), goptuna.CategoricalDistribution{Choices: []string{"sgd", "adam"}}))
			must(t, w.SetTrialParam(id, search.ParamBatch, 0, goptuna.CategoricalDistribution{Choices: []string{"128"}}))
			must(t, w.SetTrialIntermediateValue(id, 1, 0.5))
			if name == hostile {
				must(t, w.SetTrialUserAttr(id, hostile, hostile))
				must(t, w.SetTrialSystemAttr(id, study.AttrSource, hostile))
				must(t, w.SetTrialSystemAttr(id, study.AttrWorker, hostile))
			}
			if acc < 0 {
				continue // running
			}
			must(t, w.SetTrialIntermediateValue(id, 2, acc))
			must(t, w.SetTrialValue(id, acc))
			must(t, w.SetTrialState(id, goptuna.TrialStateComplete))
		}
	}
	r, err := storage.OpenReadOnly(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, h http.Handler, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Host = "127.0.0.1:8080"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPages(t *testing.T) {
	h := New(newStore(t), Options{Storage: "sqlite:///dash.db", Loopback: true})
	for _, c := range []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{`<a href="/study/demo">demo</a>`, "<td>4</td>", `<span class="state">running</span>`, `href="/study/demo/trial/1">0.8000</a>`, "not fmtune's"}},
		{"/study/demo", 200, []string{"<h2>demo</h2>", `<a href="/study/demo/trial/3">#3</a>`, "1 running", "Parameter importance", "Parallel coordinates", `<tr class="st-running sampled"`}},
		{"/study/demo/trial/3", 200, []string{"Trial #3", "running", `<a href="/study/demo">demo</a> › <span>trial #3</span>`, "<th>lr</th><td>0.001</td>", "<td>1</td><td>0.5000</td>"}},
		{"/study/demo/trial/9", 404, []string{"has no trial #9"}},
		{"/study/demo/trial/x", 404, []string{"is not a trial number"}},
		{"/study/nope", 404, []string{"study not found", "&#34;nope&#34;"}},
		{"/nothing", 404, []string{"There is nothing at /nothing"}},
		{"/static/dashboard.js", 200, []string{"fetch(u"}},
		{"/static/style.css", 200, []string{"fmtune-plot-sans", "url(/static/plot-sans.ttf)", ".controls"}},
	} {
		res, body := get(t, h, c.path)
		if res.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d", c.path, res.StatusCode, c.code)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", c.path, w)
			}
		}
		if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
			t.Errorf("%s: CSP %q", c.path, got)
		}
	}
}

func TestHostileStringsAreText(t *testing.T) {
	h := New(newStore(t), Options{Storage: "x", Loopback: true})
	_, list := get(t, h, "/")
	for _, path := range []string{"/", "/study/" + url.PathEscape(hostile), "/study/" + url.PathEscape(hostile) + "/trial/0"} {
		res, body := get(t, h, path)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, res.StatusCode)
		}
		if n := strings.Count(body, "<script"); n != 1 || !strings.Contains(body, `<script src="/static/dashboard.js" defer></script>`) {
			t.Errorf("%s: %d <script elements, want only the dashboard's own", path, n)
		}
		if !strings.Contains(body, "&lt;script&gt;window.__pwned=1&lt;/script&gt;") {
			t.Errorf("%s does not show the hostile string as text", path)
		}
	}
	if !strings.Contains(list, `href="/study/%3Cscript%3Ewindow.__pwned=1%3C%2Fscript%3E"`) {
		t.Error("the hostile study's link is not escaped as a path")
	}
}

func TestLiveFragment(t *testing.T) {
	h := New(newStore(t), Options{Storage: "x", Loopback: true})
	res, body := get(t, h, "/study/demo?fragment=1")
	etag := res.Header.Get("ETag")
	if res.StatusCode != 200 || etag == "" || strings.Contains(body, "<html") || !strings.Contains(body, "<h2>demo</h2>") {
		t.Fatalf("fragment: %d, etag %q, %.200s", res.StatusCode, etag, body)
	}
	if res, _ := get(t, h, "/study/demo?fragment=1", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Fatalf("unchanged fragment: status %d, want 304", res.StatusCode)
	}
	if res, _ := get(t, h, "/study/nope?fragment=1"); res.StatusCode != 404 {
		t.Fatalf("fragment of an unknown study: %d", res.StatusCode)
	}
}

func TestLoopbackHost(t *testing.T) {
	h := New(newStore(t), Options{Storage: "x", Loopback: true})
	for host, want := range map[string]int{"127.0.0.1:8080": 200, "localhost:8080": 200, "[::1]:8080": 200, "evil.example:8080": 421, "10.0.0.1": 421} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
	req := httptest.NewRequest("POST", "/", nil)
	req.Host = "127.0.0.1"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

func TestAPI(t *testing.T) {
	h := New(newStore(t), Options{Storage: "x"})
	_, body := get(t, h, "/api/study/demo")
	var s studyJSON
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("%v: %.300s", err, body)
	}
	if s.Name != "demo" || len(s.Trials) != 4 || len(s.Importance) != 2 || s.ImportanceMethod == "" {
		t.Fatalf("%+v", s)
	}
	_, body = get(t, h, "/api/studies")
	var list []study.StudyInfo
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("%v %s", err, body)
	}
}
