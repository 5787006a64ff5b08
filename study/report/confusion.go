package report

// The best kept model's confusion matrix on the test set, as an HTML table
// whose cells are shaded by their share of the row.

import (
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"strings"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/study"
)

// BestConfusion is the test confusion matrix of a study's best kept model.
type BestConfusion struct {
	Study     string
	Trial     int
	TestAcc   float64
	Confusion models.Confusion
}

// loadConfusion reads the confusion matrix of the best kept model of the
// study, or nil when the storage keeps none for it.
func loadConfusion(store goptuna.Storage, name string) *BestConfusion {
	mk, ok := store.(study.ModelKeeper)
	if !ok {
		return nil
	}
	id, err := store.GetStudyIDFromName(name)
	if err != nil {
		return nil
	}
	kept, err := mk.KeptModels(id)
	if err != nil || len(kept) == 0 {
		return nil
	}
	var meta study.ModelMeta
	if json.Unmarshal([]byte(kept[0].Meta), &meta) != nil || meta.Confusion == nil {
		return nil
	}
	return &BestConfusion{Study: name, Trial: kept[0].Number, TestAcc: meta.TestAcc, Confusion: *meta.Confusion}
}

// confusionTable draws c as an HTML table (empty for nil): rows are the
// true classes, columns the predicted ones; a cell's blue (orange off the
// diagonal) is its share of the row.
func confusionTable(c *BestConfusion) template.HTML {
	if c == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<h3>Confusion matrix of the best kept model (trial #%d)</h3>\n", c.Trial)
	b.WriteString(`<div class="tablewrap"><table class="confusion"><thead><tr><th>true \ predicted</th>`)
	for k := range data.Classes {
		fmt.Fprintf(&b, `<th title="%s">%d %s</th>`, html.EscapeString(data.ClassNames[k]), k, html.EscapeString(data.ClassNames[k]))
	}
	b.WriteString("<th>accuracy</th></tr></thead>\n<tbody>\n")
	perClass := c.Confusion.ClassAccuracy()
	for t, row := range c.Confusion {
		total := 0
		for _, v := range row {
			total += v
		}
		fmt.Fprintf(&b, "<tr><td>%d %s</td>", t, html.EscapeString(data.ClassNames[t]))
		for p, v := range row {
			share := 0.0
			if total > 0 {
				share = float64(v) / float64(total)
			}
			// Right: blue by share; mistaken: orange, twice as strong (its
			// shares are small).
			color, alpha := "217,95,2", min(0.85, 1.7*share)
			if p == t {
				color, alpha = "31,111,180", 0.85*share
			}
			fmt.Fprintf(&b, `<td style="background: rgba(%s,%.2f)">%d</td>`, color, alpha, v)
		}
		fmt.Fprintf(&b, "<td>%.3f</td></tr>\n", perClass[t])
	}
	b.WriteString("</tbody></table></div>\n")
	fmt.Fprintf(&b, `<p class="note">On the %d test images; test accuracy %.4f. Rows are the true classes, columns the predicted ones; a cell is shaded by its share of its row (blue: right, orange: mistaken for that class). `+
		"<code>fmtune best %s --save FILE</code> writes this model; <code>fmtune evaluate FILE</code> prints the same matrix.</p>\n", c.Confusion.Total(), c.TestAcc, html.EscapeString(c.Study))
	return template.HTML(b.String()) //nolint:gosec // built here from numbers and escaped class names
}
