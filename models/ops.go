package models

// The gorgonia operators of the architectures: thin adapters that check
// shapes and hand their buffers to the kernels package. Each operator owns
// its output and scratch buffers (allocated once, when the graph is built)
// and ignores gorgonia's preallocated value, so a training step allocates
// no tensors. Gradients of the weights are written straight into views of
// the trainer's flat gradient buffer; an operator with several gradients
// computes them in one op and exposes the others through sideOp nodes.
//
//   - denseOp: act(x·w + b), sigmoid/ReLU/none fused, x of any shape
//     (flattened per example); its gradient op skips dx for the first layer.
//   - convPoolOp: a k×k valid convolution (im2col + GEMM) + bias, 2×2 max
//     pooling that records its argmax, then ReLU, split over the batch in
//     chunks of images.
//   - dropoutOp: multiplication by a mask the trainer redraws per batch.
//   - xentOp: softmax cross-entropy, keeping the probabilities for its
//     gradient.

import (
	"fmt"
	"hash"
	"hash/fnv"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/fmtune/fmtune/models/kernels"
)

// opBase holds the boilerplate every operator shares.
type opBase struct{ name string }

func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) String() string        { return o.name }
func (o opBase) WriteHash(h hash.Hash) { fmt.Fprint(h, o.name) }
func (o opBase) Hashcode() uint32      { h := fnv.New32a(); o.WriteHash(h); return h.Sum32() }

// args checks the arity and returns the float32 data of the inputs into
// dst, checking each length against sizes (-1: any).
func (o opBase) args(in []G.Value, dst [][]float32, sizes ...int) error {
	if len(in) != len(dst) {
		return fmt.Errorf("%s: %d inputs, want %d", o.name, len(in), len(dst))
	}
	for i, v := range in {
		d, err := f32s(v)
		if err != nil {
			return fmt.Errorf("%s: input %d: %w", o.name, i, err)
		}
		if i < len(sizes) && sizes[i] >= 0 && len(d) != sizes[i] {
			return fmt.Errorf("%s: input %d has %d values, want %d", o.name, i, len(d), sizes[i])
		}
		dst[i] = d
	}
	return nil
}

// f32s returns the float32 backing slice of a dense tensor value, without
// allocating (tensor.Dense.Data boxes a new slice header on every call).
func f32s(v G.Value) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("want a *tensor.Dense, got %T", v)
	}
	if d.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("want float32 data, got %v", d.Dtype())
	}
	raw := d.Raw
	if len(raw) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/4), nil
}

// scalarF32 reads a scalar value (a *G.F32 or a one-element tensor).
func scalarF32(v G.Value) (float32, error) {
	switch s := v.(type) {
	case *G.F32:
		return float32(*s), nil
	case *tensor.Dense:
		if d, err := f32s(s); err == nil && len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("want a float32 scalar, got %T", v)
}

// buffer is an operator-owned float32 tensor and its data.
type buffer struct {
	t *tensor.Dense
	d []float32
}

// newBuffer allocates a zeroed tensor of shape, or wraps backing (of the
// shape's size) when it is not nil.
func newBuffer(shape tensor.Shape, backing []float32) buffer {
	if backing == nil {
		backing = make([]float32, shape.TotalSize())
	}
	return buffer{t: tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(backing)), d: backing}
}

// f32Tensor is the gorgonia type of a float32 tensor of dims dimensions.
func f32Tensor(dims int) hm.Type { return G.TensorType{Dims: dims, Of: tensor.Float32} }

// rowChunk is the number of rows per chunk when a product with k×n
// weights is split over threads: about 8 MFLOP per chunk, a multiple of 8
// rows. It depends only on the shapes, so results do not depend on the
// number of threads.
func rowChunk(k, n int) int {
	r := (8 << 20) / max(2*k*n, 1)
	return max(8, (r+7)/8*8)
}

// ---------------------------------------------------------------------------
// sideOp: a further output of a multi-output gradient operator.

// sideOp returns a tensor that the operator computing its input (a weight
// gradient, 2-D, given for ordering) wrote as a side effect.
type sideOp struct {
	opBase
	out   buffer
	shape tensor.Shape
}

func newSideOp(name string, out buffer) *sideOp {
	return &sideOp{opBase{name: name}, out, out.t.Shape().Clone()}
}

func (o *sideOp) Arity() int { return 1 }
func (o *sideOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(o.shape.Dims()))
}
func (o *sideOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *sideOp) Do(...G.Value) (G.Value, error)                 { return o.out.t, nil }
func (o *sideOp) UsePreallocDo(_ G.Value, _ ...G.Value) (G.Value, error) {
	return o.out.t, nil
}
func (o *sideOp) DiffWRT(int) []bool { return []bool{false} }
func (o *sideOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("%s is not differentiable", o.name)
}

// ---------------------------------------------------------------------------
// Dense layer.

// denseOp is act(x·w + b) for x (n, ...) flattened to (n, in), w (in, out)
// and b (out); the output is (n, out).
type denseOp struct {
	opBase
	n, in, out int
	xDims      int
	act        kernels.Act
	inputGrad  bool // compute dx (false for a layer fed by the images)
	dw, db     []float32
	y          buffer
	team       *kernels.Team

	// the current call's operands, for forwardChunk
	x, w, b  []float32
	rows     int
	forwardF func(int, int)
}

func newDenseOp(team *kernels.Team, xShape tensor.Shape, out int, act kernels.Act, inputGrad bool, dw, db []float32) *denseOp {
	n := xShape[0]
	in := xShape.TotalSize() / n
	o := &denseOp{
		opBase: opBase{name: fmt.Sprintf("Dense(%d,%d->%d,%v)", n, in, out, act)},
		n:      n, in: in, out: out, xDims: xShape.Dims(), act: act, inputGrad: inputGrad,
		dw: dw, db: db, y: newBuffer(tensor.Shape{n, out}, nil), team: team,
		rows: rowChunk(in, out),
	}
	o.forwardF = o.forwardChunk
	return o
}

func (o *denseOp) Arity() int { return 3 }
func (o *denseOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(o.xDims), f32Tensor(2), f32Tensor(1), f32Tensor(2))
}
func (o *denseOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.n, o.out}, nil
}
func (o *denseOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

func (o *denseOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	var a [3][]float32
	if err := o.args(in, a[:], o.n*o.in, o.in*o.out, o.out); err != nil {
		return nil, err
	}
	o.x, o.w, o.b = a[0], a[1], a[2]
	o.team.Run(kernels.Chunks(o.n, o.rows), o.forwardF)
	return o.y.t, nil
}

func (o *denseOp) forwardChunk(c, _ int) {
	r0, r1 := c*o.rows, min((c+1)*o.rows, o.n)
	y := o.y.d[r0*o.out : r1*o.out]
	kernels.Gemm(false, false, r1-r0, o.out, o.in, 1, o.x[r0*o.in:], o.in, o.w, o.out, 0, y, o.out)
	kernels.BiasAct(y, o.b, o.act)
}

func (o *denseOp) DiffWRT(int) []bool { return []bool{o.inputGrad, true, true} }

func (o *denseOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gop := newDenseGradOp(o, in[0].Shape())
	dw, err := G.ApplyOp(gop, in[0], in[1], output, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newSideOp(o.name+"/db", gop.dbBuf), dw)
	if err != nil {
		return nil, err
	}
	var dx *G.Node
	if o.inputGrad {
		if dx, err = G.ApplyOp(newSideOp(o.name+"/dx", gop.dx), dw); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dx, dw, db}, nil
}

// denseGradOp computes the gradients of a denseOp from its input x, its
// weights w, its output y and the output gradient dy: its value is dw;
// it also writes db and (if the layer needs it) dx.
type denseGradOp struct {
	opBase
	f            *denseOp
	dwBuf, dbBuf buffer
	dz           []float32 // dy * act'(y); dy itself for a linear layer
	dx           buffer

	x, w, y, dy []float32
	inRows      int // rows of dw per chunk
	rowsF, dwF  func(int, int)
}

func newDenseGradOp(f *denseOp, xShape tensor.Shape) *denseGradOp {
	o := &denseGradOp{
		opBase: opBase{name: "Grad" + f.name},
		f:      f,
		dwBuf:  newBuffer(tensor.Shape{f.in, f.out}, f.dw),
		dbBuf:  newBuffer(tensor.Shape{f.out}, f.db),
		inRows: rowChunk(f.n, f.out),
	}
	if f.act != kernels.Linear {
		o.dz = make([]float32, f.n*f.out)
	}
	if f.inputGrad {
		o.dx = newBuffer(xShape, nil)
	}
	o.rowsF, o.dwF = o.rowsChunk, o.dwChunk
	return o
}

func (o *denseGradOp) Arity() int { return 4 }
func (o *denseGradOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(o.f.xDims), f32Tensor(2), f32Tensor(2), f32Tensor(2), f32Tensor(2))
}
func (o *denseGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.f.in, o.f.out}, nil
}
func (o *denseGradOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

func (o *denseGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	f := o.f
	var a [4][]float32
	if err := o.args(in, a[:], f.n*f.in, f.in*f.out, f.n*f.out, f.n*f.out); err != nil {
		return nil, err
	}
	o.x, o.w, o.y, o.dy = a[0], a[1], a[2], a[3]
	if f.act == kernels.Linear {
		o.dz = o.dy
	}
	// dz and dx by chunks of rows, db in row order, dw by chunks of its rows.
	o.f.team.Run(kernels.Chunks(f.n, f.rows), o.rowsF)
	kernels.ColSum(o.dbBuf.d, o.dz)
	o.f.team.Run(kernels.Chunks(f.in, o.inRows), o.dwF)
	return o.dwBuf.t, nil
}

func (o *denseGradOp) rowsChunk(c, _ int) {
	f := o.f
	r0, r1 := c*f.rows, min((c+1)*f.rows, f.n)
	dz := o.dz[r0*f.out : r1*f.out]
	if f.act != kernels.Linear {
		kernels.ActGrad(o.y[r0*f.out:r1*f.out], o.dy[r0*f.out:r1*f.out], dz, f.act)
	}
	if f.inputGrad {
		kernels.Gemm(false, true, r1-r0, f.in, f.out, 1, dz, f.out, o.w, f.out, 0, o.dx.d[r0*f.in:], f.in)
	}
}

// dwChunk computes rows [i0, i1) of dw = xᵀ·dz.
func (o *denseGradOp) dwChunk(c, _ int) {
	f := o.f
	i0, i1 := c*o.inRows, min((c+1)*o.inRows, f.in)
	kernels.Gemm(true, false, i1-i0, f.out, f.n, 1, o.x[i0:], f.in, o.dz, f.out, 0, o.dwBuf.d[i0*f.out:], f.out)
}

// ---------------------------------------------------------------------------
// Convolution + bias + 2×2 max pooling + ReLU.

// convChunk is the number of images per chunk of a convolution: as many
// as keep a chunk's patch matrix within convChunkBytes (so that it is
// still in the core's cache when the matrix product reads it), 1 to 8.
// It depends only on the geometry, so results do not depend on threads.
func convChunk(g kernels.ConvGeom) int {
	return max(1, min(8, convChunkBytes/(4*g.ColSize())))
}

// convChunkBytes is the patch-matrix size that convChunk aims for.
const convChunkBytes = 1 << 20

// convPoolOp is relu(maxpool2(conv(x, w) + b)) for images x (n, h, w, c),
// a k×k kernel matrix w (k*k*c, f) and bias b (f); the output is
// (n, oh/2, ow/2, f). It computes relu(maxpool2(conv(x, w)) + b): the bias
// is constant over a pooling window and ReLU is monotone, so both commute
// with the pooling and touch a quarter of the values.
type convPoolOp struct {
	opBase
	n         int
	g         kernels.ConvGeom
	inputGrad bool
	dw, db    []float32
	team      *kernels.Team

	chunk  int         // images per chunk (convChunk)
	direct bool        // one input channel, no input gradient, C kernels: kernels.Conv1, no patch matrix
	col    []float32   // per thread: the patch matrix of a chunk
	z      [][]float32 // per thread: the conv of a chunk, before pooling and bias
	arg    []uint8     // which element of each pooling window was its maximum
	y      buffer

	x, w, b  []float32
	forwardF func(int, int)
}

// newConvPoolOp makes the operator for images of xShape.
func newConvPoolOp(team *kernels.Team, xShape tensor.Shape, k, filters int, inputGrad bool, dw, db []float32) *convPoolOp {
	g := kernels.ConvGeom{H: xShape[1], W: xShape[2], C: xShape[3], K: k, F: filters}
	n := xShape[0]
	o := &convPoolOp{
		opBase: opBase{name: fmt.Sprintf("ConvPool(%d,%+v)", n, g)},
		n:      n, g: g, inputGrad: inputGrad, dw: dw, db: db, team: team,
		chunk: convChunk(g),
		arg:   make([]uint8, n*o2(g)),
		y:     newBuffer(tensor.Shape{n, g.OH() / 2, g.OW() / 2, filters}, nil),
	}
	if g.C == 1 && !inputGrad && kernels.Native {
		o.direct = true
	} else {
		o.col = make([]float32, kernels.MaxThreads()*o.chunk*g.ColSize())
	}
	o.z = perThread(o.chunk * g.OutSize())
	o.forwardF = o.forwardChunk
	return o
}

// perThread allocates one scratch buffer of size values per thread.
func perThread(size int) [][]float32 {
	s := make([][]float32, kernels.MaxThreads())
	for i := range s {
		s[i] = make([]float32, size)
	}
	return s
}

// o2 is the pooled output size per image.
func o2(g kernels.ConvGeom) int { return (g.OH() / 2) * (g.OW() / 2) * g.F }

func (o *convPoolOp) Arity() int { return 3 }
func (o *convPoolOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(4), f32Tensor(2), f32Tensor(1), f32Tensor(4))
}
func (o *convPoolOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return o.y.t.Shape().Clone(), nil
}
func (o *convPoolOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

func (o *convPoolOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	var a [3][]float32
	if err := o.args(in, a[:], o.n*o.g.InSize(), o.g.Cols()*o.g.F, o.g.F); err != nil {
		return nil, err
	}
	o.x, o.w, o.b = a[0], a[1], a[2]
	o.team.Run(kernels.Chunks(o.n, o.chunk), o.forwardF)
	return o.y.t, nil
}

func (o *convPoolOp) forwardChunk(c, w int) {
	g := o.g
	i0, i1 := c*o.chunk, min((c+1)*o.chunk, o.n)
	z := o.z[w][:(i1-i0)*g.OutSize()]
	y := o.y.d[i0*o2(g) : i1*o2(g)]
	x := o.x[i0*g.InSize() : i1*g.InSize()]
	if o.direct {
		kernels.Conv1(g, x, o.w, z)
	} else {
		col := o.col[w*o.chunk*g.ColSize():][:(i1-i0)*g.ColSize()]
		kernels.Im2col(g, x, col)
		kernels.Gemm(false, false, (i1-i0)*g.Rows(), g.F, g.Cols(), 1, col, g.Cols(), o.w, g.F, 0, z, g.F)
	}
	// The bias is the same over a pooling window, so it is added after
	// pooling: max(z+b) = max(z)+b, on a quarter of the values.
	kernels.MaxPool2(z, g.OH(), g.OW(), g.F, y, o.arg[i0*o2(g):i1*o2(g)])
	kernels.BiasAct(y, o.b, kernels.ReLU)
}

func (o *convPoolOp) DiffWRT(int) []bool { return []bool{o.inputGrad, true, true} }

func (o *convPoolOp) SymDiff(in G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gop := newConvPoolGradOp(o)
	dw, err := G.ApplyOp(gop, in[1], output, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newSideOp(o.name+"/db", gop.dbBuf), dw)
	if err != nil {
		return nil, err
	}
	var dx *G.Node
	if o.inputGrad {
		if dx, err = G.ApplyOp(newSideOp(o.name+"/dx", gop.dx), dw); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dx, dw, db}, nil
}

// convPoolGradOp computes the gradients of a convPoolOp from its weights,
// its output y and the output gradient dy: its value is dw; it also
// writes db and (if needed) dx. Each chunk of images adds its share of dw
// and db to a partial sum of its own; the partials are added in chunk
// order, so the result does not depend on the number of threads.
type convPoolGradOp struct {
	opBase
	f            *convPoolOp
	dwBuf, dbBuf buffer
	dx           buffer
	dp           []float32   // dy * relu'(y), pooled shape
	dz           [][]float32 // per thread: the gradient of a chunk's conv output
	dcol         [][]float32 // per thread: the gradient of a chunk's patch matrix
	dwPart       []float32   // one dw per chunk
	dbPart       []float32   // one db per chunk

	w, y, dy []float32
	chunkF   func(int, int)
}

func newConvPoolGradOp(f *convPoolOp) *convPoolGradOp {
	g := f.g
	chunks := kernels.Chunks(f.n, f.chunk)
	o := &convPoolGradOp{
		opBase: opBase{name: "Grad" + f.name},
		f:      f,
		dwBuf:  newBuffer(tensor.Shape{g.Cols(), g.F}, f.dw),
		dbBuf:  newBuffer(tensor.Shape{g.F}, f.db),
		dp:     make([]float32, f.n*o2(g)),
		dz:     perThread(f.chunk * g.OutSize()),
		dwPart: make([]float32, chunks*g.Cols()*g.F),
		dbPart: make([]float32, chunks*g.F),
	}
	if f.inputGrad {
		o.dx = newBuffer(tensor.Shape{f.n, g.H, g.W, g.C}, nil)
		o.dcol = perThread(f.chunk * g.ColSize())
	}
	o.chunkF = o.chunk
	return o
}

func (o *convPoolGradOp) Arity() int { return 3 }
func (o *convPoolGradOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(4), f32Tensor(4), f32Tensor(2))
}
func (o *convPoolGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{o.f.g.Cols(), o.f.g.F}, nil
}
func (o *convPoolGradOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

func (o *convPoolGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	f, g := o.f, o.f.g
	var a [3][]float32
	if err := o.args(in, a[:], g.Cols()*g.F, f.n*o2(g), f.n*o2(g)); err != nil {
		return nil, err
	}
	o.w, o.y, o.dy = a[0], a[1], a[2]
	chunks := kernels.Chunks(f.n, f.chunk)
	f.team.Run(chunks, o.chunkF)
	size := g.Cols() * g.F
	copy(o.dwBuf.d, o.dwPart[:size])
	copy(o.dbBuf.d, o.dbPart[:g.F])
	for c := 1; c < chunks; c++ {
		kernels.Add(o.dwBuf.d, o.dwPart[c*size:(c+1)*size])
		kernels.Add(o.dbBuf.d, o.dbPart[c*g.F:(c+1)*g.F])
	}
	return o.dwBuf.t, nil
}

func (o *convPoolGradOp) chunk(c, w int) {
	f, g := o.f, o.f.g
	i0, i1 := c*f.chunk, min((c+1)*f.chunk, f.n)
	p0, p1 := i0*o2(g), i1*o2(g)
	rows := (i1 - i0) * g.Rows()
	kernels.ActGrad(o.y[p0:p1], o.dy[p0:p1], o.dp[p0:p1], kernels.ReLU)
	// The bias was added after pooling: its gradient is the pooled one.
	kernels.ColSum(o.dbPart[c*g.F:(c+1)*g.F], o.dp[p0:p1])
	dz := o.dz[w][:(i1-i0)*g.OutSize()]
	kernels.MaxPool2Grad(o.dp[p0:p1], f.arg[p0:p1], g.OH(), g.OW(), g.F, dz)
	dwPart := o.dwPart[c*g.Cols()*g.F : (c+1)*g.Cols()*g.F]
	if f.direct {
		kernels.Conv1WeightGrad(g, f.x[i0*g.InSize():i1*g.InSize()], dz, dwPart)
	} else {
		// The patch matrix again, from the input: cheaper than keeping the
		// whole batch's and reading it back from memory.
		col := f.col[w*f.chunk*g.ColSize():][:(i1-i0)*g.ColSize()]
		kernels.Im2col(g, f.x[i0*g.InSize():i1*g.InSize()], col)
		kernels.Gemm(true, false, g.Cols(), g.F, rows, 1, col, g.Cols(), dz, g.F, 0, dwPart, g.F)
	}
	if f.inputGrad {
		dcol := o.dcol[w][:(i1-i0)*g.ColSize()]
		kernels.Gemm(false, true, rows, g.Cols(), g.F, 1, dz, g.F, o.w, g.F, 0, dcol, g.Cols())
		kernels.Col2im(g, dcol, o.dx.d[i0*g.InSize():i1*g.InSize()])
	}
}

// ---------------------------------------------------------------------------
// Dropout.

// dropoutOp multiplies x by mask, which the trainer redraws before every
// batch (inverted dropout: 0 with probability rate, 1/(1-rate) otherwise).
// Its gradient is the same product applied to the output gradient, so the
// scaling is 1/(1-rate) both ways. (gorgonia.Dropout scales the gradient
// by 1/rate and draws from the clock.)
type dropoutOp struct {
	opBase
	rate  float64
	shape tensor.Shape
	mask  []float32
	y     buffer
}

func newDropoutOp(name string, rate float64, shape tensor.Shape, mask []float32) *dropoutOp {
	if mask == nil {
		mask = make([]float32, shape.TotalSize())
	}
	return &dropoutOp{opBase{name: fmt.Sprintf("%s%v", name, shape)}, rate, shape.Clone(), mask, newBuffer(shape, nil)}
}

func (o *dropoutOp) Arity() int { return 1 }
func (o *dropoutOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(o.shape.Dims()), f32Tensor(o.shape.Dims()))
}
func (o *dropoutOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return o.shape.Clone(), nil }
func (o *dropoutOp) Do(in ...G.Value) (G.Value, error)              { return o.UsePreallocDo(nil, in...) }

func (o *dropoutOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	var a [1][]float32
	if err := o.args(in, a[:], len(o.mask)); err != nil {
		return nil, err
	}
	kernels.Mul(o.y.d, a[0], o.mask)
	return o.y.t, nil
}

func (o *dropoutOp) DiffWRT(int) []bool { return []bool{true} }

func (o *dropoutOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(newDropoutOp("DropoutGrad", o.rate, o.shape, o.mask), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx}, nil
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy.

// xentOp computes -sum_ij T_ij * log softmax(X)_ij for logits X (n, k) and
// targets T (n, k). Training puts onehot/m in the rows of the m real
// examples of a batch and zeros in padding rows, so the result is the mean
// cross-entropy over the real examples. As a side effect it records the loss
// in float64, the number of real rows whose argmax matches the target, and
// the softmax probabilities its gradient uses.
type xentOp struct {
	opBase
	k       int
	p       []float32
	out     *G.F32
	loss    float64
	correct int
}

func newXentOp(n, k int) *xentOp {
	return &xentOp{opBase: opBase{name: "SoftmaxXent"}, k: k, p: make([]float32, n*k), out: new(G.F32)}
}

func (o *xentOp) Arity() int { return 2 }
func (o *xentOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(2), tensor.Float32)
}
func (o *xentOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }

func (o *xentOp) Do(in ...G.Value) (G.Value, error) {
	var a [2][]float32
	if err := o.args(in, a[:], len(o.p), len(o.p)); err != nil {
		return nil, err
	}
	o.loss, o.correct = kernels.SoftmaxXent(a[0], a[1], o.p, o.k)
	*o.out = G.F32(o.loss)
	return o.out, nil
}

func (o *xentOp) DiffWRT(int) []bool { return []bool{true, false} }

func (o *xentOp) SymDiff(in G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	gop := &xentGradOp{opBase{name: "SoftmaxXentGrad"}, o, newBuffer(in[0].Shape(), nil)}
	dx, err := G.ApplyOp(gop, in[0], in[1], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, nil}, nil
}

// xentGradOp is d xent / dX = g * (softmax(X) * rowsum(T) - T), from the
// probabilities its xentOp kept (X is an input for ordering only).
type xentGradOp struct {
	opBase
	f  *xentOp
	dx buffer
}

func (o *xentGradOp) Arity() int { return 3 }
func (o *xentGradOp) Type() hm.Type {
	return hm.NewFnType(f32Tensor(2), f32Tensor(2), tensor.Float32, f32Tensor(2))
}
func (o *xentGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return o.dx.t.Shape().Clone(), nil
}
func (o *xentGradOp) Do(in ...G.Value) (G.Value, error) { return o.UsePreallocDo(nil, in...) }

func (o *xentGradOp) UsePreallocDo(_ G.Value, in ...G.Value) (G.Value, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("%s: %d inputs, want 3", o.name, len(in))
	}
	t, err := f32s(in[1])
	if err != nil || len(t) != len(o.f.p) {
		return nil, fmt.Errorf("%s: bad targets (%v)", o.name, err)
	}
	g, err := scalarF32(in[2])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.name, err)
	}
	kernels.SoftmaxXentGrad(o.f.p, t, g, o.dx.d, o.f.k)
	return o.dx.t, nil
}
