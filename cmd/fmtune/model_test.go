package main

import (
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models"
	"github.com/fmtune/fmtune/study"

	"github.com/fmtune/fmtune/internal/testenv"
)

// python is Debian's interpreter, which has python3-torch and numpy.
const python = "/usr/bin/python3"

// torchRef is where torch_train.py, the PyTorch reference, lives beside the
// repository ($TORCH_REF as in docs/compare-pytorch.sh); without it
// testdata/torch_check.py uses its copy of the reference's modules.
func torchRef() string {
	if d := os.Getenv("TORCH_REF"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "reference")
}

func requireTorch(t *testing.T) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import torch, numpy").CombinedOutput()
	if err != nil {
		testenv.Skip(t, "torch", "PyTorch interoperability skipped: %s cannot import torch and numpy (apt-get install python3-torch): %v: %s",
			python, err, strings.TrimSpace(string(out)))
	}
}

// TestSavedModelEvaluatesLikeItsTrial tunes a tiny study per architecture,
// saves its best model and checks that the file gives the trial's stored
// test accuracy exactly in fmtune (evaluate and predict), and within 0.001
// in PyTorch's reference architecture.
func TestSavedModelEvaluatesLikeItsTrial(t *testing.T) {
	needData(t)
	requireTorch(t)
	dir := t.TempDir()
	// The real images, fewer of them: 2,500 training and 2,000 test images
	// keep the test quick (it runs under -race too).
	dataDir := realSubset(t, filepath.Join(dir, "data"), 2500, 2000)
	ds, err := data.Load(dataDir, data.Options{Val: 500})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	fmtuneAcc := map[string]float64{}
	for _, arch := range models.ArchNames() {
		out, errOut, code := runFmtune(t, dir, "tune", "--study", arch, "--arch", arch, "--trials", "1", "--epochs", "1",
			"--data", dataDir, "--val", "500", "--workers", "1", "-q", "--lr", "0.01", "--optimizers", "adam", "--batch", "128")
		if code != 0 {
			t.Fatalf("tune %s: exit %d\n%s%s", arch, code, out, errOut)
		}
		out, errOut, code = runFmtune(t, dir, "best", arch, "--json")
		if code != 0 {
			t.Fatalf("best %s: exit %d\n%s", arch, code, errOut)
		}
		var best struct {
			Number  int      `json:"number"`
			TestAcc *float64 `json:"test_accuracy"`
		}
		if err := json.Unmarshal([]byte(out), &best); err != nil || best.TestAcc == nil {
			t.Fatalf("best --json: %v\n%s", err, out)
		}
		file := filepath.Join(dir, arch+".safetensors")
		if _, errOut, code = runFmtune(t, dir, "best", arch, "--save", file); code != 0 {
			t.Fatalf("best --save: exit %d\n%s", code, errOut)
		}
		out, errOut, code = runFmtune(t, dir, "evaluate", file, "--json", "--data", dataDir)
		if code != 0 {
			t.Fatalf("evaluate: exit %d\n%s", code, errOut)
		}
		var ev evaluation
		if err := json.Unmarshal([]byte(out), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.TestAccuracy != *best.TestAcc {
			t.Errorf("%s: evaluate gives test accuracy %v, trial %d stored %v", arch, ev.TestAccuracy, best.Number, *best.TestAcc)
		}
		if ev.Arch != arch || ev.Metadata["trial"] != strconv.Itoa(best.Number) || ev.DataMatches == nil || !*ev.DataMatches ||
			ev.Confusion.Accuracy() != ev.TestAccuracy || len(ev.Classes) != data.Classes {
			t.Errorf("%s: evaluate --json: %+v", arch, ev)
		}

		// predict: one row per test image; as many right as the accuracy says.
		csvPath := filepath.Join(dir, arch+".csv")
		images := filepath.Join(dataDir, "t10k-images-idx3-ubyte")
		if _, errOut, code = runFmtune(t, dir, "predict", file, images, "--out", csvPath); code != 0 {
			t.Fatalf("predict: exit %d\n%s", code, errOut)
		}
		f, err := os.Open(csvPath)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != ds.Test.Len()+1 || strings.Join(rows[0], ",") != "index,class,name" {
			t.Fatalf("predict wrote %d rows, header %v", len(rows), rows[0])
		}
		right := 0
		for i, r := range rows[1:] {
			c, _ := strconv.Atoi(r[1])
			if r[0] != strconv.Itoa(i) || r[2] != data.ClassNames[c] {
				t.Fatalf("row %d: %v", i+1, r)
			}
			if uint8(c) == ds.Test.Labels[i] {
				right++
			}
		}
		if acc := float64(right) / float64(ds.Test.Len()); acc != ev.TestAccuracy {
			t.Errorf("%s: predict is right on %v of the images, evaluate says %v", arch, acc, ev.TestAccuracy)
		}
		files = append(files, file)
		fmtuneAcc[file] = ev.TestAccuracy
	}

	// studies reports the cost: one kept model per study, 4 bytes a parameter.
	out, errOut, code := runFmtune(t, dir, "studies", "--json")
	if code != 0 {
		t.Fatalf("studies: exit %d\n%s", code, errOut)
	}
	var list []study.StudyInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		for _, a := range models.Archs() {
			if a.Name == s.Arch && (s.KeptModels != 1 || s.KeptModelBytes != 4*a.Params) {
				t.Errorf("studies: %s keeps %d models of %d bytes, want 1 of %d", s.Name, s.KeptModels, s.KeptModelBytes, 4*a.Params)
			}
		}
	}

	cmd := exec.Command(python, append([]string{filepath.Join("testdata", "torch_check.py"), dataDir, torchRef()}, files...)...)
	pyOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("torch_check.py: %v\n%s", err, pyOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(pyOut)), "\n") {
		var r struct {
			File      string  `json:"file"`
			Arch      string  `json:"arch"`
			TestAcc   float64 `json:"test_acc"`
			Reference string  `json:"reference"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("torch_check.py printed %q: %v", line, err)
		}
		want, ok := fmtuneAcc[r.File]
		if !ok {
			t.Fatalf("torch_check.py: unknown file %q", r.File)
		}
		delete(fmtuneAcc, r.File)
		t.Logf("%s: fmtune %.4f, PyTorch %.4f (%s)", r.Arch, want, r.TestAcc, r.Reference)
		if math.Abs(r.TestAcc-want) > 0.001 {
			t.Errorf("%s: PyTorch's test accuracy %v, fmtune's %v: more than 0.001 apart", r.Arch, r.TestAcc, want)
		}
	}
	if len(fmtuneAcc) > 0 {
		t.Errorf("torch_check.py did not check %v", fmtuneAcc)
	}
}

// realSubset writes the first nTrain training and nTest test images of the
// real Fashion-MNIST, with their labels, as raw IDX files in dir.
func realSubset(t *testing.T, dir string, nTrain, nTest int) string {
	t.Helper()
	src, err := data.Locate("")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.Load(src, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	train := &data.Set{Images: ds.Train.Images[:nTrain*data.Pixels], Labels: ds.Train.Labels[:nTrain]}
	test := ds.Test.Slice(0, nTest)
	for _, f := range []struct {
		name string
		dims []uint32
		body []byte
	}{
		{"train-images-idx3-ubyte", []uint32{uint32(nTrain), 28, 28}, train.Images},
		{"train-labels-idx1-ubyte", []uint32{uint32(nTrain)}, train.Labels},
		{"t10k-images-idx3-ubyte", []uint32{uint32(nTest), 28, 28}, test.Images},
		{"t10k-labels-idx1-ubyte", []uint32{uint32(nTest)}, test.Labels},
	} {
		b := []byte{0, 0, 8, byte(len(f.dims))}
		for _, d := range f.dims {
			b = binary.BigEndian.AppendUint32(b, d)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), append(b, f.body...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
