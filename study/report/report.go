// Package report writes the study report: one self-contained HTML file per
// run of `fmtune report`, with, for each study, the manual-versus-sampled
// comparison table and four figures (optimization history, learning curves
// of the best trials, accuracy by hyperparameter, pruning) drawn as inline
// SVG with gonum/plot. The file loads nothing from the network.
package report

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"codeberg.org/go-fonts/liberation/liberationsansregular"
	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/study"
)

// Input is one study as the report shows it.
type Input struct {
	Name    string
	Spec    *study.Spec // nil for a study that fmtune did not create
	Summary []study.SourceSummary
	Trials  []study.TrialInfo
	// Confusion is the best kept model's test confusion matrix (nil: none).
	Confusion *BestConfusion
}

// Load reads the studies called names from store. An unknown study is the
// error of study.Trials.
func Load(store goptuna.Storage, names []string) ([]Input, error) {
	out := make([]Input, 0, len(names))
	for _, name := range names {
		trials, err := study.Trials(store, name, "")
		if err != nil {
			return nil, err
		}
		in := Input{Name: name, Trials: trials, Summary: study.CompareTrials(name, trials)}
		// The stored spec, read without study.LoadSpec's wait for a study
		// being created: a study another tool wrote simply has none.
		if id, err := store.GetStudyIDFromName(name); err == nil {
			if attrs, err := store.GetStudySystemAttrs(id); err == nil && attrs[study.SpecAttr] != "" {
				if spec, err := study.UnmarshalSpec(attrs[study.SpecAttr]); err == nil {
					in.Spec = &spec
				}
			}
		}
		in.Confusion = loadConfusion(store, name)
		out = append(out, in)
	}
	return out, nil
}

// Options change what Write prints around the studies.
type Options struct {
	// Generated is the time printed as the report's date (zero: now).
	Generated time.Time
}

// Figure names, in the order a study shows them.
const (
	FigHistory = "history"
	FigCurves  = "curves"
	FigParams  = "params"
	FigPruning = "pruning"
)

// Figures names the figures the report draws for in: a figure without data
// (no complete trial, no stored curve) is left out.
func Figures(in Input) []string {
	var out []string
	for _, f := range buildFigures(in) {
		out = append(out, f.Name)
	}
	return out
}

type builtFigure struct {
	Name    string
	Title   string
	Caption string
	fig     figure
}

func buildFigures(in Input) []builtFigure {
	var out []builtFigure
	if f, ok := historyFigure(in.Trials); ok {
		out = append(out, builtFigure{FigHistory, "Optimization history",
			"Validation accuracy of every finished trial by trial number; the step line is the best complete trial so far. " +
				"Filled circles are sampled trials (grid and retries included), filled triangles manual ones; hollow grey marks are pruned trials at their last reported value. Failed trials have no value and are not shown.", f})
	}
	if f, ok := curvesFigure(bestTrials(in.Summary, in.Trials)); ok {
		out = append(out, builtFigure{FigCurves, "Learning curves of the best trials",
			"Training (dashed) and validation (solid) loss and accuracy per epoch of the best manual and the best sampled trial. " +
				"Validation loss rising above a still-falling training loss is overfitting.", f})
	}
	if f, ok := paramsFigure(in.Spec, in.Trials); ok {
		out = append(out, builtFigure{FigParams, "Accuracy by hyperparameter",
			"Final validation accuracy of the complete trials against each hyperparameter; triangles are manual trials. " +
				"Points of the same choice are spread sideways a little so that they do not hide each other.", f})
	}
	if f, ok := pruningFigure(in.Trials); ok {
		out = append(out, builtFigure{FigPruning, "Pruning",
			"The intermediate value (validation accuracy after each epoch) of every complete and pruned trial; " +
				"a pruned trial's grey line ends in a red × at the epoch where the pruner stopped it. Manual trials are dashed.", f})
	}
	return out
}

// Write writes the report on the studies as one HTML document.
func Write(w io.Writer, studies []Input, opt Options) error {
	if opt.Generated.IsZero() {
		opt.Generated = time.Now()
	}
	page := pageData{Generated: opt.Generated.Format("2006-01-02 15:04 MST"), FontFace: plotFontFace()}
	for i, in := range studies {
		s, err := studyData(i, in)
		if err != nil {
			return fmt.Errorf("report on %q: %w", in.Name, err)
		}
		page.Studies = append(page.Studies, s)
	}
	return pageTemplate.Execute(w, page)
}

type pageData struct {
	Generated string
	FontFace  template.CSS
	Studies   []studyPage
}

// plotFontFace embeds the font the plots are laid out with (Liberation
// Sans, whose metrics gonum/plot measures text by), so that legends and tick
// labels fit wherever the report is opened, with or without that font
// installed: a wider fallback font clipped the legends. It is built when a
// report is written, not at start-up of every fmtune command.
func plotFontFace() template.CSS {
	return template.CSS(`@font-face { font-family: "fmtune-plot-sans"; src: url(data:font/ttf;base64,` +
		base64.StdEncoding.EncodeToString(liberationsansregular.TTF) + `) format("truetype"); }`)
}

type studyPage struct {
	ID, Name string
	Meta     []string
	Counts   string
	Rows     []tableRow
	Verdict  string
	Figures  []figurePage
	// Confusion is the best kept model's confusion matrix (confusion.go).
	Confusion template.HTML
}

type tableRow struct {
	Kind                                     string
	Trials, States                           string
	BestVal, Test, Trial, Config             string
	Epochs, Compute, ToBest, Gap, GapComment string
}

type figurePage struct {
	Name, Title, Caption string
	SVG                  template.HTML
}

func studyData(i int, in Input) (studyPage, error) {
	s := studyPage{ID: fmt.Sprintf("study-%d", i+1), Name: in.Name}
	if sp := in.Spec; sp != nil {
		s.Meta = append(s.Meta,
			fmt.Sprintf("arch %s · sampler %s · pruner %s · %d epochs per trial · seed %d", sp.Arch, sp.Sampler, sp.Pruner, sp.Epochs, sp.Seed),
			fmt.Sprintf("space: lr %s · optimizers %s · batch %s", sp.Space.LR, strings.Join(sp.Space.Optimizers, ", "), sp.Space.Batch))
		var data []string
		if sp.DataChecksum != "" {
			data = append(data, "data sha256 "+prefix(sp.DataChecksum, 12))
		}
		if sp.TrainLimit > 0 {
			data = append(data, fmt.Sprintf("first %d training images", sp.TrainLimit))
		}
		if sp.Val > 0 {
			data = append(data, fmt.Sprintf("%d validation images", sp.Val))
		}
		if !sp.Created.IsZero() {
			data = append(data, "created "+sp.Created.Format("2006-01-02 15:04 MST"))
		}
		if sp.Version != "" {
			data = append(data, "fmtune "+sp.Version)
		}
		s.Meta = append(s.Meta, strings.Join(data, " · "))
	} else {
		s.Meta = append(s.Meta, "not created by fmtune: no stored spec")
	}
	s.Counts = countLine(in.Trials)
	for _, r := range in.Summary {
		s.Rows = append(s.Rows, row(r))
	}
	s.Verdict = verdict(in.Summary)
	s.Confusion = confusionTable(in.Confusion)
	for _, f := range buildFigures(in) {
		svg, err := f.fig.svg()
		if err != nil {
			return s, err
		}
		s.Figures = append(s.Figures, figurePage{f.Name, f.Title, f.Caption, template.HTML(svg)}) //nolint:gosec // our own gonum/plot output; no user text in it
	}
	return s, nil
}

func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func countLine(trials []study.TrialInfo) string {
	n := map[string]int{}
	for _, t := range trials {
		n[t.State]++
	}
	parts := []string{fmt.Sprintf("%d trials", len(trials))}
	for _, st := range []struct{ state, label string }{
		{"complete", "complete"}, {"pruned", "pruned"}, {"fail", "failed"}, {"running", "running"}, {"waiting", "waiting"},
	} {
		if n[st.state] > 0 || st.state == "complete" || st.state == "pruned" || st.state == "fail" {
			parts = append(parts, fmt.Sprintf("%d %s", n[st.state], st.label))
		}
	}
	return parts[0] + ": " + strings.Join(parts[1:], ", ")
}

func row(r study.SourceSummary) tableRow {
	t := tableRow{Kind: r.Source, Trials: fmt.Sprint(r.Trials),
		States:  fmt.Sprintf("%d / %d / %d", r.Complete, r.Pruned, r.Fail),
		Epochs:  study.FormatEpochs(r.Epochs),
		Compute: fmt.Sprintf("%.1f s", r.Seconds),
		BestVal: "–", Test: "–", Trial: "–", Config: "–", ToBest: "–", Gap: "–",
	}
	if extra := r.Running + r.Waiting; extra > 0 {
		t.States += fmt.Sprintf(" (+%d running, %d waiting)", r.Running, r.Waiting)
	}
	if b := r.Best; b != nil {
		t.BestVal = fmt.Sprintf("%.4f", b.ValAcc)
		if b.TestAcc != nil {
			t.Test = fmt.Sprintf("%.4f", *b.TestAcc)
		}
		if r := b.Repeats; r != nil {
			t.BestVal = fmt.Sprintf("%.4f ± %.4f (mean ± std of %d)", r.Mean, r.Std, r.N)
			t.Test = fmt.Sprintf("%.4f ± %.4f", r.TestMean, r.TestStd)
		}
		t.Trial = fmt.Sprintf("#%d", b.Trial)
		t.Config = fmt.Sprintf("%s · %s · %d", fmtNum(b.LR), b.Optimizer, b.Batch)
		t.ToBest = fmt.Sprintf("%.1f s", b.SecondsToBest)
		if b.OverfitGap != nil {
			t.Gap = fmt.Sprintf("%+.3f", *b.OverfitGap)
			t.GapComment = fmt.Sprintf("last epoch: val loss %.3f, train loss %.3f", *b.ValLoss, *b.TrainLoss)
		}
	}
	return t
}

// verdict says in one sentence which source did better, and at what cost.
func verdict(summary []study.SourceSummary) string {
	var manual, sampled *study.SourceSummary
	for i := range summary {
		switch summary[i].Source {
		case study.KindManual:
			manual = &summary[i]
		case study.KindSampled:
			sampled = &summary[i]
		}
	}
	switch {
	case manual == nil || sampled == nil:
		return ""
	case manual.Best == nil && sampled.Best == nil:
		return "No complete trial yet."
	case manual.Best == nil:
		return fmt.Sprintf("No complete manual trial: the best sampled trial reached %.4f validation accuracy after %.1f s of compute.",
			sampled.Best.ValAcc, sampled.Best.SecondsToBest)
	case sampled.Best == nil:
		return fmt.Sprintf("No complete sampled trial: the best manual trial reached %.4f validation accuracy after %.1f s of compute.",
			manual.Best.ValAcc, manual.Best.SecondsToBest)
	}
	m, a := manual.Best, sampled.Best
	diff := a.ValAcc - m.ValAcc
	switch {
	case diff > 0:
		return fmt.Sprintf("The automated search beat the best manual trial by %.4f validation accuracy (%.4f against %.4f); it needed %.1f s of compute to get there, the manual trials %.1f s to reach theirs.",
			diff, a.ValAcc, m.ValAcc, a.SecondsToBest, m.SecondsToBest)
	case diff < 0:
		return fmt.Sprintf("The best manual trial beat the automated search by %.4f validation accuracy (%.4f against %.4f); it took %.1f s of compute to get there, the search %.1f s to reach its best.",
			-diff, m.ValAcc, a.ValAcc, m.SecondsToBest, a.SecondsToBest)
	}
	return fmt.Sprintf("Manual and automated tuning tie at %.4f validation accuracy (%.1f s against %.1f s of compute to get there).",
		a.ValAcc, m.SecondsToBest, a.SecondsToBest)
}

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fmtune report{{range .Studies}} · {{.Name}}{{end}}</title>
<style>
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #e2e4e8; --manual: #d95f02; --sampled: #1f6fb4; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 28px 56px; }
.top h1 { font-size: 22px; font-weight: 650; margin: 0; letter-spacing: -0.01em; }
.top p { margin: 2px 0 0; color: var(--muted); font-size: 13px; }
.top nav a { color: var(--sampled); margin-right: 12px; }
section.study { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 22px 26px 26px; margin: 22px 0; }
section.study h2 { font-size: 21px; font-weight: 650; margin: 0 0 4px; }
.meta { margin: 0; color: var(--muted); font-size: 13px; }
.meta span + span::before { content: " · "; }
h3 { font-size: 15px; font-weight: 650; margin: 28px 0 6px; }
.tablewrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; color: var(--muted); font-size: 12px; vertical-align: bottom; white-space: normal; border-bottom: 1.5px solid #c9ccd1; }
th.config, td.config { text-align: left; }
.mark { display: inline-block; width: 1.1em; font-size: 12px; }
.manual .mark { color: var(--manual); }
.sampled .mark { color: var(--sampled); }
.verdict { margin: 10px 0 0; font-size: 14px; }
figure { margin: 0; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin: 4px 0 0; max-width: 80ch; }
{{.FontFace}}
svg text { font-family: "fmtune-plot-sans", "Liberation Sans", Arial, Helvetica, sans-serif !important; }
.note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
</style>
</head>
<body>
<main>
<header class="top">
<h1>fmtune report</h1>
<p>Manual versus automated tuning · generated {{.Generated}}</p>
{{if gt (len .Studies) 1}}<nav>{{range .Studies}}<a href="#{{.ID}}">{{.Name}}</a>{{end}}</nav>{{end}}
</header>
{{range .Studies}}
<section class="study" id="{{.ID}}">
<h2>{{.Name}}</h2>
{{range .Meta}}<p class="meta">{{.}}</p>
{{end}}<p class="meta">{{.Counts}}</p>

<h3>Manual versus automated</h3>
<div class="tablewrap">
<table>
<thead><tr><th>Source</th><th>Trials</th><th>Complete / pruned / failed</th><th>Best val acc</th><th>Its test acc</th><th>Best trial</th><th class="config">lr · optimizer · batch</th><th>Epochs trained</th><th>Compute</th><th>Compute until best</th><th>Val − train loss</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="{{.Kind}}"><td><span class="mark">{{if eq .Kind "manual"}}▲{{else}}●{{end}}</span>{{.Kind}}</td><td>{{.Trials}}</td><td>{{.States}}</td><td>{{.BestVal}}</td><td>{{.Test}}</td><td>{{.Trial}}</td><td class="config">{{.Config}}</td><td>{{.Epochs}}</td><td>{{.Compute}}</td><td>{{.ToBest}}</td><td title="{{.GapComment}}">{{.Gap}}</td></tr>
{{end}}</tbody>
</table>
</div>
{{if .Verdict}}<p class="verdict">{{.Verdict}}</p>{{end}}
<p class="note">Sampled includes grid and retried trials. Compute: training seconds summed over the trials; until best: summed over that source's trials in the order they finished, up to and including its best one. Val − train loss: of the best trial's last epoch; large and positive means overfitting.</p>
{{range .Figures}}
<h3>{{.Title}}</h3>
<figure class="fig-{{.Name}}">
{{.SVG}}
<figcaption>{{.Caption}}</figcaption>
</figure>
{{else}}<p class="note">No finished trial yet: nothing to plot.</p>
{{end}}{{.Confusion}}
</section>
{{end}}
</main>
</body>
</html>
`))
