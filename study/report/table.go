package report

import (
	"fmt"
	"strconv"

	"github.com/fmtune/fmtune/study"
)

// trialRow is one line of the trial table. Every cell carries its text
// and, for sorting, its value (V: a number, or the text).
type trialRow struct {
	Number       int
	Link         string // the trial's page, "" without links
	State        string
	Source, Kind string
	Params       []cell
	Val, Test    cell
	Epochs       cell
	Seconds      cell
	Worker       string
	Reason       string // why a failed trial failed, or fmtune pruned one
}

type cell struct{ Text, V string }

func numCell(v *float64, format string) cell {
	if v == nil {
		return cell{"–", ""}
	}
	return cell{fmt.Sprintf(format, *v), strconv.FormatFloat(*v, 'g', -1, 64)}
}

// trialTable is the trial table: its parameter columns (lr, optimizer,
// batch, then any other) and one row per trial in number order.
func trialTable(trials []study.TrialInfo, link func(int) string) ([]string, []trialRow) {
	names := map[string]bool{}
	for _, t := range trials {
		for k := range t.Params {
			names[k] = true
		}
	}
	cols := paramOrder(names)
	rows := make([]trialRow, 0, len(trials))
	for _, t := range trials {
		r := trialRow{Number: t.Number, State: t.State, Source: t.Source, Kind: study.SourceKind(t.Source),
			Val: numCell(t.ValAcc, "%.4f"), Test: numCell(t.TestAcc, "%.4f"), Worker: t.Worker, Reason: t.FailReason + t.PrunedReason}
		if link != nil {
			r.Link = link(t.Number)
		}
		for _, c := range cols {
			v, ok := t.Params[c]
			switch {
			case !ok:
				r.Params = append(r.Params, cell{"–", ""})
			default:
				f, isNum := number(v)
				if isNum {
					r.Params = append(r.Params, cell{paramLabel(v), strconv.FormatFloat(f, 'g', -1, 64)})
				} else {
					r.Params = append(r.Params, cell{fmt.Sprint(v), fmt.Sprint(v)})
				}
			}
		}
		e := float64(t.Epochs)
		r.Epochs = numCell(&e, "%.0f")
		if t.Seconds > 0 || t.State == "complete" || t.State == "pruned" {
			sec := t.Seconds
			r.Seconds = numCell(&sec, "%.1f")
		} else {
			r.Seconds = cell{"–", ""}
		}
		rows = append(rows, r)
	}
	return cols, rows
}
