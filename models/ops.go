package models

// Hand-written gorgonia operators, each a single pass over float32 slices
// with its output shape fixed at construction:
//
//   - softmax cross-entropy: gorgonia's softmax takes each row's maximum
//     from the wrong element (the first of the whole tensor, so large
//     logits overflow) and starts a goroutine per row;
//   - bias add: gorgonia's broadcasting add materialises the repeated bias;
//   - ReLU: gorgonia's is a comparison and a product;
//   - im2col/col2im and 2×2 max pooling in NHWC layout: with gorgonia's
//     NCHW Conv2d a third of the cnn's time went to transposing its output
//     and gradient.

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opBase holds the boilerplate every operator shares.
type opBase struct{ name string }

func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) String() string        { return o.name }
func (o opBase) WriteHash(h hash.Hash) { fmt.Fprint(h, o.name) }
func (o opBase) Hashcode() uint32      { h := fnv.New32a(); o.WriteHash(h); return h.Sum32() }
func (o opBase) checkArity(n, want int) error {
	if n != want {
		return fmt.Errorf("%s: %d inputs, want %d", o.name, n, want)
	}
	return nil
}

// inputs checks the arity and returns the float32 data of the inputs,
// checking their lengths against sizes.
func (o opBase) inputs(in []G.Value, arity int, sizes ...int) ([][]float32, error) {
	if err := o.checkArity(len(in), arity); err != nil {
		return nil, err
	}
	out := make([][]float32, len(in))
	for i, v := range in {
		d, err := f32s(v)
		if err != nil {
			return nil, fmt.Errorf("%s: input %d: %w", o.name, i, err)
		}
		if i < len(sizes) && len(d) != sizes[i] {
			return nil, fmt.Errorf("%s: input %d has %d values, want %d", o.name, i, len(d), sizes[i])
		}
		out[i] = d
	}
	return out, nil
}

// f32s returns the float32 backing slice of a dense tensor value.
func f32s(v G.Value) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("want a *tensor.Dense, got %T", v)
	}
	s, ok := d.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("want float32 data, got %v", d.Dtype())
	}
	return s, nil
}

// scalarF32 reads a scalar value (a *G.F32 or a one-element tensor).
func scalarF32(v G.Value) (float32, error) {
	switch s := v.(type) {
	case *G.F32:
		return float32(*s), nil
	case *tensor.Dense:
		if d, ok := s.Data().([]float32); ok && len(d) == 1 {
			return d[0], nil
		}
		if d, ok := s.Data().(float32); ok {
			return d, nil
		}
	}
	return 0, fmt.Errorf("want a float32 scalar, got %T", v)
}

// outLike returns prealloc when it is a float32 tensor of shape, otherwise a
// new tensor.
func outLike(prealloc G.Value, shape tensor.Shape) (*tensor.Dense, []float32) {
	if d, ok := prealloc.(*tensor.Dense); ok && d.Shape().Eq(shape) && d.Dtype() == tensor.Float32 {
		return d, d.Data().([]float32)
	}
	d := tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float32))
	return d, d.Data().([]float32)
}

// f32Tensor is the gorgonia type of a float32 tensor of dims dimensions.
func f32Tensor(dims int) hm.Type { return G.TensorType{Dims: dims, Of: tensor.Float32} }

// ---------------------------------------------------------------------------
// Softmax cross-entropy.

// xentOp computes -sum_ij T_ij * log softmax(X)_ij for logits X (n, k) and
// targets T (n, k). Training puts onehot/m in the rows of the m real
// examples of a batch and zeros in padding rows, so the result is the mean
// cross-entropy over the real examples. As a side effect it records the loss
// in float64 and the number of real rows whose argmax matches the target.
type xentOp struct {
	opBase
	loss    float64
	correct int
}

func newXentOp() *xentOp { return &xentOp{opBase: opBase{name: "SoftmaxXent"}} }

func (o *xentOp) Arity() int { return 2 }
func (o *xentOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(2), tensor.Float32)
}
func (o *xentOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (o *xentOp) Do(inputs ...G.Value) (G.Value, error) {
	if err := o.checkArity(len(inputs), 2); err != nil {
		return nil, err
	}
	x, err := f32s(inputs[0])
	if err != nil {
		return nil, err
	}
	t, err := f32s(inputs[1])
	if err != nil {
		return nil, err
	}
	k := inputs[0].Shape()[1]
	loss, correct := xentForward(x, t, k)
	o.loss, o.correct = loss, correct
	return G.NewF32(float32(loss)), nil
}

// xentForward is the arithmetic of xentOp.
func xentForward(x, t []float32, k int) (loss float64, correct int) {
	for r := 0; r+k <= len(x); r += k {
		row, tr := x[r:r+k], t[r:r+k]
		var tsum float64
		best, target := 0, 0
		for j, v := range tr {
			tsum += float64(v)
			if v > tr[target] {
				target = j
			}
			if row[j] > row[best] {
				best = j
			}
		}
		if tsum == 0 {
			continue // padding row
		}
		lse := logSumExp(row)
		for j, v := range tr {
			if v != 0 {
				loss -= float64(v) * (float64(row[j]) - lse)
			}
		}
		if best == target {
			correct++
		}
	}
	return loss, correct
}

// logSumExp is log(sum(exp(row))), shifted by the row's maximum.
func logSumExp(row []float32) float64 {
	m := row[0]
	for _, v := range row[1:] {
		if v > m {
			m = v
		}
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v - m))
	}
	return float64(m) + math.Log(s)
}

func (o *xentOp) DiffWRT(int) []bool { return []bool{true, false} }

func (o *xentOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&xentGradOp{opBase{name: "SoftmaxXentGrad"}}, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, nil}, nil
}

// xentGradOp is d xent / dX = g * (softmax(X) * rowsum(T) - T).
type xentGradOp struct{ opBase }

func (o *xentGradOp) Arity() int { return 3 }
func (o *xentGradOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(2), tensor.Float32, f32Tensor(2))
}
func (o *xentGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return in[0].(tensor.Shape).Clone(), nil
}
func (o *xentGradOp) Do(inputs ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, inputs...) }

func (o *xentGradOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	if err := o.checkArity(len(inputs), 3); err != nil {
		return nil, err
	}
	x, err := f32s(inputs[0])
	if err != nil {
		return nil, err
	}
	t, err := f32s(inputs[1])
	if err != nil {
		return nil, err
	}
	g, err := scalarF32(inputs[2])
	if err != nil {
		return nil, err
	}
	out, dx := outLike(prealloc, inputs[0].Shape())
	k := inputs[0].Shape()[1]
	for r := 0; r+k <= len(x); r += k {
		row, tr, dr := x[r:r+k], t[r:r+k], dx[r:r+k]
		var tsum float32
		for _, v := range tr {
			tsum += v
		}
		if tsum == 0 {
			clear(dr)
			continue
		}
		lse := logSumExp(row)
		for j := range row {
			p := float32(math.Exp(float64(row[j]) - lse))
			dr[j] = g * (p*tsum - tr[j])
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Bias add.

// biasAddOp adds a bias vector b (c) to every row of a matrix x (n, c).
type biasAddOp struct {
	opBase
	n, c int
}

func newBiasAddOp(n, c int) *biasAddOp {
	return &biasAddOp{opBase{name: fmt.Sprintf("BiasAdd(%d,%d)", n, c)}, n, c}
}

func (o *biasAddOp) Arity() int { return 2 }
func (o *biasAddOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(1), f32Tensor(2))
}
func (o *biasAddOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.n, o.c}, nil
}
func (o *biasAddOp) Do(inputs ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, inputs...) }

func (o *biasAddOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	xs, err := o.inputs(inputs, 2, o.n*o.c, o.c)
	if err != nil {
		return nil, err
	}
	x, b := xs[0], xs[1]
	out, y := outLike(prealloc, tensor.Shape{o.n, o.c})
	for r := 0; r < len(x); r += o.c {
		xr, yr := x[r:r+o.c], y[r:r+o.c]
		for j, bv := range b {
			yr[j] = xr[j] + bv
		}
	}
	return out, nil
}

func (o *biasAddOp) DiffWRT(int) []bool { return []bool{true, true} }

func (o *biasAddOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op := &biasGradOp{opBase{name: fmt.Sprintf("BiasGrad(%d,%d)", o.n, o.c)}, o.n, o.c}
	db, err := G.ApplyOp(op, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, db}, nil
}

// biasGradOp sums a gradient (n, c) over its rows.
type biasGradOp struct {
	opBase
	n, c int
}

func (o *biasGradOp) Arity() int                                     { return 1 }
func (o *biasGradOp) Type() hm.Type                                  { return hm.NewFnType(f32Tensor(2), f32Tensor(1)) }
func (o *biasGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.Shape{o.c}, nil }
func (o *biasGradOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

func (o *biasGradOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	xs, err := o.inputs(inputs, 1, o.n*o.c)
	if err != nil {
		return nil, err
	}
	g := xs[0]
	out, db := outLike(prealloc, tensor.Shape{o.c})
	clear(db)
	for r := 0; r < len(g); r += o.c {
		for j, v := range g[r : r+o.c] {
			db[j] += v
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// ReLU.

// reluOp is max(x, 0) for x of any shape.
type reluOp struct {
	opBase
	shape tensor.Shape
}

func newReluOp(shape tensor.Shape) *reluOp {
	return &reluOp{opBase{name: fmt.Sprintf("ReLU%v", shape)}, shape.Clone()}
}

func (o *reluOp) Arity() int { return 1 }
func (o *reluOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(o.shape.Dims()), f32Tensor(o.shape.Dims()))
}
func (o *reluOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *reluOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

func (o *reluOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	xs, err := o.inputs(inputs, 1, o.shape.TotalSize())
	if err != nil {
		return nil, err
	}
	out, y := outLike(prealloc, o.shape)
	for i, v := range xs[0] {
		y[i] = max(v, 0)
	}
	return out, nil
}

func (o *reluOp) DiffWRT(int) []bool { return []bool{true} }

func (o *reluOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op := &reluGradOp{opBase{name: fmt.Sprintf("ReLUGrad%v", o.shape)}, o.shape}
	dx, err := G.ApplyOp(op, output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// reluGradOp is g where the ReLU output y > 0, else 0.
type reluGradOp struct {
	opBase
	shape tensor.Shape
}

func (o *reluGradOp) Arity() int { return 2 }
func (o *reluGradOp) Type() hm.Type {
	t := f32Tensor(o.shape.Dims())
	return hm.NewFnType(t, t, t)
}
func (o *reluGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *reluGradOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

func (o *reluGradOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	size := o.shape.TotalSize()
	xs, err := o.inputs(inputs, 2, size, size)
	if err != nil {
		return nil, err
	}
	y, g := xs[0], xs[1]
	out, dx := outLike(prealloc, o.shape)
	for i, v := range y {
		if v > 0 {
			dx[i] = g[i]
		} else {
			dx[i] = 0
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Convolution as im2col + matrix product, in NHWC layout.

// im2colOp turns images x (n, h, w, c) into the patch matrix
// (n*oh*ow, k*k*c) of a k×k valid convolution with stride 1: row
// (img, oy, ox) holds x[img, oy+ky, ox+kx, ch] at column (ky*k+kx)*c+ch.
// In NHWC each kernel row of a patch is k*c contiguous values, so a row
// of the patch matrix is k copies. A convolution is then one matrix
// product with the (k*k*c, filters) kernel and needs no transposes.
type im2colOp struct {
	opBase
	geom convGeom
}

// convGeom is the geometry of a k×k valid, stride-1 convolution.
type convGeom struct{ n, h, w, c, k int }

func (g convGeom) oh() int { return g.h - g.k + 1 }
func (g convGeom) ow() int { return g.w - g.k + 1 }
func (g convGeom) colShape() tensor.Shape {
	return tensor.Shape{g.n * g.oh() * g.ow(), g.k * g.k * g.c}
}
func (g convGeom) imShape() tensor.Shape { return tensor.Shape{g.n, g.h, g.w, g.c} }

func newIm2colOp(g convGeom) *im2colOp {
	return &im2colOp{opBase{name: fmt.Sprintf("Im2colNHWC%v", g)}, g}
}

func (o *im2colOp) Arity() int                                     { return 1 }
func (o *im2colOp) Type() hm.Type                                  { return hm.NewFnType(f32Tensor(4), f32Tensor(2)) }
func (o *im2colOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.geom.colShape(), nil }
func (o *im2colOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

func (o *im2colOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	g := o.geom
	xs, err := o.inputs(inputs, 1, g.imShape().TotalSize())
	if err != nil {
		return nil, err
	}
	x := xs[0]
	out, col := outLike(prealloc, g.colShape())
	oh, ow, kc := g.oh(), g.ow(), g.k*g.c
	row := 0
	for img := range g.n {
		for oy := range oh {
			for ox := range ow {
				for ky := range g.k {
					src := ((img*g.h+oy+ky)*g.w + ox) * g.c
					copy(col[row+ky*kc:row+(ky+1)*kc], x[src:src+kc])
				}
				row += g.k * kc
			}
		}
	}
	return out, nil
}

func (o *im2colOp) DiffWRT(int) []bool { return []bool{true} }

func (o *im2colOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op := &col2imOp{opBase{name: fmt.Sprintf("Col2imNHWC%v", o.geom)}, o.geom}
	dx, err := G.ApplyOp(op, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// col2imOp is the adjoint of im2colOp: it adds each patch-matrix gradient
// back onto the image positions it was copied from.
type col2imOp struct {
	opBase
	geom convGeom
}

func (o *col2imOp) Arity() int                                     { return 1 }
func (o *col2imOp) Type() hm.Type                                  { return hm.NewFnType(f32Tensor(2), f32Tensor(4)) }
func (o *col2imOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.geom.imShape(), nil }
func (o *col2imOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

func (o *col2imOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	g := o.geom
	xs, err := o.inputs(inputs, 1, g.colShape().TotalSize())
	if err != nil {
		return nil, err
	}
	col := xs[0]
	out, dx := outLike(prealloc, g.imShape())
	clear(dx)
	oh, ow, kc := g.oh(), g.ow(), g.k*g.c
	row := 0
	for img := range g.n {
		for oy := range oh {
			for ox := range ow {
				for ky := range g.k {
					dst := dx[((img*g.h+oy+ky)*g.w+ox)*g.c:][:kc]
					for i, v := range col[row+ky*kc : row+(ky+1)*kc] {
						dst[i] += v
					}
				}
				row += g.k * kc
			}
		}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Max pooling 2×2, stride 2, valid (a trailing odd row or column is
// dropped), NHWC.

// poolGeom is the input geometry of a 2×2 pooling.
type poolGeom struct{ n, h, w, c int }

func (g poolGeom) inShape() tensor.Shape  { return tensor.Shape{g.n, g.h, g.w, g.c} }
func (g poolGeom) outShape() tensor.Shape { return tensor.Shape{g.n, g.h / 2, g.w / 2, g.c} }

type maxPoolOp struct {
	opBase
	geom poolGeom
}

func newMaxPoolOp(g poolGeom) *maxPoolOp {
	return &maxPoolOp{opBase{name: fmt.Sprintf("MaxPool2NHWC%v", g)}, g}
}

func (o *maxPoolOp) Arity() int                                     { return 1 }
func (o *maxPoolOp) Type() hm.Type                                  { return hm.NewFnType(f32Tensor(4), f32Tensor(4)) }
func (o *maxPoolOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.geom.outShape(), nil }
func (o *maxPoolOp) Do(inputs ...G.Value) (G.Value, error)          { return o.UsePreallocDo(nil, inputs...) }

// poolWindows calls fn with the flat input offsets of the four elements of
// each pooling window and the flat output offset, channel by channel.
func (g poolGeom) windows(fn func(a, b, c, d, out int)) {
	oh, ow := g.h/2, g.w/2
	out := 0
	for img := range g.n {
		for oy := range oh {
			for ox := range ow {
				a := ((img*g.h+2*oy)*g.w + 2*ox) * g.c
				b := a + g.c
				c := a + g.w*g.c
				d := c + g.c
				for ch := range g.c {
					fn(a+ch, b+ch, c+ch, d+ch, out)
					out++
				}
			}
		}
	}
}

func (o *maxPoolOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	g := o.geom
	xs, err := o.inputs(inputs, 1, g.inShape().TotalSize())
	if err != nil {
		return nil, err
	}
	x := xs[0]
	res, y := outLike(prealloc, g.outShape())
	g.windows(func(a, b, c, d, out int) {
		y[out] = max(x[a], x[b], x[c], x[d])
	})
	return res, nil
}

func (o *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }

func (o *maxPoolOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	op := &maxPoolGradOp{opBase{name: fmt.Sprintf("MaxPool2GradNHWC%v", o.geom)}, o.geom}
	dx, err := G.ApplyOp(op, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// maxPoolGradOp routes each output gradient to the first maximum of its
// window (inputs: the pooling input x and the output gradient).
type maxPoolGradOp struct {
	opBase
	geom poolGeom
}

func (o *maxPoolGradOp) Arity() int { return 2 }
func (o *maxPoolGradOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(4), f32Tensor(4), f32Tensor(4))
}
func (o *maxPoolGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.geom.inShape(), nil }
func (o *maxPoolGradOp) Do(inputs ...G.Value) (G.Value, error) {
	return o.UsePreallocDo(nil, inputs...)
}

func (o *maxPoolGradOp) UsePreallocDo(prealloc G.Value, inputs ...G.Value) (G.Value, error) {
	g := o.geom
	xs, err := o.inputs(inputs, 2, g.inShape().TotalSize(), g.outShape().TotalSize())
	if err != nil {
		return nil, err
	}
	x, gy := xs[0], xs[1]
	res, dx := outLike(prealloc, g.inShape())
	clear(dx)
	g.windows(func(a, b, c, d, out int) {
		best := a
		for _, i := range [3]int{b, c, d} {
			if x[i] > x[best] {
				best = i
			}
		}
		dx[best] = gy[out]
	})
	return res, nil
}
