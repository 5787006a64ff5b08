package models

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/fmtune/fmtune/models/kernels"
)

// TestGradientsMatchFiniteDifferences checks the operators (convolution +
// max pooling with an odd input size + ReLU, dense with sigmoid and
// linear, softmax cross-entropy) against central finite differences of the
// loss, for the weights and for the input, on two threads.
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
	t.Run("two channels, input gradient", func(t *testing.T) {
		checkGradients(t, n, false, []*tensor.Dense{
			randT(n, 7, 7, 2), // x
			randT(3*3*2, 3),   // conv kernel
			randT(3),          // conv bias
			randT(2*2*3, 5),   // dense, sigmoid
			randT(5),          // dense bias
			randT(5, 4),       // dense, linear
			randT(4),          // dense bias
		})
	})
	t.Run("one channel, direct convolution", func(t *testing.T) {
		checkGradients(t, n, true, []*tensor.Dense{
			randT(n, 8, 7, 1), // x: the graph's input, no gradient
			randT(3*3*1, 3),   // conv kernel
			randT(3),          // conv bias
			randT(3*2*3, 5),   // dense, sigmoid
			randT(5),          // dense bias
			randT(5, 4),       // dense, linear
			randT(4),          // dense bias
		})
	})
}

// checkGradients builds conv+pool -> dense sigmoid -> dense -> softmax
// cross-entropy on vals (x, then the weights), runs it on gorgonia's
// TapeMachine with two threads per operator, and compares each gradient
// with central finite differences of the loss. With xIsInput, x is the
// graph's input (no gradient, the first layer's shortcuts apply).
func checkGradients(t *testing.T, n int, xIsInput bool, vals []*tensor.Dense) {
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
	b := &builder{g: g, team: &kernels.Team{Threads: 2}, grads: map[*G.Node][]float32{}}
	wrt := nodes
	if xIsInput {
		b.input, wrt = nodes[0], nodes[1:]
	}
	h := b.convPool(nodes[0], nodes[1], nodes[2])
	h = b.dense(h, nodes[3], nodes[4], kernels.Sigmoid)
	logits := b.dense(h, nodes[5], nodes[6], kernels.Linear)
	xent := newXentOp(n, 4)
	loss := b.apply("loss", xent, logits, tn)
	if b.err != nil {
		graphMu.Unlock()
		t.Fatal(b.err)
	}
	grads, err := G.Grad(loss, wrt...)
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
	for i, v := range vals[len(vals)-len(wrt):] {
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
