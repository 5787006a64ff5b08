package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

func TestReportShowsTheBestKeptModelsConfusionMatrix(t *testing.T) {
	store := openStore(t)
	newStudy(t, store, "kept", demoTrials)
	newStudy(t, store, "bare", demoTrials[:2])
	sid, err := store.GetStudyIDFromName("kept")
	if err != nil {
		t.Fatal(err)
	}
	trials, err := store.GetAllTrials(sid)
	if err != nil {
		t.Fatal(err)
	}
	// Keep models of trials 0 and 1 (the best, 0.86); their matrices differ.
	for _, n := range []int{0, 1} {
		var c models.Confusion
		for k := range c {
			c[k][k] = 90 + n
			c[k][(k+1)%10] = 10 - n
		}
		c[6][2] = 4242 // a mark to find in the page
		if n == 0 {
			c[6][2] = 17
		}
		meta, _ := json.Marshal(study.ModelMeta{Trial: n, TestAcc: 0.85, Confusion: &c})
		if _, err := store.KeepModel(storage.KeptModel{StudyID: sid, TrialID: trials[n].ID, Arch: "mlp", Value: trials[n].Value, Meta: string(meta), Weights: []byte("w")}, 3); err != nil {
			t.Fatal(err)
		}
	}
	page, in := render(t, store, "kept", "bare")
	if in[0].Confusion == nil || in[0].Confusion.Trial != 1 || in[1].Confusion != nil {
		t.Fatalf("loaded confusion matrices: %+v, %+v", in[0].Confusion, in[1].Confusion)
	}
	if n := strings.Count(page, "Confusion matrix of the best kept model"); n != 1 {
		t.Fatalf("%d confusion matrices in the page, want 1 (the study without kept models has none)", n)
	}
	for _, want := range []string{"(trial #1)", ">4242</td>", "<td>6 Shirt</td>", `title="Ankle boot"`, "fmtune best kept --save FILE"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
