package models

import (
	"fmt"
	"math"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models/kernels"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ArchInfo describes one architecture.
type ArchInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Params      int    `json:"params"` // exact number of trainable parameters
}

// Archs lists the architectures in a fixed order: mlp, deep, cnn,
// cnn-dropout.
func Archs() []ArchInfo {
	out := make([]ArchInfo, len(archs))
	for i, a := range archs {
		out[i] = ArchInfo{Name: a.name, Description: a.desc, Params: a.paramCount()}
	}
	return out
}

// paramSpec is one weight tensor. fanIn and fanOut drive Glorot-uniform
// initialisation; a bias (fanIn 0) starts at zero.
type paramSpec struct {
	name          string
	shape         tensor.Shape
	fanIn, fanOut int
}

func dense(name string, in, out int) []paramSpec {
	return []paramSpec{
		{name: name + "/w", shape: tensor.Shape{in, out}, fanIn: in, fanOut: out},
		{name: name + "/b", shape: tensor.Shape{out}},
	}
}

// conv is a k×k convolution from in to out channels. Its kernel is stored
// as the (k*k*in, out) matrix that multiplies im2col patches (row
// (ky*k+kx)*in+ch), Keras' (k, k, in, out) kernel flattened.
func conv(name string, in, out, k int) []paramSpec {
	return []paramSpec{
		{name: name + "/w", shape: tensor.Shape{k * k * in, out}, fanIn: in * k * k, fanOut: out * k * k},
		{name: name + "/b", shape: tensor.Shape{out}},
	}
}

// arch is an architecture: its weights and how to wire them.
type arch struct {
	name, desc string
	image      bool // input (n, 28, 28, 1) (NHWC) instead of (n, 784)
	params     []paramSpec
	evalBatch  int // batch size of the forward-only evaluation graph
	forward    func(b *builder, x *G.Node, p []*G.Node) *G.Node
}

func (a *arch) paramCount() int {
	n := 0
	for _, p := range a.params {
		n += p.shape.TotalSize()
	}
	return n
}

func (a *arch) inputShape(batch int) tensor.Shape {
	if a.image {
		return tensor.Shape{batch, 28, 28, 1}
	}
	return tensor.Shape{batch, data.Pixels}
}

func concat(groups ...[]paramSpec) []paramSpec {
	var out []paramSpec
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var archs = []*arch{
	{
		name:      "mlp",
		desc:      "784 -> Dense 32 sigmoid -> Dense 10 softmax",
		params:    concat(dense("dense1", data.Pixels, 32), dense("out", 32, data.Classes)),
		evalBatch: 1000,
		forward: func(b *builder, x *G.Node, p []*G.Node) *G.Node {
			h := b.dense(x, p[0], p[1], kernels.Sigmoid)
			return b.dense(h, p[2], p[3], kernels.Linear)
		},
	},
	{
		name: "deep",
		desc: "784 -> Dense 64 ReLU -> Dense 32 ReLU -> Dense 32 ReLU -> Dense 10 softmax",
		params: concat(dense("dense1", data.Pixels, 64), dense("dense2", 64, 32),
			dense("dense3", 32, 32), dense("out", 32, data.Classes)),
		evalBatch: 1000,
		forward: func(b *builder, x *G.Node, p []*G.Node) *G.Node {
			h := b.dense(x, p[0], p[1], kernels.ReLU)
			h = b.dense(h, p[2], p[3], kernels.ReLU)
			h = b.dense(h, p[4], p[5], kernels.ReLU)
			return b.dense(h, p[6], p[7], kernels.Linear)
		},
	},
	{
		name:  "cnn",
		desc:  "Conv 3x3x32 ReLU -> MaxPool 2 -> Conv 3x3x64 ReLU -> MaxPool 2 -> Dense 128 ReLU -> Dense 10 softmax (valid padding)",
		image: true,
		params: concat(conv("conv1", 1, 32, 3), conv("conv2", 32, 64, 3),
			dense("dense1", 5*5*64, 128), dense("out", 128, data.Classes)),
		evalBatch: 250,
		forward:   cnnForward(0, 0),
	},
	{
		name:  "cnn-dropout",
		desc:  "cnn with Dropout 0.25 after each pool and 0.5 before the last dense layer (off for evaluation)",
		image: true,
		params: concat(conv("conv1", 1, 32, 3), conv("conv2", 32, 64, 3),
			dense("dense1", 5*5*64, 128), dense("out", 128, data.Classes)),
		evalBatch: 250,
		forward:   cnnForward(0.25, 0.5),
	},
}

// cnnForward wires the cnn; pool and last are the dropout rates after each
// pooling layer and before the output layer (0: none).
func cnnForward(pool, last float64) func(b *builder, x *G.Node, p []*G.Node) *G.Node {
	return func(b *builder, x *G.Node, p []*G.Node) *G.Node {
		h := b.dropout(b.convPool(x, p[0], p[1]), pool)
		h = b.dropout(b.convPool(h, p[2], p[3]), pool)
		h = b.dropout(b.dense(h, p[4], p[5], kernels.ReLU), last)
		return b.dense(h, p[6], p[7], kernels.Linear)
	}
}

func lookupArch(name string) *arch {
	for _, a := range archs {
		if a.name == name {
			return a
		}
	}
	return nil
}

// builder wires layers into a graph, keeping the first error.
type builder struct {
	g     *G.ExprGraph
	team  *kernels.Team
	input *G.Node               // the images: a layer they feed computes no input gradient
	grads map[*G.Node][]float32 // where each weight's gradient goes (training graphs)
	train bool                  // dropout active
	drops []*dropoutOp          // the dropout sites of a training graph, in order
	err   error
}

func (b *builder) fail(what string, err error) {
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("%s: %w", what, err)
	}
}

func (b *builder) apply(what string, op G.Op, in ...*G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	n, err := G.ApplyOp(op, in...)
	b.fail(what, err)
	return n
}

// dense is act(x·w + bias) for x (n, ...) flattened per example, w
// (in, out), bias (out).
func (b *builder) dense(x, w, bias *G.Node, act kernels.Act) *G.Node {
	if b.err != nil {
		return nil
	}
	if x.Shape().TotalSize() != x.Shape()[0]*w.Shape()[0] {
		b.fail("dense", fmt.Errorf("input %v does not fit weights %v", x.Shape(), w.Shape()))
		return nil
	}
	op := newDenseOp(b.team, x.Shape(), w.Shape()[1], act, x != b.input, b.grads[w], b.grads[bias])
	return b.apply("dense", op, x, w, bias)
}

// convPool is a valid, stride-1 convolution of x (n, h, w, c) with the
// kernel matrix w (k*k*c, f), plus bias (f), then 2×2 max pooling and
// ReLU: (n, (h-k+1)/2, (w-k+1)/2, f).
func (b *builder) convPool(x, w, bias *G.Node) *G.Node {
	if b.err != nil {
		return nil
	}
	s := x.Shape()
	kk := w.Shape()[0] / s[3]
	k := int(math.Round(math.Sqrt(float64(kk))))
	if k*k*s[3] != w.Shape()[0] {
		b.fail("conv", fmt.Errorf("kernel %v does not fit %d channels", w.Shape(), s[3]))
		return nil
	}
	op := newConvPoolOp(b.team, s, k, w.Shape()[1], x != b.input, b.grads[w], b.grads[bias])
	return b.apply("conv", op, x, w, bias)
}

// dropout multiplies x by a mask that the trainer redraws before every
// batch; evaluation graphs skip it.
func (b *builder) dropout(x *G.Node, rate float64) *G.Node {
	if b.err != nil || !b.train || rate == 0 {
		return x
	}
	op := newDropoutOp("Dropout", rate, x.Shape(), nil)
	b.drops = append(b.drops, op)
	return b.apply("dropout", op, x)
}
