// Package dashboard serves fmtune's web dashboard: the studies of a
// storage, each study's page (the report's study section, drawn by the
// same code) and each trial's page, kept live by a small script of its
// own that asks for the page again every second and swaps it in when it
// changed. It only reads the storage it is given; its pages, styles and
// script are embedded, and its Content-Security-Policy lets a page load
// nothing from anywhere else.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
	"github.com/fmtune/fmtune/study/report"
)

//go:embed assets
var assets embed.FS

// Options configure a dashboard.
type Options struct {
	// Storage is how the pages name the storage (its URL, password hidden).
	Storage string
	// Loopback refuses requests whose Host is not localhost, 127.0.0.1 or
	// ::1, so that a web page elsewhere cannot reach the dashboard through
	// a DNS name pointed at 127.0.0.1 (DNS rebinding). Set it when
	// listening on a loopback address.
	Loopback bool
	// Poll is how often the pages ask for news (default 1 s).
	Poll time.Duration
}

// Server is the dashboard of one storage, an http.Handler.
type Server struct {
	store goptuna.Storage
	opt   Options
	mux   *http.ServeMux
	pages *template.Template
	css   []byte

	mu    sync.Mutex
	cache map[string]rendered // by page path: the last rendering and what it was drawn from
}

// rendered is a page's live part as last drawn.
type rendered struct {
	token  string    // the storage's version when it was loaded (see versioner)
	loaded time.Time // when its data was last read
	source string    // fingerprint of the data it was drawn from
	page   page
	body   []byte
	etag   string
}

// versioner is a storage that can tell cheaply whether a study changed
// (storage.Storage.Version): the pages then read the trials only when it
// did, and at least every fullReload.
type versioner interface {
	Version(studyID int) (string, error)
}

// maxCached is how many pages the dashboard keeps drawn.
const maxCached = 32

// fullReload is how often a page reads its data even though the storage's
// version did not change (an attribute rewritten in place).
const fullReload = 10 * time.Second

// version is the storage's version token for a study (id < 0: all of
// them), "" when the storage cannot tell.
func (s *Server) version(id int) string {
	if v, ok := s.store.(versioner); ok {
		if token, err := v.Version(id); err == nil {
			return token
		}
	}
	return ""
}

// fresh returns what was last drawn at key if the storage has not changed
// since, so that it need not be read again.
func (s *Server) fresh(key, token string) (rendered, bool) {
	if token == "" {
		return rendered{}, false
	}
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	return c, ok && c.token == token && time.Since(c.loaded) < fullReload
}

// New returns the dashboard of store.
func New(store goptuna.Storage, opt Options) *Server {
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	s := &Server{store: store, opt: opt, mux: http.NewServeMux(), cache: map[string]rendered{}}
	s.pages = template.Must(template.New("").Funcs(template.FuncMap{
		"studyURL": studyURL,
		"trialURL": trialURL,
		"pct":      func(v float64) string { return fmt.Sprintf("%.4f", v) },
	}).ParseFS(assets, "assets/*.html"))
	extra, _ := assets.ReadFile("assets/dashboard.css")
	s.css = []byte(string(report.Style()) + "\n" + string(report.FontFace("/static/plot-sans.ttf")) + "\n" + string(extra))

	s.mux.HandleFunc("GET /{$}", s.studiesPage)
	s.mux.HandleFunc("GET /study/{name}", s.studyPage)
	s.mux.HandleFunc("GET /study/{name}/trial/{number}", s.trialPage)
	s.mux.HandleFunc("GET /api/studies", s.apiStudies)
	s.mux.HandleFunc("GET /api/study/{name}", s.apiStudy)
	s.mux.HandleFunc("GET /static/style.css", s.static("text/css; charset=utf-8", s.css))
	js, _ := assets.ReadFile("assets/dashboard.js")
	s.mux.HandleFunc("GET /static/dashboard.js", s.static("text/javascript; charset=utf-8", js))
	s.mux.HandleFunc("GET /static/plot-sans.ttf", s.static("font/ttf", report.PlotFont()))
	icon, _ := assets.ReadFile("assets/favicon.svg")
	s.mux.HandleFunc("GET /favicon.ico", s.static("image/svg+xml", icon))
	s.mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "No such page", "There is nothing at "+r.URL.Path+".")
	})
	return s
}

var _ http.Handler = (*Server)(nil)

// csp lets a page load only the dashboard's own script, style and font:
// a string that slipped through escaping still could not run a script.
const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP serves the dashboard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if s.opt.Loopback && !loopbackHost(r.Host) {
		http.Error(w, "fmtune dashboard: this dashboard answers to localhost, 127.0.0.1 and [::1] only", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) static(ctype string, body []byte) http.HandlerFunc {
	etag := `"` + hash(body) + `"`
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(body)
	}
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func studyURL(name string) string { return "/study/" + url.PathEscape(name) }

func trialURL(name string, number int) string {
	return studyURL(name) + "/trial/" + strconv.Itoa(number)
}

// page is what the layout template shows around a page's live part.
type page struct {
	Title   string // the window's title
	Here    string // the last crumb (default Title)
	Storage string
	Crumbs  []crumb
	Live    template.HTML
	Poll    int // milliseconds
}

type crumb struct{ Text, URL string }

// serve answers a page request: the live part alone (for the script,
// ?fragment=1, 304 when it has not changed) or the whole page. source is
// a fingerprint of the data the live part is drawn from, draw draws it.
// token is the storage's version the data was read at.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, token string, p page, source string, draw func() ([]byte, error)) {
	key := r.URL.Path
	s.mu.Lock()
	c, ok := s.cache[key]
	s.mu.Unlock()
	if !ok || c.source != source {
		body, err := draw()
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, "Cannot draw this page", err.Error())
			return
		}
		c = rendered{source: source, body: body, etag: `"` + hash(body) + `"`}
	}
	c.token, c.loaded, c.page = token, time.Now(), p
	s.mu.Lock()
	s.cache[key] = c
	if len(s.cache) > maxCached {
		// Forget the page read longest ago (a trial page visited once).
		oldest := key
		for k, v := range s.cache {
			if v.loaded.Before(s.cache[oldest].loaded) {
				oldest = k
			}
		}
		delete(s.cache, oldest)
	}
	s.mu.Unlock()
	s.write(w, r, c)
}

// write sends a drawn page: the live part alone to the script
// (?fragment=1; 304 when the script has it already) or the whole page.
func (s *Server) write(w http.ResponseWriter, r *http.Request, c rendered) {
	p := c.page
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("fragment") == "1" {
		w.Header().Set("ETag", c.etag)
		if r.Header.Get("If-None-Match") == c.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(c.body)
		return
	}
	p.Storage, p.Poll = s.opt.Storage, int(s.opt.Poll/time.Millisecond)
	p.Live = template.HTML(c.body) //nolint:gosec // drawn by our templates, which escape every stored string
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, "layout.html", struct {
		page
		ETag string
	}{p, c.etag}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page (or, to the script, the status alone).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, title, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("fragment") == "1" {
		http.Error(w, msg, code)
		return
	}
	var body bytes.Buffer
	_ = s.pages.ExecuteTemplate(&body, "error.html", struct{ Title, Msg string }{title, msg})
	var buf bytes.Buffer
	_ = s.pages.ExecuteTemplate(&buf, "layout.html", struct {
		page
		ETag string
	}{page{Title: title, Storage: s.opt.Storage, Crumbs: []crumb{{"Studies", "/"}}, Live: template.HTML(body.String())}, ""}) //nolint:gosec // our template's output
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// notFound is the answer for a study that is not (or no longer) there.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request, err error) bool {
	if errors.Is(err, storage.ErrStudyNotFound) {
		s.fail(w, r, http.StatusNotFound, "No such study", err.Error())
		return true
	}
	return false
}

func (s *Server) studiesPage(w http.ResponseWriter, r *http.Request) {
	token := s.version(-1)
	if c, ok := s.fresh(r.URL.Path, token); ok {
		s.write(w, r, c)
		return
	}
	studies, err := study.Studies(s.store)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "Cannot read the storage", err.Error())
		return
	}
	source := fmt.Sprintf("%#v", studiesView(studies))
	s.serve(w, r, token, page{Title: "Studies"}, source, func() ([]byte, error) {
		var buf bytes.Buffer
		err := s.pages.ExecuteTemplate(&buf, "studies.html", studiesView(studies))
		return buf.Bytes(), err
	})
}

// studyRow is a study as the studies page lists it.
type studyRow struct {
	study.StudyInfo
	Total   int
	BestVal string
	BestNum int
	HasBest bool
}

func studiesView(studies []study.StudyInfo) []studyRow {
	out := make([]studyRow, len(studies))
	for i, st := range studies {
		out[i] = studyRow{StudyInfo: st, Total: st.Complete + st.Pruned + st.Fail + st.Running + st.Waiting}
		if st.Best != nil && st.BestTrial != nil {
			out[i].BestVal, out[i].BestNum, out[i].HasBest = fmt.Sprintf("%.4f", *st.Best), *st.BestTrial, true
		}
		out[i].Best, out[i].BestTrial = nil, nil
	}
	return out
}

func (s *Server) studyPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	token := ""
	if id, err := s.store.GetStudyIDFromName(name); err == nil {
		token = s.version(id)
	}
	if c, ok := s.fresh(r.URL.Path, token); ok {
		s.write(w, r, c)
		return
	}
	ins, err := report.Load(s.store, []string{name})
	if err != nil {
		if !s.notFound(w, r, err) {
			s.fail(w, r, http.StatusInternalServerError, "Cannot read the study", err.Error())
		}
		return
	}
	in := ins[0]
	s.serve(w, r, token, page{Title: name, Crumbs: []crumb{{"Studies", "/"}}}, fingerprint(in), func() ([]byte, error) {
		var buf bytes.Buffer
		err := report.WriteStudy(&buf, in, report.StudyOptions{TrialURL: func(n int) string { return trialURL(name, n) }})
		return buf.Bytes(), err
	})
}

// fingerprint sums up everything a study page shows, to tell whether it
// must be drawn again.
func fingerprint(in report.Input) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%v|", in.Name, in.Spec != nil)
	if in.Spec != nil {
		b, _ := json.Marshal(in.Spec)
		h.Write(b)
	}
	for _, t := range in.Trials {
		fmt.Fprintf(h, "|%d %s %s %v %s %s %d %g %s %s %d %v %v", t.Number, t.State, t.Source, t.Params,
			f(t.ValAcc), f(t.TestAcc), t.Epochs, t.Seconds, t.Worker, t.FailReason, len(t.Curve), t.Steps, t.Completed)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func f(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

func (s *Server) apiStudies(w http.ResponseWriter, r *http.Request) {
	studies, err := study.Studies(s.store)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, studies)
}

// studyJSON is a study as /api/study/NAME gives it.
type studyJSON struct {
	Name             string                  `json:"name"`
	Spec             *study.Spec             `json:"spec"`
	Summary          []study.SourceSummary   `json:"summary"`
	Importance       []study.ParamImportance `json:"importance"`
	ImportanceMethod string                  `json:"importance_method"`
	Trials           []study.TrialInfo       `json:"trials"`
}

func (s *Server) apiStudy(w http.ResponseWriter, r *http.Request) {
	ins, err := report.Load(s.store, []string{r.PathValue("name")})
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, storage.ErrStudyNotFound) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	in := ins[0]
	writeJSON(w, studyJSON{Name: in.Name, Spec: in.Spec, Summary: in.Summary, Importance: study.Importance(in.Trials),
		ImportanceMethod: study.ImportanceMethod, Trials: in.Trials})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}
