package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/fmtune/fmtune/search"
	"github.com/fmtune/fmtune/study"
)

// The two figures gonum/plot has no kind for, parameter importance and
// parallel coordinates, are written as SVG directly, in the same colours
// and font as the others (the page's CSS gives every svg text its font).

// svgBuilder collects SVG elements; every text goes through esc.
type svgBuilder struct {
	strings.Builder
	link func(int) string
}

func esc(s string) string { return html.EscapeString(s) }

func (b *svgBuilder) printf(format string, args ...any) { fmt.Fprintf(b, format, args...) }

// linked wraps element in a link to trial's page, when the page has links.
func (b *svgBuilder) linked(trial int, element string) {
	if b.link != nil {
		element = `<a href="` + esc(b.link(trial)) + `">` + element + `</a>`
	}
	b.WriteString(element)
}

func hex(c interface{ RGBA() (r, g, b, a uint32) }) string {
	r, g, bl, _ := c.RGBA()
	return fmt.Sprintf("#%02X%02X%02X", r>>8, g>>8, bl>>8)
}

// importanceSVG draws each parameter's share as a bar, its effects per
// value in the tooltip.
func importanceSVG(imp []study.ParamImportance) string {
	const w, left, right, rowH, top = 960, 110, 70, 30, 10
	h := top + rowH*len(imp) + 8
	var b svgBuilder
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="parameter importance">`, w, h, w, h)
	b.printf(`<rect width="%d" height="%d" fill="#FFFFFF"/>`, w, h)
	span := float64(w - left - right)
	for i, p := range imp {
		y := top + i*rowH
		var tipText strings.Builder
		fmt.Fprintf(&tipText, "%s: %.1f%% of the variance the parameters explain\neffect on val accuracy per value:", p.Param, 100*p.Importance)
		for _, l := range p.Levels {
			fmt.Fprintf(&tipText, "\n%s: %+.4f (%d trials)", l.Label, l.Effect, l.Trials)
		}
		b.printf(`<g class="bar"><title>%s</title>`, esc(tipText.String()))
		b.printf(`<text x="%d" y="%d" text-anchor="end" font-size="13" fill="%s">%s</text>`, left-10, y+19, hex(colAxis), esc(p.Param))
		b.printf(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="#E9EEF5"/>`, left, y+5, span, rowH-10)
		b.printf(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, left, y+5, math.Max(1, span*p.Importance), rowH-10, hex(colSampled))
		b.printf(`<text x="%.1f" y="%d" font-size="13" fill="%s">%.3f</text></g>`, float64(left)+span+8, y+19, hex(colAxis), p.Importance)
	}
	b.WriteString("</svg>")
	return b.String()
}

// axis is one vertical axis of the parallel coordinates.
type axis struct {
	name   string
	cats   []string // a categorical axis's values, from the bottom up
	lo, hi float64
	log    bool
	value  func(t study.TrialInfo) (float64, bool) // position in [0, 1]
}

// parallelSVG draws one line per complete trial across the axes lr,
// optimizer, batch (then any other parameter) and the validation
// accuracy, coloured by accuracy; manual trials are dashed, the best one
// is drawn last and thick.
func parallelSVG(spec *study.Spec, trials []study.TrialInfo, link func(int) string) (string, bool) {
	var rows []study.TrialInfo
	names := map[string]bool{}
	for _, t := range trials {
		if t.State == "complete" && t.ValAcc != nil && finite(*t.ValAcc) {
			rows = append(rows, t)
			for k := range t.Params {
				names[k] = true
			}
		}
	}
	if len(rows) == 0 {
		return "", false
	}
	var axes []axis
	for _, name := range paramOrder(names) {
		axes = append(axes, paramAxis(spec, name, rows))
	}
	lo, hi := minMax(rows, func(t study.TrialInfo) float64 { return *t.ValAcc })
	if hi == lo {
		lo, hi = lo-0.005, hi+0.005
	}
	accAxis := axis{name: "val accuracy", lo: lo, hi: hi, value: func(t study.TrialInfo) (float64, bool) {
		return (*t.ValAcc - lo) / (hi - lo), true
	}}
	axes = append(axes, accAxis)

	const w, h, padX, top, bottom = 960, 300, 90, 34, 30
	step := float64(w-2*padX) / float64(len(axes)-1)
	ax := func(i int) float64 { return padX + step*float64(i) }
	ay := func(v float64) float64 { return top + (1-v)*float64(h-top-bottom) }
	b := svgBuilder{link: link}
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="parallel coordinates">`, w, h, w, h)
	b.printf(`<rect width="%d" height="%d" fill="#FFFFFF"/>`, w, h)
	// Lines, worst first so the best are on top.
	sort.SliceStable(rows, func(i, j int) bool { return *rows[i].ValAcc < *rows[j].ValAcc })
	for k, t := range rows {
		var pts []string
		for i, a := range axes {
			v, ok := a.value(t)
			if !ok {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", ax(i), ay(v)))
		}
		u := (*t.ValAcc - lo) / (hi - lo)
		width, dash := 1.3, ""
		if k == len(rows)-1 {
			width = 3
		}
		if study.SourceKind(t.Source) == study.KindManual {
			dash = ` stroke-dasharray="5 3"`
		}
		b.linked(t.Number, fmt.Sprintf(`<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f" stroke-opacity="0.85"%s><title>%s</title></polyline>`,
			strings.Join(pts, " "), ramp(u), width, dash, esc(fmt.Sprintf("%s\nval accuracy %.4f", trialText(t), *t.ValAcc))))
	}
	// Axes on top of the lines.
	for i, a := range axes {
		x := ax(i)
		b.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1.2"/>`, x, top, x, h-bottom, hex(colAxis))
		b.printf(`<text x="%.1f" y="%d" text-anchor="middle" font-size="13" font-weight="600" fill="%s">%s</text>`, x, top-14, hex(colAxis), esc(a.name))
		for _, tk := range a.ticks() {
			y := ay(tk.pos)
			b.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`, x-4, y, x, y, hex(colAxis))
			b.printf(`<text x="%.1f" y="%.1f" text-anchor="end" font-size="11" fill="%s" paint-order="stroke" stroke="#FFFFFF" stroke-width="3">%s</text>`, x-7, y+4, hex(colAxis), esc(tk.label))
		}
	}
	b.WriteString("</svg>")
	return b.String(), true
}

type axisTick struct {
	pos   float64
	label string
}

func (a axis) ticks() []axisTick {
	if a.cats != nil {
		var out []axisTick
		for i, c := range a.cats {
			out = append(out, axisTick{catPos(i, len(a.cats)), c})
		}
		return out
	}
	var out []axisTick
	for i := 0; i <= 4; i++ {
		u := float64(i) / 4
		v := a.lo + u*(a.hi-a.lo)
		if a.log {
			v = math.Pow(10, math.Log10(a.lo)+u*(math.Log10(a.hi)-math.Log10(a.lo)))
		}
		out = append(out, axisTick{u, strconv.FormatFloat(v, 'g', 3, 64)})
	}
	return out
}

func catPos(i, n int) float64 {
	if n == 1 {
		return 0.5
	}
	return float64(i) / float64(n-1)
}

// paramAxis is the axis of parameter name: categorical for strings and
// for numbers with few values (in the spec's order when it has choices),
// else linear, or logarithmic when the values span more than a decade.
func paramAxis(spec *study.Spec, name string, rows []study.TrialInfo) axis {
	a := axis{name: name}
	var nums []float64
	seen := map[string]bool{}
	var labels []string
	numeric := true
	for _, t := range rows {
		v, ok := t.Params[name]
		if !ok {
			continue
		}
		l := paramLabel(v)
		if !seen[l] {
			seen[l] = true
			labels = append(labels, l)
		}
		if f, ok := number(v); ok {
			nums = append(nums, f)
		} else {
			numeric = false
		}
	}
	if numeric && len(nums) > 0 {
		sort.Float64s(nums)
	}
	if !numeric || len(labels) <= 6 {
		a.cats = specOrder(spec, name, labels, numeric)
		index := map[string]int{}
		for i, c := range a.cats {
			index[c] = i
		}
		a.value = func(t study.TrialInfo) (float64, bool) {
			v, ok := t.Params[name]
			if !ok {
				return 0, false
			}
			return catPos(index[paramLabel(v)], len(a.cats)), true
		}
		return a
	}
	a.lo, a.hi = nums[0], nums[len(nums)-1]
	a.log = a.lo > 0 && a.hi/a.lo > 10
	a.value = func(t study.TrialInfo) (float64, bool) {
		f, ok := number(t.Params[name])
		if !ok {
			return 0, false
		}
		if a.log {
			return (math.Log10(f) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo)), true
		}
		return (f - a.lo) / (a.hi - a.lo), true
	}
	return a
}

// specOrder orders the values of a categorical axis: the spec's optimizers
// in their order, numbers ascending, other strings by name.
func specOrder(spec *study.Spec, name string, labels []string, numeric bool) []string {
	if numeric {
		sort.Slice(labels, func(i, j int) bool {
			a, _ := strconv.ParseFloat(labels[i], 64)
			b, _ := strconv.ParseFloat(labels[j], 64)
			return a < b
		})
		return labels
	}
	var out []string
	if spec != nil && name == search.ParamOptimizer {
		for _, o := range spec.Space.Optimizers {
			if contains(labels, o) {
				out = append(out, o)
			}
		}
	}
	rest := []string{}
	for _, l := range labels {
		if !contains(out, l) {
			rest = append(rest, l)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func paramLabel(v any) string {
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	return fmt.Sprint(v)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// paramOrder is lr, optimizer, batch, then any other parameter by name.
func paramOrder(names map[string]bool) []string {
	var out []string
	for _, n := range []string{search.ParamLR, search.ParamOptimizer, search.ParamBatch} {
		if names[n] {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range names {
		if !contains(out, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// ramp is a colour from light (u = 0, the worst) to the sampled blue and
// dark navy (u = 1, the best).
func ramp(u float64) string {
	stops := [][3]float64{{0xc9, 0xd6, 0xe3}, {0x6f, 0xa8, 0xdc}, {0x1f, 0x6f, 0xb4}, {0x0b, 0x2a, 0x5b}}
	u = math.Max(0, math.Min(1, u)) * float64(len(stops)-1)
	i := min(int(u), len(stops)-2)
	f := u - float64(i)
	var c [3]int
	for k := range c {
		c[k] = int(stops[i][k] + f*(stops[i+1][k]-stops[i][k]) + 0.5)
	}
	return fmt.Sprintf("#%02X%02X%02X", c[0], c[1], c[2])
}
