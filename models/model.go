package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models/kernels"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// graphMu serialises graph construction and compilation: gorgonia shares
// global constant nodes and counters between graphs while building them.
// Running compiled graphs needs no lock.
var graphMu sync.Mutex

// Model is an architecture with its weights. The weights live in one flat
// buffer (the tensors are views of it, in the order of the architecture's
// parameters), so an optimizer updates them in one pass. Training graphs
// and evaluation graphs bind the same weight tensors, so an update by the
// optimizer is seen by all of them.
type Model struct {
	arch   *arch
	flat   []float32
	params []*tensor.Dense

	mu    sync.Mutex         // guards evals, team and their use
	team  kernels.Team       // the threads evaluation uses
	evals map[int]*evalGraph // forward-only graphs by batch size
}

// NewModel returns arch's network with Glorot-uniform weights drawn from
// seed and zero biases.
func NewModel(archName string, seed int64) (*Model, error) {
	a := lookupArch(archName)
	if a == nil {
		return nil, fmt.Errorf("%w: unknown architecture %q", ErrInvalidConfig, archName)
	}
	m := &Model{arch: a, flat: make([]float32, a.paramCount()), evals: map[int]*evalGraph{}}
	r := rand.New(rand.NewSource(seed))
	off := 0
	for _, p := range a.params {
		w := m.flat[off : off+p.shape.TotalSize()]
		off += len(w)
		if p.fanIn > 0 {
			glorotUniform(w, p.fanIn, p.fanOut, r)
		}
		m.params = append(m.params, tensor.New(tensor.WithShape(p.shape.Clone()...), tensor.WithBacking(w)))
	}
	return m, nil
}

// glorotUniform fills w from U(-l, l) with l = sqrt(6 / (fanIn + fanOut)),
// Keras' default initialiser.
func glorotUniform(w []float32, fanIn, fanOut int, r *rand.Rand) {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	for i := range w {
		w[i] = float32((2*r.Float64() - 1) * limit)
	}
}

// Arch is the model's architecture name.
func (m *Model) Arch() string { return m.arch.name }

// NumParams is the number of trainable parameters.
func (m *Model) NumParams() int { return m.arch.paramCount() }

// graph is a graph of fixed batch size whose input tensor the caller
// fills in place before each run.
type graph struct {
	batch  int
	g      *G.ExprGraph
	plan   *plan
	tape   G.VM      // gorgonia's TapeMachine instead of plan, for tests
	x      []float32 // input backing array, batch * 784
	logits *G.Node
}

// build constructs and plans a graph of m for batch examples whose
// operators run on team. train adds dropout masks, the loss and the
// gradients, which go to one flat buffer laid out like the weights.
func (m *Model) build(batch int, train bool, team *kernels.Team) (gr *graph, tg *trainGraph, err error) {
	graphMu.Lock()
	defer graphMu.Unlock()
	// gorgonia panics on shape and compile errors.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("models: build %s graph: %v", m.arch.name, r)
		}
	}()

	g := G.NewGraph()
	shape := m.arch.inputShape(batch)
	xT := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
	x := G.NewTensor(g, tensor.Float32, shape.Dims(), G.WithShape(shape...), G.WithValue(xT), G.WithName("x"))
	p := make([]*G.Node, len(m.params))
	for i, spec := range m.arch.params {
		p[i] = G.NewTensor(g, tensor.Float32, spec.shape.Dims(), G.WithShape(spec.shape...),
			G.WithValue(m.params[i]), G.WithName(spec.name))
	}
	b := &builder{g: g, team: team, input: x, train: train}
	var grad []float32
	if train {
		grad = make([]float32, len(m.flat))
		b.grads = map[*G.Node][]float32{}
		off := 0
		for i, n := range p {
			size := m.params[i].Shape().TotalSize()
			b.grads[n] = grad[off : off+size]
			off += size
		}
	}
	logits := m.arch.forward(b, x, p)
	if b.err != nil {
		return nil, nil, fmt.Errorf("models: build %s graph: %w", m.arch.name, b.err)
	}
	gr = &graph{batch: batch, g: g, x: f32sOf(xT), logits: logits}
	if train {
		tT := tensor.New(tensor.WithShape(batch, data.Classes), tensor.Of(tensor.Float32))
		t := G.NewTensor(g, tensor.Float32, 2, G.WithShape(batch, data.Classes), G.WithValue(tT), G.WithName("target"))
		xent := newXentOp(batch, data.Classes)
		loss := b.apply("loss", xent, logits, t)
		if b.err != nil {
			return nil, nil, fmt.Errorf("models: build %s graph: %w", m.arch.name, b.err)
		}
		grads, err := G.Grad(loss, p...)
		if err != nil {
			return nil, nil, fmt.Errorf("models: differentiate %s: %w", m.arch.name, err)
		}
		// Each weight's gradient must be computed by one of our operators,
		// which write it into grad; anything else would leave grad stale.
		for i, gn := range grads {
			switch gn.Op().(type) {
			case *denseGradOp, *convPoolGradOp, *sideOp:
			default:
				return nil, nil, fmt.Errorf("models: gradient of %s is computed by %v, not a layer's gradient operator", m.arch.params[i].name, gn.Op())
			}
		}
		tg = &trainGraph{graph: gr, t: f32sOf(tT), xent: xent, drops: b.drops, grad: grad, team: team}
	}
	if gr.plan, err = newPlan(g); err != nil {
		return nil, nil, fmt.Errorf("models: plan %s graph: %w", m.arch.name, err)
	}
	return gr, tg, nil
}

// f32sOf is the data of a float32 tensor made here.
func f32sOf(t *tensor.Dense) []float32 {
	d, err := f32s(t)
	if err != nil {
		panic(err) // only called on tensors of tensor.Float32
	}
	return d
}

// run executes the graph once.
func (gr *graph) run() error {
	if gr.tape != nil {
		gr.tape.Reset()
		return gr.tape.RunAll()
	}
	return gr.plan.run()
}

// logitsValue is the logits of the last run.
func (gr *graph) logitsValue() G.Value {
	if gr.tape != nil {
		return gr.logits.Value()
	}
	return gr.plan.value(gr.logits)
}

// trainGraph is a graph with loss and gradients.
type trainGraph struct {
	*graph
	t     []float32 // targets, batch * 10
	xent  *xentOp
	drops []*dropoutOp
	grad  []float32 // the gradients, laid out like Model.flat
	team  *kernels.Team

	masks     *kernels.MaskFiller // draws the dropout masks from masksFrom
	masksFrom *randSource
}

// step runs forward and backward on the examples idx of set (at most
// batch) and returns the mean loss and the number of correct predictions.
// It does not update the weights.
func (tg *trainGraph) step(set *data.Set, idx []int, r *randSource) (loss float64, correct int, err error) {
	kernels.GatherScale(tg.x, set.Images, idx, data.Pixels)
	clear(tg.x[len(idx)*data.Pixels:])
	clear(tg.t)
	w := 1 / float32(len(idx))
	for k, i := range idx {
		tg.t[k*data.Classes+int(set.Labels[i])] = w
	}
	if len(tg.drops) > 0 && (tg.masks == nil || tg.masksFrom != r) {
		tg.masks, tg.masksFrom = kernels.NewMaskFiller(tg.team, r.drop), r
	}
	for _, d := range tg.drops {
		tg.masks.Fill(d.mask, d.rate)
	}
	if err := tg.run(); err != nil {
		return 0, 0, err
	}
	return tg.xent.loss, tg.xent.correct, nil
}

// evalGraph returns the forward-only graph for batch, building it once.
// The caller holds m.mu.
func (m *Model) evalGraph(batch int) (*graph, error) {
	if gr, ok := m.evals[batch]; ok {
		return gr.graph, nil
	}
	gr, _, err := m.build(batch, false, &m.team)
	if err != nil {
		return nil, err
	}
	m.evals[batch] = &evalGraph{gr}
	return gr, nil
}

type evalGraph struct{ *graph }

// Evaluate returns the mean cross-entropy loss and the accuracy of the
// model on every example of set, in order, without dropout. A last partial
// batch is padded and only its real examples count.
func (m *Model) Evaluate(set *data.Set) (loss, acc float64, err error) {
	return m.evaluate(context.Background(), set)
}

func (m *Model) evaluate(ctx context.Context, set *data.Set) (loss, acc float64, err error) {
	n := set.Len()
	if n == 0 {
		return 0, 0, errors.New("models: evaluate: empty set")
	}
	var sum float64
	correct := 0
	err = m.forward(ctx, set, func(i int, logits []float32) {
		lse := logSumExp(logits)
		l := int(set.Labels[i])
		sum += lse - float64(logits[l])
		if argmax(logits) == l {
			correct++
		}
	})
	if err != nil {
		return 0, 0, err
	}
	return sum / float64(n), float64(correct) / float64(n), nil
}

// Predict returns the predicted class of every example of set.
func (m *Model) Predict(set *data.Set) ([]uint8, error) {
	out := make([]uint8, set.Len())
	err := m.forward(context.Background(), set, func(i int, logits []float32) {
		out[i] = uint8(argmax(logits))
	})
	return out, err
}

// forward runs the evaluation graph over set and calls fn with the logits
// of each example in order.
func (m *Model) forward(ctx context.Context, set *data.Set, fn func(i int, logits []float32)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := set.Len()
	gr, err := m.evalGraph(min(m.arch.evalBatch, max(n, 1)))
	if err != nil {
		return err
	}
	for from := 0; from < n; from += gr.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		to := min(from+gr.batch, n)
		kernels.Scale(gr.x, set.Images[from*data.Pixels:to*data.Pixels])
		clear(gr.x[(to-from)*data.Pixels:])
		if err := gr.run(); err != nil {
			return fmt.Errorf("models: evaluate: %w", err)
		}
		out, err := f32s(gr.logitsValue())
		if err != nil {
			return fmt.Errorf("models: evaluate: %w", err)
		}
		for i := from; i < to; i++ {
			r := (i - from) * data.Classes
			fn(i, out[r:r+data.Classes])
		}
	}
	return nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// logSumExp is log(sum(exp(row))) in float64, shifted by the row's maximum.
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
