package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/c-bata/goptuna"

	"github.com/fmtune/fmtune/study"
	"github.com/fmtune/fmtune/study/report"
)

// trialView is what a trial's page shows.
type trialView struct {
	Study  string
	Info   study.TrialInfo
	Figure template.HTML
	Params []kv
	Facts  []kv
	Epochs []epochRow
	User   []kv
	System []kv
}

type kv struct{ Key, Value string }

type epochRow struct {
	Epoch                                               int
	Step, TrainLoss, TrainAcc, ValLoss, ValAcc, Seconds string
}

func (s *Server) trialPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	number, err := strconv.Atoi(r.PathValue("number"))
	if err != nil || number < 0 {
		s.fail(w, r, http.StatusNotFound, "No such trial", fmt.Sprintf("%q is not a trial number.", r.PathValue("number")))
		return
	}
	id, err := s.store.GetStudyIDFromName(name)
	if err != nil {
		if !s.notFound(w, r, err) {
			s.fail(w, r, http.StatusInternalServerError, "Cannot read the study", err.Error())
		}
		return
	}
	token := s.version(id)
	if c, ok := s.fresh(r.URL.Path, token); ok {
		s.write(w, r, c)
		return
	}
	trials, err := s.store.GetAllTrials(id)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "Cannot read the study", err.Error())
		return
	}
	var ft *goptuna.FrozenTrial
	for i := range trials {
		if trials[i].Number == number {
			ft = &trials[i]
		}
	}
	if ft == nil {
		s.fail(w, r, http.StatusNotFound, "No such trial", fmt.Sprintf("Study %q has no trial #%d.", name, number))
		return
	}
	v := trialData(name, *ft)
	source := fmt.Sprintf("%v", *ft)
	title := fmt.Sprintf("trial #%d", number)
	s.serve(w, r, token, page{Title: title + " · " + name, Here: title, Crumbs: []crumb{{"Studies", "/"}, {name, studyURL(name)}}}, source, func() ([]byte, error) {
		fig, ok, err := report.TrialFigure(v.Info)
		if err != nil {
			return nil, err
		}
		if ok {
			v.Figure = fig
		}
		var buf bytes.Buffer
		err = s.pages.ExecuteTemplate(&buf, "trial.html", v)
		return buf.Bytes(), err
	})
}

func trialData(name string, ft goptuna.FrozenTrial) trialView {
	info := study.Info(ft)
	v := trialView{Study: name, Info: info}
	for _, k := range sortedKeys(info.Params) {
		v.Params = append(v.Params, kv{k, fmt.Sprint(info.Params[k])})
	}
	add := func(k, val string) {
		if val != "" {
			v.Facts = append(v.Facts, kv{k, val})
		}
	}
	add("state", info.State)
	add("source", info.Source)
	if info.ValAcc != nil {
		add("validation accuracy (objective)", fmt.Sprintf("%.4f", *info.ValAcc))
	}
	if info.TestAcc != nil {
		add("test accuracy", fmt.Sprintf("%.4f", *info.TestAcc))
	}
	add("epochs", strconv.Itoa(info.Epochs))
	if info.Seconds > 0 {
		add("training seconds", fmt.Sprintf("%.1f", info.Seconds))
	}
	if info.Started != nil {
		add("started", info.Started.Format("2006-01-02 15:04:05"))
	}
	if info.Completed != nil {
		add("finished", info.Completed.Format("2006-01-02 15:04:05"))
		if info.Started != nil {
			add("wall time", info.Completed.Sub(*info.Started).Round(time.Second/10).String())
		}
	}
	add("worker", info.Worker)
	add("fail reason", info.FailReason)
	add("pruned because", info.PrunedReason)
	if info.Seed != nil {
		add("seed", strconv.FormatInt(*info.Seed, 10))
	}
	// Epochs: the stored curve, or the intermediate values so far.
	byEpoch := map[int]*epochRow{}
	for e, val := range ft.IntermediateValues {
		byEpoch[e] = &epochRow{Epoch: e, Step: fmt.Sprintf("%.4f", val)}
	}
	for _, c := range info.Curve {
		row := byEpoch[c.Epoch]
		if row == nil {
			row = &epochRow{Epoch: c.Epoch, Step: "–"}
			byEpoch[c.Epoch] = row
		}
		row.TrainLoss, row.TrainAcc = fmt.Sprintf("%.4f", c.TrainLoss), fmt.Sprintf("%.4f", c.TrainAcc)
		row.ValLoss, row.ValAcc = fmt.Sprintf("%.4f", c.ValLoss), fmt.Sprintf("%.4f", c.ValAcc)
		row.Seconds = fmt.Sprintf("%.2f", c.Seconds)
	}
	for _, row := range byEpoch {
		v.Epochs = append(v.Epochs, *row)
	}
	sort.Slice(v.Epochs, func(i, j int) bool { return v.Epochs[i].Epoch < v.Epochs[j].Epoch })
	for _, k := range sortedKeys(ft.UserAttrs) {
		val := ft.UserAttrs[k]
		if k == "curve" {
			val = fmt.Sprintf("(%d epochs, shown above; %d bytes of JSON)", len(info.Curve), len(val))
		}
		v.User = append(v.User, kv{k, val})
	}
	for _, k := range sortedKeys(ft.SystemAttrs) {
		v.System = append(v.System, kv{k, ft.SystemAttrs[k]})
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
