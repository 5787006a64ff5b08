package report

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"
)

// Colours and glyphs: a source is told apart by both, so the plots read in
// grey print and for colour-blind readers too.
var (
	colSampled = color.NRGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff} // blue
	colManual  = color.NRGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff} // orange
	colPruned  = color.NRGBA{R: 0x8c, G: 0x8c, B: 0x8c, A: 0xff} // grey
	colBest    = color.NRGBA{R: 0x22, G: 0x22, B: 0x22, A: 0xff}
	colStop    = color.NRGBA{R: 0xc0, G: 0x1c, B: 0x28, A: 0xff} // red: where pruning stopped a trial
	colRunning = color.NRGBA{R: 0x1a, G: 0x8a, B: 0x3c, A: 0xff} // green: a trial still training
	colGrid    = color.NRGBA{R: 0xe4, G: 0xe4, B: 0xe4, A: 0xff}
	colAxis    = color.NRGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}

	sans = font.Font{Typeface: "Liberation", Variant: "Sans"}
)

// Figure sizes in points (1pt = 4/3 CSS px at 100%).
const (
	figWidth = 720
	// legendGap separates the plots from the legend strip at the right.
	legendGap = 14
)

func withAlpha(c color.NRGBA, a uint8) color.NRGBA { c.A = a; return c }

func sourceColor(kind string) color.NRGBA {
	if kind == study.KindManual {
		return colManual
	}
	return colSampled
}

// glyph is the mark of a trial: filled circle (sampled) or filled triangle
// (manual); hollow and grey when the trial was pruned.
func glyph(kind string, pruned bool) draw.GlyphStyle {
	g := draw.GlyphStyle{Color: sourceColor(kind), Radius: vg.Points(3.2), Shape: draw.CircleGlyph{}}
	if kind == study.KindManual {
		g.Shape, g.Radius = draw.PyramidGlyph{}, vg.Points(4.2)
	}
	if pruned {
		g.Color = colPruned
		g.Shape = hollowOf(kind)
	}
	return g
}

// outline is a hollow circle or triangle drawn with a visible line width
// (gonum's RingGlyph and TriangleGlyph use a hairline).
type outline struct{ triangle bool }

func (o outline) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.1)})
	r := sty.Radius - vg.Points(0.4)
	var p vg.Path
	if o.triangle {
		const sin30, cos30 = 0.5, 0.8660254037844386
		r += (r - r*sin30) / 2
		p.Move(vg.Point{X: pt.X, Y: pt.Y + r})
		p.Line(vg.Point{X: pt.X - r*cos30, Y: pt.Y - r*sin30})
		p.Line(vg.Point{X: pt.X + r*cos30, Y: pt.Y - r*sin30})
	} else {
		p.Move(vg.Point{X: pt.X + r, Y: pt.Y})
		p.Arc(pt, r, 0, 2*math.Pi)
	}
	p.Close()
	c.Stroke(p)
}

// stopMark is a bold ×: where the pruner stopped a trial.
type stopMark struct{}

func (stopMark) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1.6)})
	r := sty.Radius * 0.7071
	for _, d := range []vg.Length{r, -r} {
		var p vg.Path
		p.Move(vg.Point{X: pt.X - r, Y: pt.Y - d})
		p.Line(vg.Point{X: pt.X + r, Y: pt.Y + d})
		c.Stroke(p)
	}
}

// newPanel is a plot with the report's fonts, light grid and axis colours.
func newPanel(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 11.5)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10.5)
		a.Label.TextStyle.Color = colAxis
		a.Tick.Label.Font = font.From(sans, 9.5)
		a.Tick.Label.Color = colAxis
		a.Color = colAxis
		a.Tick.Color = colAxis
		a.Padding = vg.Points(2)
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = colGrid, colGrid
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	p.Add(g)
	return p
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 10)
	l.TextStyle.Color = colAxis
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(20)
	l.Padding = vg.Points(4)
	return l
}

// figure is one SVG: panels side by side and an optional legend strip at the
// right, outside the data so that it never covers a point.
type figure struct {
	panels []*plot.Plot
	legend *plot.Legend
	height vg.Length
	tips   []tip
}

// tip is a native SVG tooltip (<title>) over a point of a panel, in data
// coordinates, linked to its trial's page when the page has links.
type tip struct {
	panel int
	x, y  float64
	trial int
	text  string
}

func (f *figure) tip(panel int, x, y float64, trial int, text string) {
	if finite(x) && finite(y) {
		f.tips = append(f.tips, tip{panel, x, y, trial, text})
	}
}

var xmlProlog = regexp.MustCompile(`(?s)^\s*<\?xml[^>]*\?>\s*(<!--.*?-->\s*)?`)

// svg renders the figure as an inline <svg> element (no XML prolog), its
// tips linked to link(trial) when link is not nil.
func (f figure) svg(link func(int) string) (string, error) {
	c := vgsvg.New(vg.Points(figWidth), f.height)
	dc := draw.New(c)
	// White background for the whole figure, legend strip included.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	area := dc
	if f.legend != nil {
		w := f.legend.Rectangle(dc).Size().X + legendGap
		area = draw.Crop(dc, 0, -w, 0, 0)
		strip := draw.Crop(dc, figWidth-w+legendGap, 0, 0, -vg.Points(24))
		f.legend.Draw(strip)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(f.panels), PadX: vg.Points(18), PadTop: vg.Points(2), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(4)}
	canvases := plot.Align([][]*plot.Plot{f.panels}, tiles, area)
	for i, p := range f.panels {
		p.Draw(canvases[0][i])
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("render svg: %w", err)
	}
	out := xmlProlog.ReplaceAllString(buf.String(), "")
	if len(f.tips) == 0 {
		return out, nil
	}
	// The tips go after the plot, outside its flipped group: y runs down.
	type transform struct{ x, y func(float64) vg.Length }
	trs := make([]transform, len(f.panels))
	for i, p := range f.panels {
		dc := p.DataCanvas(canvases[0][i])
		trs[i].x, trs[i].y = p.Transforms(&dc)
	}
	var tips strings.Builder
	tips.WriteString(`<g class="tips">`)
	for _, t := range f.tips {
		tr := trs[t.panel]
		circle := fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="5" fill="transparent"><title>%s</title></circle>`,
			tr.x(t.x).Points(), (f.height - tr.y(t.y)).Points(), html.EscapeString(t.text))
		if link != nil && t.trial >= 0 {
			circle = `<a href="` + html.EscapeString(link(t.trial)) + `">` + circle + `</a>`
		}
		tips.WriteString(circle)
	}
	tips.WriteString("</g>\n")
	i := strings.LastIndex(out, "</svg>")
	return out[:i] + tips.String() + out[i:], nil
}

// trialText names a trial in a tooltip: number, source, parameters.
func trialText(t study.TrialInfo) string {
	s := fmt.Sprintf("trial #%d · %s", t.Number, t.Source)
	if p, err := search.PointFromParams(t.Params); err == nil {
		s += fmt.Sprintf(" · lr %s · %s · batch %d", fmtNum(p.LR), p.Optimizer, p.Batch)
	}
	return s
}

// intTicks labels whole numbers only (trial numbers, epochs), about eight
// of them at most.
type intTicks struct{}

func (intTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000} {
		step = s
		if (hi-lo)/s <= 8 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return ticks
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// jitter is a fixed offset in [-1, 1] for trial n, so that trials with the
// same value of a parameter do not hide each other.
func jitter(n int) float64 {
	h := uint32(n)*2654435761 + 12345
	return float64(h%2001)/1000 - 1
}

func scatter(xys plotter.XYs, g draw.GlyphStyle) *plotter.Scatter {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		panic(err) // only finite values reach here
	}
	s.GlyphStyle = g
	return s
}

// historyFigure: the objective of every complete and pruned trial by trial
// number, the best-so-far step line, sources told apart.
func historyFigure(trials []study.TrialInfo) (figure, bool) {
	var f figure
	p := newPanel("", "trial number", "validation accuracy")
	l := newLegend()
	points := map[[2]string]plotter.XYs{}
	var best plotter.XYs
	bestSoFar, maxN := math.Inf(-1), 0
	for _, t := range trials {
		if t.ValAcc == nil || !finite(*t.ValAcc) {
			continue
		}
		maxN = max(maxN, t.Number)
		key := [2]string{study.SourceKind(t.Source), t.State}
		points[key] = append(points[key], plotter.XY{X: float64(t.Number), Y: *t.ValAcc})
		f.tip(0, float64(t.Number), *t.ValAcc, t.Number, fmt.Sprintf("%s\n%s, val accuracy %.4f", trialText(t), t.State, *t.ValAcc))
		if t.State == "complete" && *t.ValAcc > bestSoFar {
			bestSoFar = *t.ValAcc
			best = append(best, plotter.XY{X: float64(t.Number), Y: bestSoFar})
		}
	}
	if len(points) == 0 {
		return figure{}, false
	}
	if len(best) > 0 {
		best = append(best, plotter.XY{X: float64(maxN) + 0.5, Y: bestSoFar})
		line, _ := plotter.NewLine(best)
		line.StepStyle = plotter.PostStep
		line.Color, line.Width = colBest, vg.Points(1.3)
		p.Add(line)
		defer l.Add("best so far", line)
	}
	for _, e := range []struct {
		kind, state, label string
	}{
		{study.KindSampled, "complete", "sampled"},
		{study.KindManual, "complete", "manual"},
		{study.KindSampled, "pruned", "sampled, pruned"},
		{study.KindManual, "pruned", "manual, pruned"},
	} {
		xys := points[[2]string{e.kind, e.state}]
		if len(xys) == 0 {
			continue
		}
		s := scatter(xys, glyph(e.kind, e.state == "pruned"))
		p.Add(s)
		l.Add(e.label, s)
	}
	p.X.Min, p.X.Max = -0.5, float64(maxN)+0.5
	p.X.Tick.Marker = intTicks{}
	// Fit the y axis to the values, with room around a single point.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, xys := range points {
		for _, xy := range xys {
			lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
		}
	}
	pad := math.Max((hi-lo)*0.06, 0.01)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	f.panels, f.legend, f.height = []*plot.Plot{p}, &l, 250
	return f, true
}

// bestTrials are the best complete trial of each source that has one, with
// its stored learning curve.
func bestTrials(summary []study.SourceSummary, trials []study.TrialInfo) []study.TrialInfo {
	var out []study.TrialInfo
	for _, s := range summary {
		if s.Best == nil {
			continue
		}
		for _, t := range trials {
			if t.Number == s.Best.Trial && len(t.Curve) > 0 {
				out = append(out, t)
			}
		}
	}
	return out
}

// curvesFigure: train and validation loss (left) and accuracy (right) per
// epoch of the best manual and best sampled trial.
func curvesFigure(best []study.TrialInfo) (figure, bool) {
	if len(best) == 0 {
		return figure{}, false
	}
	var f figure
	loss := newPanel("", "epoch", "loss (cross-entropy)")
	acc := newPanel("", "epoch", "accuracy")
	l := newLegend()
	maxE := 1
	for _, t := range best {
		for _, e := range t.Curve {
			text := fmt.Sprintf("%s\nepoch %d: train loss %.4f, val loss %.4f, train acc %.4f, val acc %.4f",
				trialText(t), e.Epoch, e.TrainLoss, e.ValLoss, e.TrainAcc, e.ValAcc)
			f.tip(0, float64(e.Epoch), e.ValLoss, t.Number, text)
			f.tip(1, float64(e.Epoch), e.ValAcc, t.Number, text)
		}
		kind := study.SourceKind(t.Source)
		col := sourceColor(kind)
		for _, series := range []struct {
			name string
			get  func(e models.EpochStats) (loss, acc float64)
			dash []vg.Length
		}{
			{"train", func(e models.EpochStats) (float64, float64) { return e.TrainLoss, e.TrainAcc }, []vg.Length{vg.Points(4), vg.Points(3)}},
			{"validation", func(e models.EpochStats) (float64, float64) { return e.ValLoss, e.ValAcc }, nil},
		} {
			var lx, ax plotter.XYs
			for _, e := range t.Curve {
				lv, av := series.get(e)
				maxE = max(maxE, e.Epoch)
				if finite(lv) {
					lx = append(lx, plotter.XY{X: float64(e.Epoch), Y: lv})
				}
				if finite(av) {
					ax = append(ax, plotter.XY{X: float64(e.Epoch), Y: av})
				}
			}
			g := glyph(kind, false)
			g.Radius *= 0.75
			if series.dash != nil {
				g.Shape = hollowOf(kind)
			}
			var thumb []plot.Thumbnailer
			for _, pair := range []struct {
				p   *plot.Plot
				xys plotter.XYs
			}{{loss, lx}, {acc, ax}} {
				if len(pair.xys) == 0 {
					continue
				}
				line, pts, err := plotter.NewLinePoints(pair.xys)
				if err != nil {
					continue
				}
				line.Color, line.Width, line.Dashes = col, vg.Points(1.6), series.dash
				pts.GlyphStyle = g
				pair.p.Add(line, pts)
				thumb = []plot.Thumbnailer{line, pts}
			}
			if thumb != nil {
				l.Add(fmt.Sprintf("%s #%d %s", kind, t.Number, series.name), thumb...)
			}
		}
	}
	for _, p := range []*plot.Plot{loss, acc} {
		p.X.Min, p.X.Max = 0.7, float64(maxE)+0.3
		p.X.Tick.Marker = intTicks{}
	}
	f.panels, f.legend, f.height = []*plot.Plot{loss, acc}, &l, 240
	return f, true
}

func hollowOf(kind string) draw.GlyphDrawer { return outline{triangle: kind == study.KindManual} }

// paramsFigure: validation accuracy of the complete trials against the
// learning rate (log axis), the optimizer and the batch size.
func paramsFigure(spec *study.Spec, trials []study.TrialInfo) (figure, bool) {
	type row struct {
		n    int
		kind string
		p    search.Point
		acc  float64
		text string
	}
	var f figure
	var rows []row
	optSet := map[string]bool{}
	for _, t := range trials {
		if t.State != "complete" || t.ValAcc == nil || !finite(*t.ValAcc) {
			continue
		}
		p, err := search.PointFromParams(t.Params)
		if err != nil || p.LR <= 0 {
			continue
		}
		rows = append(rows, row{t.Number, study.SourceKind(t.Source), p, *t.ValAcc, fmt.Sprintf("%s\nval accuracy %.4f", trialText(t), *t.ValAcc)})
		optSet[p.Optimizer] = true
	}
	if len(rows) == 0 {
		return figure{}, false
	}
	var opts []string
	if spec != nil {
		opts = append(opts, spec.Space.Optimizers...)
	}
	for o := range optSet {
		if !contains(opts, o) {
			opts = append(opts, o)
		}
	}
	if spec == nil {
		sort.Strings(opts)
	}
	// Jitter dimensions of choices only: a range is shown as it is.
	lrChoices, batchChoices := distinct(rows, func(r row) float64 { return r.p.LR }), distinct(rows, func(r row) float64 { return float64(r.p.Batch) })
	lrJitter, batchJitter := len(lrChoices) <= 6, len(batchChoices) <= 6
	if spec != nil {
		lrJitter, batchJitter = !spec.Space.LR.IsRange(), !spec.Space.Batch.IsRange()
		if lrJitter {
			lrChoices = spec.Space.LR.Choices
		}
		if batchJitter {
			batchChoices = spec.Space.Batch.Choices
		}
	}

	lr := newPanel("", "learning rate (log scale)", "validation accuracy")
	opt := newPanel("", "optimizer", "")
	batch := newPanel("", "batch size", "")
	l := newLegend()
	batchSpan := 1.0
	if len(batchChoices) > 1 {
		batchSpan = batchChoices[len(batchChoices)-1] - batchChoices[0]
	}
	for _, kind := range []string{study.KindSampled, study.KindManual} {
		var a, b, c plotter.XYs
		for _, r := range rows {
			if r.kind != kind {
				continue
			}
			j := jitter(r.n)
			x := r.p.LR
			if lrJitter {
				x *= math.Pow(10, 0.06*j)
			}
			a = append(a, plotter.XY{X: x, Y: r.acc})
			b = append(b, plotter.XY{X: float64(indexOf(opts, r.p.Optimizer)) + 0.18*j, Y: r.acc})
			bx := float64(r.p.Batch)
			if batchJitter {
				bx += 0.03 * batchSpan * j
			}
			c = append(c, plotter.XY{X: bx, Y: r.acc})
			f.tip(0, x, r.acc, r.n, r.text)
			f.tip(1, b[len(b)-1].X, r.acc, r.n, r.text)
			f.tip(2, bx, r.acc, r.n, r.text)
		}
		if len(a) == 0 {
			continue
		}
		g := glyph(kind, false)
		lr.Add(scatter(a, g))
		opt.Add(scatter(b, g))
		s := scatter(c, g)
		batch.Add(s)
		l.Add(kind, s)
	}

	lr.X.Scale = plot.LogScale{}
	lo, hi := minMax(rows, func(r row) float64 { return r.p.LR })
	if spec != nil && spec.Space.LR.IsRange() && spec.Space.LR.Low > 0 {
		lo, hi = math.Min(lo, spec.Space.LR.Low), math.Max(hi, spec.Space.LR.High)
	}
	lr.X.Min, lr.X.Max = lo/1.6, hi*1.6
	if lrJitter {
		lr.X.Tick.Marker = constTicks(lrChoices)
	} else {
		lr.X.Tick.Marker = logTicks{}
	}

	optTicks := make([]plot.Tick, len(opts))
	for i, o := range opts {
		optTicks[i] = plot.Tick{Value: float64(i), Label: o}
	}
	opt.X.Tick.Marker = plot.ConstantTicks(optTicks)
	opt.X.Min, opt.X.Max = -0.5, float64(len(opts))-0.5

	blo, bhi := minMax(rows, func(r row) float64 { return float64(r.p.Batch) })
	if spec != nil && spec.Space.Batch.IsRange() {
		blo, bhi = math.Min(blo, spec.Space.Batch.Low), math.Max(bhi, spec.Space.Batch.High)
	}
	if batchJitter {
		batch.X.Tick.Marker = constTicks(batchChoices)
		blo, bhi = math.Min(blo, batchChoices[0]), math.Max(bhi, batchChoices[len(batchChoices)-1])
	}
	pad := math.Max((bhi-blo)*0.12, 16)
	batch.X.Min, batch.X.Max = blo-pad, bhi+pad

	// One accuracy scale for the three panels.
	ylo, yhi := minMax(rows, func(r row) float64 { return r.acc })
	ypad := math.Max((yhi-ylo)*0.06, 0.005)
	for _, p := range []*plot.Plot{lr, opt, batch} {
		p.Y.Min, p.Y.Max = ylo-ypad, yhi+ypad
	}
	f.panels, f.legend, f.height = []*plot.Plot{lr, opt, batch}, &l, 220
	return f, true
}

// logTicks labels the powers of ten of a log axis briefly (0.01, 1e-4)
// and marks 2x and 5x between them.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
				if e < -3 {
					t.Label = fmt.Sprintf("1e%d", int(e))
				}
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func constTicks(values []float64) plot.ConstantTicks {
	ticks := make([]plot.Tick, len(values))
	for i, v := range values {
		ticks[i] = plot.Tick{Value: v, Label: fmtNum(v)}
	}
	return ticks
}

// pruningFigure: the intermediate value (validation accuracy) per epoch of
// every complete, pruned and running trial; a pruned trial's line ends in a
// mark at the epoch where it was stopped, a running trial's (green) in a
// ring at its last epoch so far.
func pruningFigure(trials []study.TrialInfo) (figure, bool) {
	var f figure
	p := newPanel("", "epoch", "val accuracy after the epoch")
	l := newLegend()
	var stops, heads plotter.XYs
	var sampledLine, manualLine, prunedLine, runningLine *plotter.Line
	maxE, n := 1, 0
	for _, t := range trials {
		if t.State != "complete" && t.State != "pruned" && t.State != "running" {
			continue
		}
		xys := steps(t)
		if len(xys) == 0 {
			continue
		}
		maxE = max(maxE, int(xys[len(xys)-1].X))
		n++
		kind := study.SourceKind(t.Source)
		col := withAlpha(sourceColor(kind), 0xb0)
		width := vg.Points(0.9)
		last := xys[len(xys)-1]
		switch t.State {
		case "pruned":
			col, width = withAlpha(colPruned, 0xd8), vg.Points(1)
			stops = append(stops, last)
			f.tip(0, last.X, last.Y, t.Number, fmt.Sprintf("%s\npruned after epoch %d: val accuracy %.4f", trialText(t), int(last.X), last.Y))
		case "running":
			col, width = colRunning, vg.Points(1.5)
			heads = append(heads, last)
			f.tip(0, last.X, last.Y, t.Number, fmt.Sprintf("%s\nrunning, epoch %d: val accuracy %.4f", trialText(t), int(last.X), last.Y))
		default:
			f.tip(0, last.X, last.Y, t.Number, fmt.Sprintf("%s\ncomplete after epoch %d: val accuracy %.4f", trialText(t), int(last.X), last.Y))
		}
		if len(xys) == 1 {
			// A one-epoch trial has no line: show its point.
			g := glyph(kind, t.State == "pruned")
			g.Radius = vg.Points(1.8)
			if t.State == "complete" {
				p.Add(scatter(xys, g))
			}
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		line.Color, line.Width = col, width
		if kind == study.KindManual && t.State == "complete" {
			line.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
		}
		p.Add(line)
		switch {
		case t.State == "pruned":
			prunedLine = line
		case t.State == "running":
			runningLine = line
		case kind == study.KindManual:
			manualLine = line
		default:
			sampledLine = line
		}
	}
	if n == 0 {
		return figure{}, false
	}
	if sampledLine != nil {
		l.Add("sampled, complete", sampledLine)
	}
	if manualLine != nil {
		l.Add("manual, complete", manualLine)
	}
	if len(stops) > 0 {
		s := scatter(stops, draw.GlyphStyle{Color: colStop, Radius: vg.Points(4), Shape: stopMark{}})
		p.Add(s)
		if prunedLine != nil {
			l.Add("pruned (× = stopped)", prunedLine, s)
		} else {
			l.Add("pruned (× = stopped)", s)
		}
	}
	if len(heads) > 0 {
		s := scatter(heads, draw.GlyphStyle{Color: colRunning, Radius: vg.Points(3.5), Shape: outline{}})
		p.Add(s)
		if runningLine != nil {
			l.Add("running (○ = so far)", runningLine, s)
		} else {
			l.Add("running (○ = so far)", s)
		}
	}
	p.X.Min, p.X.Max = 0.8, float64(maxE)+0.2
	p.X.Tick.Marker = intTicks{}
	f.panels, f.legend, f.height = []*plot.Plot{p}, &l, 250
	return f, true
}

// steps is a trial's validation accuracy by epoch: from its stored curve,
// else (a running trial) from the intermediate values reported so far.
func steps(t study.TrialInfo) plotter.XYs {
	var xys plotter.XYs
	if len(t.Curve) > 0 {
		for _, e := range t.Curve {
			if finite(e.ValAcc) {
				xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: e.ValAcc})
			}
		}
		return xys
	}
	for e, v := range t.Steps {
		if finite(v) {
			xys = append(xys, plotter.XY{X: float64(e), Y: v})
		}
	}
	sort.Slice(xys, func(i, j int) bool { return xys[i].X < xys[j].X })
	return xys
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func distinct[T any](rows []T, f func(T) float64) []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, r := range rows {
		if v := f(r); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Float64s(out)
	return out
}

func minMax[T any](rows []T, f func(T) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range rows {
		v := f(r)
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}
