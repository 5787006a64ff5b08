package report

import "html/template"

// style is the CSS of the report and of the dashboard's pages.
const style = `
:root { --fg: #1d1d1f; --muted: #5f6368; --line: #e2e4e8; --manual: #d95f02; --sampled: #1f6fb4; --running: #1a8a3c; --fail: #c01c28; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 28px 28px 56px; }
a { color: var(--sampled); }
.top h1 { font-size: 22px; font-weight: 650; margin: 0; letter-spacing: -0.01em; }
.top p { margin: 2px 0 0; color: var(--muted); font-size: 13px; }
.top nav a { margin-right: 12px; }
section.study { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 22px 26px 26px; margin: 22px 0; }
section.study h2 { font-size: 21px; font-weight: 650; margin: 0 0 4px; overflow-wrap: anywhere; }
.meta { margin: 0; color: var(--muted); font-size: 13px; }
h3 { font-size: 15px; font-weight: 650; margin: 28px 0 6px; }
.tablewrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; color: var(--muted); font-size: 12px; vertical-align: bottom; white-space: normal; border-bottom: 1.5px solid #c9ccd1; }
th.config, td.config, td.text, th.text { text-align: left; }
.mark { display: inline-block; width: 1.1em; font-size: 12px; }
.manual .mark { color: var(--manual); }
.sampled .mark { color: var(--sampled); }
.verdict { margin: 10px 0 0; font-size: 14px; }
figure { margin: 0; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin: 4px 0 0; max-width: 80ch; }
svg text { font-family: "fmtune-plot-sans", "Liberation Sans", Arial, Helvetica, sans-serif !important; }
.note { color: var(--muted); font-size: 12.5px; margin: 8px 0 0; }
.state { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: #eef0f3; }
.st-complete .state { background: #e3eefa; color: #17558a; }
.st-pruned .state { background: #eeeeee; color: #555; }
.st-fail .state { background: #fbe4e6; color: var(--fail); }
.st-running .state { background: #e1f4e7; color: var(--running); font-weight: 600; }
.st-running .state::before { content: "● "; animation: pulse 1.2s ease-in-out infinite; }
@keyframes pulse { 50% { opacity: 0.25; } }
tr.st-running td { background: #f6fbf7; }
.badge-running { color: var(--running); font-weight: 600; }
table.trials td.worker { color: var(--muted); max-width: 22ch; overflow: hidden; text-overflow: ellipsis; }
`

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fmtune report{{range .Studies}} · {{.Name}}{{end}}</title>
<style>
{{.Style}}
{{.FontFace}}
</style>
</head>
<body>
<main>
<header class="top">
<h1>fmtune report</h1>
<p>Manual versus automated tuning · generated {{.Generated}}</p>
{{if gt (len .Studies) 1}}<nav>{{range .Studies}}<a href="#{{.ID}}">{{.Name}}</a>{{end}}</nav>{{end}}
</header>
{{range .Studies}}{{template "study" .}}{{end}}
</main>
</body>
</html>
{{define "study"}}
<section class="study" id="{{.ID}}" data-running="{{.Running}}">
<h2>{{.Name}}</h2>
{{range .Meta}}<p class="meta">{{.}}</p>
{{end}}<p class="meta">{{.Counts}}{{if .Running}} · <span class="badge-running">{{.Running}} running</span>{{end}}</p>

<h3>Manual versus automated</h3>
<div class="tablewrap">
<table class="compare">
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
<h3>Trials</h3>
<div class="controls" hidden></div>
<div class="tablewrap">
<table class="trials">
<thead><tr><th data-sort="num" data-key="trial">Trial</th><th class="text" data-sort="text" data-key="state">State</th><th class="text" data-sort="text" data-key="source">Source</th>{{range .Columns}}<th class="param" data-sort="auto" data-key="{{.}}">{{.}}</th>{{end}}<th data-sort="num" data-key="val">Val acc</th><th data-sort="num" data-key="test">Test acc</th><th data-sort="num" data-key="epochs">Epochs</th><th data-sort="num" data-key="seconds">Seconds</th><th class="text" data-sort="text" data-key="worker">Worker</th></tr></thead>
<tbody>
{{range .Trials}}<tr class="st-{{.State}} {{.Kind}}" data-state="{{.State}}" data-kind="{{.Kind}}" data-source="{{.Source}}"><td data-v="{{.Number}}">{{if .Link}}<a href="{{.Link}}">#{{.Number}}</a>{{else}}#{{.Number}}{{end}}</td><td class="text"><span class="state"{{if .Reason}} title="{{.Reason}}"{{end}}>{{.State}}</span></td><td class="text"><span class="mark">{{if eq .Kind "manual"}}▲{{else}}●{{end}}</span>{{.Source}}</td>{{range .Params}}<td data-v="{{.V}}">{{.Text}}</td>{{end}}<td data-v="{{.Val.V}}">{{.Val.Text}}</td><td data-v="{{.Test.V}}">{{.Test.Text}}</td><td data-v="{{.Epochs.V}}">{{.Epochs.Text}}</td><td data-v="{{.Seconds.V}}">{{.Seconds.Text}}</td><td class="text worker" title="{{.Worker}}">{{.Worker}}</td></tr>
{{else}}<tr><td colspan="99" class="text">No trial yet.</td></tr>
{{end}}</tbody>
</table>
</div>
</section>
{{end}}
`))
