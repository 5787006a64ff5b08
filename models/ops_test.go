package models

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGradientsMatchFiniteDifferences checks the hand-written operators
// (im2col/col2im, bias add, ReLU, max pooling with an odd input size,
// softmax cross-entropy; with gorgonia's matrix product and sigmoid) against central finite differences of the loss,
// for the weights and for the input.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	randT := func(shape ...int) *tensor.Dense {
		d := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
		for i := range d.Data().([]float32) {
			d.Data().([]float32)[i] = float32(r.NormFloat64())
		}
		return d
	}
	const n = 2
	vals := []*tensor.Dense{
		randT(n, 7, 7, 2), // x
		randT(3*3*2, 3),   // conv kernel
		randT(3),          // conv bias
		randT(2*2*3, 4),   // dense
		randT(4),          // dense bias
	}
	target := tensor.New(tensor.WithShape(n, 4), tensor.Of(tensor.Float32))
	target.Data().([]float32)[2] = 0.5 // example 0: class 2, mean over 2
	target.Data().([]float32)[4+1] = 0.5

	graphMu.Lock()
	g := G.NewGraph()
	var nodes []*G.Node
	for i, v := range vals {
		nodes = append(nodes, G.NewTensor(g, tensor.Float32, v.Dims(), G.WithShape(v.Shape()...),
			G.WithValue(v), G.WithName(string(rune('a'+i)))))
	}
	tn := G.NewTensor(g, tensor.Float32, 2, G.WithShape(n, 4), G.WithValue(target), G.WithName("t"))
	b := &builder{g: g}
	h := b.flatten(b.maxPool(b.convReLU(nodes[0], nodes[1], nodes[2])))
	logits := b.dense(b.sigmoid(h), nodes[3], nodes[4])
	xent := newXentOp()
	loss := b.apply("loss", xent, logits, tn)
	if b.err != nil {
		graphMu.Unlock()
		t.Fatal(b.err)
	}
	grads, err := G.Grad(loss, nodes...)
	if err != nil {
		graphMu.Unlock()
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	graphMu.Unlock()

	run := func() float64 {
		t.Helper()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Reset()
		return xent.loss
	}
	run()
	analytic := make([][]float32, len(grads))
	for i, gn := range grads {
		d, err := f32s(gn.Value())
		if err != nil {
			t.Fatal(err)
		}
		analytic[i] = append([]float32(nil), d...)
	}
	const eps = 1e-3
	for i, v := range vals {
		w := v.Data().([]float32)
		checked := 0
		for j := 0; j < len(w); j += 1 + len(w)/40 {
			orig := w[j]
			w[j] = orig + eps
			up := run()
			w[j] = orig - eps
			down := run()
			w[j] = orig
			num := (up - down) / (2 * eps)
			ana := float64(analytic[i][j])
			if math.Abs(num-ana) > 2e-3+0.02*math.Abs(ana) {
				t.Errorf("input %d [%d]: analytic gradient %.5f, numerical %.5f", i, j, ana, num)
			}
			checked++
		}
		if checked == 0 {
			t.Fatalf("input %d: nothing checked", i)
		}
	}
}

// TestXentStable checks that huge logits give a finite, exact loss (where
// gorgonia's LogSoftMax, taking each row's maximum from the wrong element,
// overflows on row 1) and that a padding row (zero targets) is ignored.
func TestXentStable(t *testing.T) {
	x := []float32{
		0, 1000, -1000, // target class 1: loss ~0, correct
		2000, 0, 0, // target class 2: loss 2000, wrong
		1e30, 5, 7, // padding
	}
	tg := []float32{
		0, 0.5, 0,
		0, 0, 0.5,
		0, 0, 0,
	}
	loss, correct := xentForward(x, tg, 3)
	if math.Abs(loss-1000) > 1e-9 {
		t.Errorf("loss = %v, want 0.5·0 + 0.5·2000 = 1000", loss)
	}
	if correct != 1 {
		t.Errorf("correct = %d, want 1", correct)
	}
}
