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
	FigHistory    = "history"
	FigCurves     = "curves"
	FigParams     = "params"
	FigPruning    = "pruning"
	FigImportance = "importance"
	FigParallel   = "parallel"
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
	render  func(link func(int) string) (string, error)
}

func plotted(f figure) func(func(int) string) (string, error) { return f.svg }

func buildFigures(in Input) []builtFigure {
	var out []builtFigure
	if f, ok := historyFigure(in.Trials); ok {
		out = append(out, builtFigure{FigHistory, "Optimization history",
			"Validation accuracy of every finished trial by trial number; the step line is the best complete trial so far. " +
				"Filled circles are sampled trials (grid and retries included), filled triangles manual ones; hollow grey marks are pruned trials at their last reported value. Failed trials have no value and are not shown.", plotted(f)})
	}
	if f, ok := curvesFigure(bestTrials(in.Summary, in.Trials)); ok {
		out = append(out, builtFigure{FigCurves, "Learning curves of the best trials",
			"Training (dashed) and validation (solid) loss and accuracy per epoch of the best manual and the best sampled trial. " +
				"Validation loss rising above a still-falling training loss is overfitting.", plotted(f)})
	}
	if f, ok := paramsFigure(in.Spec, in.Trials); ok {
		out = append(out, builtFigure{FigParams, "Accuracy by hyperparameter",
			"Final validation accuracy of the complete trials against each hyperparameter; triangles are manual trials. " +
				"Points of the same choice are spread sideways a little so that they do not hide each other.", plotted(f)})
	}
	if f, ok := pruningFigure(in.Trials); ok {
		out = append(out, builtFigure{FigPruning, "Learning curves and pruning",
			"The intermediate value (validation accuracy after each epoch) of every complete, pruned and running trial; " +
				"a pruned trial's grey line ends in a red × at the epoch where the pruner stopped it, a running trial's green line in a ring at its latest epoch. Manual trials are dashed.", plotted(f)})
	}
	if imp := study.Importance(in.Trials); imp != nil {
		out = append(out, builtFigure{FigImportance, "Parameter importance",
			fmt.Sprintf("From %d complete trials (few trials give rough shares). ", completeCount(in.Trials)) +
				"Method: " + study.ImportanceMethod + ". Like Optuna's default (fANOVA) it measures how much of the accuracy's variance each parameter explains on its own, " +
				"but it fits the effects directly instead of through a random forest: with a few dozen trials over three parameters with few values that is exact where fANOVA is noisy, deterministic, and cheap enough to redraw live. " +
				"Interactions are not counted. Hover over a bar for the effect of each value.",
			func(func(int) string) (string, error) { return importanceSVG(imp), nil }})
	}
	if _, ok := parallelSVG(in.Spec, in.Trials, nil); ok {
		out = append(out, builtFigure{FigParallel, "Parallel coordinates",
			"One line per complete trial through its parameters to its validation accuracy, darker for better; the best trial is thick, manual trials are dashed. Hover over a line for the trial.",
			func(link func(int) string) (string, error) {
				svg, _ := parallelSVG(in.Spec, in.Trials, link)
				return svg, nil
			}})
	}
	return out
}

func completeCount(trials []study.TrialInfo) int {
	n := 0
	for _, t := range trials {
		if t.State == "complete" {
			n++
		}
	}
	return n
}

// Write writes the report on the studies as one HTML document.
func Write(w io.Writer, studies []Input, opt Options) error {
	if opt.Generated.IsZero() {
		opt.Generated = time.Now()
	}
	page := pageData{Generated: opt.Generated.Format("2006-01-02 15:04 MST"),
		Style: Style(), FontFace: FontFace("data:font/ttf;base64," + base64.StdEncoding.EncodeToString(PlotFont()))}
	for i, in := range studies {
		s, err := studyData(fmt.Sprintf("study-%d", i+1), in, StudyOptions{})
		if err != nil {
			return fmt.Errorf("report on %q: %w", in.Name, err)
		}
		page.Studies = append(page.Studies, s)
	}
	return pageTemplate.Execute(w, page)
}

// StudyOptions change how WriteStudy draws a study.
type StudyOptions struct {
	// TrialURL is the address of a trial's page: the trial numbers in the
	// table and the marks in the figures link there. Nil: no links (the
	// report file).
	TrialURL func(number int) string
}

// WriteStudy writes the study section of the report (the same HTML as in
// the report file) on its own: the dashboard's study page.
func WriteStudy(w io.Writer, in Input, opt StudyOptions) error {
	s, err := studyData("study", in, opt)
	if err != nil {
		return fmt.Errorf("draw %q: %w", in.Name, err)
	}
	return pageTemplate.ExecuteTemplate(w, "study", s)
}

type pageData struct {
	Generated string
	Style     template.CSS
	FontFace  template.CSS
	Studies   []studyPage
}

// PlotFont is the font the plots are laid out with (Liberation Sans, whose
// metrics gonum/plot measures text by), so that legends and tick labels
// fit wherever the figures are shown, with or without that font
// installed: a wider fallback font clipped the legends.
func PlotFont() []byte { return liberationsansregular.TTF }

// FontFace is the CSS that gives the plots their font, loaded from url (a
// data: URL in the report file).
func FontFace(url string) template.CSS {
	return template.CSS(`@font-face { font-family: "fmtune-plot-sans"; src: url(` + url + `) format("truetype"); }`)
}

// Style is the CSS of a study section, for any page that shows one.
func Style() template.CSS { return template.CSS(style) }

type studyPage struct {
	ID, Name string
	Meta     []string
	Counts   string
	Running  int
	Rows     []tableRow
	Verdict  string
	Figures  []figurePage
	Columns  []string // the parameters of the trial table
	Trials   []trialRow
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

func studyData(id string, in Input, opt StudyOptions) (studyPage, error) {
	s := studyPage{ID: id, Name: in.Name}
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
		svg, err := f.render(opt.TrialURL)
		if err != nil {
			return s, err
		}
		s.Figures = append(s.Figures, figurePage{f.Name, f.Title, f.Caption, template.HTML(svg)}) //nolint:gosec // our own SVG; every user string in it is escaped
	}
	s.Columns, s.Trials = trialTable(in.Trials, opt.TrialURL)
	for _, t := range in.Trials {
		if t.State == "running" {
			s.Running++
		}
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

// TrialFigure draws one trial's whole curve: train and validation loss and
// accuracy per epoch when its curve is stored, else (a running trial) the
// validation accuracy reported so far. False when it has neither.
func TrialFigure(t study.TrialInfo) (template.HTML, bool, error) {
	f, ok := curvesFigure([]study.TrialInfo{t})
	if !ok {
		f, ok = pruningFigure([]study.TrialInfo{t})
	}
	if !ok {
		return "", false, nil
	}
	svg, err := f.svg(nil)
	return template.HTML(svg), err == nil, err //nolint:gosec // our own SVG; every user string in it is escaped
}
