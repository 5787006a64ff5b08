package models

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fmtune/fmtune/data"
)

// randomSet is n images of random pixels with random labels.
func randomSet(n int, seed uint64) *data.Set {
	s := &data.Set{Images: make([]uint8, n*data.Pixels), Labels: make([]uint8, n)}
	x := seed | 1
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := range s.Images {
		s.Images[i] = uint8(next())
	}
	for i := range s.Labels {
		s.Labels[i] = uint8(next() % data.Classes)
	}
	return s
}

// logitsOf returns the model's logits for every example of set.
func logitsOf(t *testing.T, m *Model, set *data.Set) [][]float32 {
	t.Helper()
	var out [][]float32
	if err := m.forward(t.Context(), set, func(_ int, l []float32) { out = append(out, append([]float32(nil), l...)) }); err != nil {
		t.Fatal(err)
	}
	return out
}

// torchForward computes the logits of one image from tensors in PyTorch's
// layout the way torch_train.py's modules do (NCHW, Linear y = x W^T + b),
// naively and in float64: an independent check of the exported layout.
func torchForward(archName string, ts map[string]Tensor, img []uint8) []float64 {
	x := make([]float64, len(img)) // (1, 28, 28)
	for i, p := range img {
		x[i] = float64(p) / 255
	}
	linear := func(name string, in []float64) []float64 {
		w, b := ts[name+".weight"], ts[name+".bias"]
		out := make([]float64, w.Shape[0])
		for o := range out {
			s := float64(b.Data[o])
			for i, v := range in {
				s += float64(w.Data[o*w.Shape[1]+i]) * v
			}
			out[o] = s
		}
		return out
	}
	relu := func(v []float64) []float64 {
		for i := range v {
			v[i] = max(v[i], 0)
		}
		return v
	}
	// convPool is relu(conv2d(x)) then max_pool2d(2) on (c, side, side).
	convPool := func(name string, in []float64, c, side int) ([]float64, int) {
		w, b := ts[name+".weight"], ts[name+".bias"]
		f, k := w.Shape[0], w.Shape[2]
		os := side - k + 1
		conv := make([]float64, f*os*os)
		for o := range f {
			for y := range os {
				for xx := range os {
					s := float64(b.Data[o])
					for ch := range c {
						for ky := range k {
							for kx := range k {
								s += float64(w.Data[((o*c+ch)*k+ky)*k+kx]) * in[(ch*side+y+ky)*side+xx+kx]
							}
						}
					}
					conv[(o*os+y)*os+xx] = max(s, 0)
				}
			}
		}
		ps := os / 2
		out := make([]float64, f*ps*ps)
		for o := range f {
			for y := range ps {
				for xx := range ps {
					m := math.Inf(-1)
					for dy := range 2 {
						for dx := range 2 {
							m = max(m, conv[(o*os+2*y+dy)*os+2*xx+dx])
						}
					}
					out[(o*ps+y)*ps+xx] = m
				}
			}
		}
		return out, ps
	}
	switch archName {
	case "mlp":
		h := linear("dense1", x)
		for i := range h {
			h[i] = 1 / (1 + math.Exp(-h[i]))
		}
		return linear("out", h)
	case "deep":
		h := relu(linear("dense1", x))
		h = relu(linear("dense2", h))
		h = relu(linear("dense3", h))
		return linear("out", h)
	default:
		h, side := convPool("conv1", x, 1, 28)
		h, _ = convPool("conv2", h, 32, side)
		h = relu(linear("dense1", h))
		return linear("out", h)
	}
}

func TestTensorsHavePyTorchLayout(t *testing.T) {
	set := randomSet(3, 7)
	for _, name := range ArchNames() {
		t.Run(name, func(t *testing.T) {
			m, err := NewModel(name, 11)
			if err != nil {
				t.Fatal(err)
			}
			// Non-zero biases, so that a misplaced bias shows.
			off := 0
			for _, p := range m.arch.params {
				size := p.shape.TotalSize()
				if strings.HasSuffix(p.name, "/b") {
					for i := range size {
						m.flat[off+i] = 0.01 * float32(i%7-3)
					}
				}
				off += size
			}
			ts := map[string]Tensor{}
			specs := TensorSpecs(name)
			for i, tensor := range m.Tensors() {
				ts[tensor.Name] = tensor
				if tensor.Name != specs[i].Name || !slices.Equal(tensor.Shape, specs[i].Shape) {
					t.Errorf("tensor %d: %s %v, TensorSpecs says %s %v", i, tensor.Name, tensor.Shape, specs[i].Name, specs[i].Shape)
				}
			}
			got := logitsOf(t, m, set)
			for i := range set.Len() {
				want := torchForward(name, ts, set.Image(i))
				for c := range want {
					if d := math.Abs(float64(got[i][c]) - want[c]); d > 1e-4*max(1, math.Abs(want[c])) {
						t.Fatalf("image %d class %d: fmtune logit %v, PyTorch-layout reference %v", i, c, got[i][c], want[c])
					}
				}
			}
		})
	}
}

func TestWeightsRoundTrip(t *testing.T) {
	set := randomSet(5, 3)
	for _, name := range ArchNames() {
		t.Run(name, func(t *testing.T) {
			m, err := NewModel(name, 5)
			if err != nil {
				t.Fatal(err)
			}
			want := logitsOf(t, m, set)
			fromBytes, err := LoadWeights(name, m.Weights())
			if err != nil {
				t.Fatal(err)
			}
			fromTensors, err := FromTensors(name, m.Tensors())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.safetensors")
			if err := WriteModelFile(path, m, map[string]string{"study": "s"}); err != nil {
				t.Fatal(err)
			}
			fromFile, meta, err := ReadModelFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if meta[MetaArch] != name || meta["study"] != "s" {
				t.Errorf("metadata %v", meta)
			}
			for what, m2 := range map[string]*Model{"LoadWeights": fromBytes, "FromTensors": fromTensors, "ReadModelFile": fromFile} {
				if string(m2.Weights()) != string(m.Weights()) {
					t.Errorf("%s: the weights differ", what)
				}
				got := logitsOf(t, m2, set)
				for i := range got {
					for c := range got[i] {
						if got[i][c] != want[i][c] {
							t.Fatalf("%s: logits differ", what)
						}
					}
				}
			}
			if _, err := LoadWeights(name, m.Weights()[4:]); err == nil {
				t.Error("LoadWeights accepted a short buffer")
			}
		})
	}
}

// header rewrites the JSON header of a safetensors file.
func withHeader(t *testing.T, file []byte, edit func(h map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	var h map[string]any
	if err := json.Unmarshal(file[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	hb, _ := json.Marshal(h)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	out = append(out, hb...)
	return append(out, file[8+n:]...)
}

func TestBadModelFiles(t *testing.T) {
	m, err := NewModel("mlp", 1)
	if err != nil {
		t.Fatal(err)
	}
	good := EncodeSafetensors(m, nil)
	cnn, _ := NewModel("cnn", 1)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"truncated header", good[:100], "does not fit"},
		{"truncated data", good[:len(good)-10], "outside"},
		{"trailing data", append(append([]byte(nil), good...), 0, 0, 0, 0), "cover"},
		{"not safetensors", []byte("\x89PNG\r\n\x1a\n and then some image bytes"), "does not fit"},
		{"header not JSON", append(binary.LittleEndian.AppendUint64(nil, 4), "abcd"...), "not a JSON object"},
		{"no arch", withHeader(t, good, func(h map[string]any) { delete(h["__metadata__"].(map[string]any), "arch") }), "not written by fmtune"},
		{"unknown arch", withHeader(t, good, func(h map[string]any) { h["__metadata__"].(map[string]any)["arch"] = "resnet" }), `unknown architecture "resnet"`},
		{"other arch's shapes", withHeader(t, good, func(h map[string]any) { h["__metadata__"].(map[string]any)["arch"] = "deep" }), "wants"},
		{"cnn weights called mlp", withHeader(t, EncodeSafetensors(cnn, nil), func(h map[string]any) { h["__metadata__"].(map[string]any)["arch"] = "mlp" }), "the mlp architecture has 4"},
		{"float16", withHeader(t, good, func(h map[string]any) { h["out.bias"].(map[string]any)["dtype"] = "F16" }), "dtype F16"},
		{"bad offsets", withHeader(t, good, func(h map[string]any) { h["out.bias"].(map[string]any)["data_offsets"] = []int{-4, 36} }), "outside"},
		{"overlap", withHeader(t, good, func(h map[string]any) {
			h["out.bias"].(map[string]any)["data_offsets"] = h["dense1.bias"].(map[string]any)["data_offsets"]
			h["out.bias"].(map[string]any)["shape"] = []int{32}
		}), "overlap"},
		{"renamed tensor", withHeader(t, good, func(h map[string]any) { h["weight"] = h["out.bias"]; delete(h, "out.bias") }), "no tensor out.bias"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := DecodeSafetensors(c.file)
			if !errors.Is(err, ErrModelFile) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want ErrModelFile saying %q", err, c.want)
			}
		})
	}
}

func TestWriteModelFileIsAtomic(t *testing.T) {
	dir := t.TempDir()
	m, _ := NewModel("mlp", 1)
	path := filepath.Join(dir, "m.safetensors")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteModelFile(path, m, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadModelFile(path); err != nil {
		t.Fatal(err)
	}
	// A write that cannot complete (the target is a directory) leaves
	// the target alone and no temporary file behind.
	target := filepath.Join(dir, "d")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteModelFile(target, m, nil); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		t.Fatalf("target changed: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want m.safetensors and d only", names)
	}
}

func TestEvaluateConfusionAgreesWithEvaluate(t *testing.T) {
	set := randomSet(1100, 9) // more than one evaluation batch, the last one partial
	m, _ := NewModel("deep", 3)
	loss, acc, err := m.Evaluate(set)
	if err != nil {
		t.Fatal(err)
	}
	loss2, conf, err := m.EvaluateConfusion(set)
	if err != nil {
		t.Fatal(err)
	}
	conf2, err := m.Confusion(set)
	if err != nil {
		t.Fatal(err)
	}
	if loss2 != loss || conf.Accuracy() != acc || conf != conf2 || conf.Total() != set.Len() {
		t.Errorf("EvaluateConfusion: loss %v acc %v; Evaluate: loss %v acc %v", loss2, conf.Accuracy(), loss, acc)
	}
}
