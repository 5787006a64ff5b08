package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"github.com/fmtune/fmtune/models/kernels"
)

// The optimizers follow Keras 3 (keras/src/optimizers/*.py) with its
// defaults, in float32 like Keras:
//
//	sgd:     v = momentum*v - lr*g; w += v              (momentum 0: w -= lr*g)
//	adam:    m += (g-m)(1-b1); v += (g²-v)(1-b2)
//	         w -= lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)
//	nadam:   see NadamSolver
//	rmsprop: v = rho*v + (1-rho)*g²; w -= lr*g/sqrt(v+eps)
//
// with b1 0.9, b2 0.999, rho 0.9, eps 1e-7. Each is a gorgonia.Solver;
// training calls the same arithmetic (kernels) on one flat buffer of all
// the weights, split into chunks over threads. The step count t starts at
// 1. Gradients are read, never accumulated, so there is nothing to zero
// between steps.

const (
	beta1   = 0.9
	beta2   = 0.999
	rho     = 0.9
	epsilon = 1e-7
)

// solver is a gorgonia.Solver that can also update slices of its weights
// piecewise: prepare sizes the state, begin starts a step, and update
// applies the step to elements [lo, hi) of slot i (any number of ranges
// of the same step may run at once).
type solver interface {
	G.Solver
	prepare(sizes []int)
	begin()
	update(i int, w, g []float32, lo, hi int)
	state() SolverState        // for a checkpoint (shares the slots)
	restore(SolverState) error // after prepare
}

// NewSolver returns the optimizer named by cfg.Optimizer with cfg's learning
// rate (and momentum for sgd).
func NewSolver(cfg Config) (G.Solver, error) { return newSolver(cfg) }

func newSolver(cfg Config) (solver, error) {
	switch cfg.Optimizer {
	case SGD:
		return &SGDSolver{LR: cfg.LR, Momentum: cfg.Momentum}, nil
	case Adam:
		return &AdamSolver{LR: cfg.LR}, nil
	case Nadam:
		return &NadamSolver{LR: cfg.LR}, nil
	case RMSprop:
		return &RMSpropSolver{LR: cfg.LR}, nil
	}
	return nil, fmt.Errorf("%w: unknown optimizer %q", ErrInvalidConfig, cfg.Optimizer)
}

// step is Step for any solver: it reads the weights and gradients and
// applies one step to each, whole.
func step(s solver, model []G.ValueGrad) error {
	ws := make([][]float32, len(model))
	gs := make([][]float32, len(model))
	sizes := make([]int, len(model))
	for i, vg := range model {
		var err error
		if ws[i], err = f32s(vg.Value()); err != nil {
			return fmt.Errorf("weight %d: %w", i, err)
		}
		g, err := vg.Grad()
		if err != nil {
			return fmt.Errorf("gradient %d: %w", i, err)
		}
		if gs[i], err = f32s(g); err != nil {
			return fmt.Errorf("gradient %d: %w", i, err)
		}
		if len(gs[i]) != len(ws[i]) {
			return fmt.Errorf("gradient %d has %d values for %d weights", i, len(gs[i]), len(ws[i]))
		}
		sizes[i] = len(ws[i])
	}
	s.prepare(sizes)
	s.begin()
	for i := range ws {
		s.update(i, ws[i], gs[i], 0, len(ws[i]))
	}
	return nil
}

// slotState is one zeroed slice per weight slot.
type slotState [][]float32

func (s *slotState) prepare(sizes []int) {
	if len(*s) == len(sizes) {
		return
	}
	*s = make([][]float32, len(sizes))
	for i, n := range sizes {
		(*s)[i] = make([]float32, n)
	}
}

// SGDSolver is stochastic gradient descent with optional (non-Nesterov)
// momentum.
type SGDSolver struct {
	LR, Momentum float64
	velocity     slotState
}

// Step implements gorgonia.Solver.
func (s *SGDSolver) Step(model []G.ValueGrad) error { return step(s, model) }

func (s *SGDSolver) prepare(sizes []int) {
	if s.Momentum != 0 {
		s.velocity.prepare(sizes)
	}
}
func (s *SGDSolver) begin() {}
func (s *SGDSolver) update(i int, w, g []float32, lo, hi int) {
	if s.Momentum == 0 {
		kernels.SGD(w[lo:hi], g[lo:hi], float32(s.LR))
		return
	}
	kernels.Momentum(w[lo:hi], g[lo:hi], s.velocity[i][lo:hi], float32(s.LR), float32(s.Momentum))
}

// AdamSolver is Adam (Kingma & Ba) as Keras computes it.
type AdamSolver struct {
	LR    float64
	t     int
	alpha float32
	m, v  slotState
}

// Step implements gorgonia.Solver.
func (s *AdamSolver) Step(model []G.ValueGrad) error { return step(s, model) }

func (s *AdamSolver) prepare(sizes []int) { s.m.prepare(sizes); s.v.prepare(sizes) }
func (s *AdamSolver) begin() {
	s.t++
	t := float64(s.t)
	s.alpha = float32(s.LR * math.Sqrt(1-math.Pow(beta2, t)) / (1 - math.Pow(beta1, t)))
}
func (s *AdamSolver) update(i int, w, g []float32, lo, hi int) {
	kernels.Adam(w[lo:hi], g[lo:hi], s.m[i][lo:hi], s.v[i][lo:hi], s.alpha, 1-beta1, 1-beta2, epsilon)
}

// NadamSolver is Nadam (Dozat 2016, Adam with Nesterov momentum) exactly as
// Keras 3 computes it, with its momentum schedule
// u_t = b1 * (1 - 0.5 * 0.96^t). At step t (from 1):
//
//	U_t   = u_1 * ... * u_t                (running product)
//	m     = m + (g - m)(1 - b1)
//	v     = v + (g² - v)(1 - b2)
//	m̂     = u_{t+1} m / (1 - U_t u_{t+1}) + (1 - u_t) g / (1 - U_t)
//	v̂     = v / (1 - b2^t)
//	w     = w - lr m̂ / (sqrt(v̂) + eps)
type NadamSolver struct {
	LR         float64
	t          int
	uProduct   float64
	cm, cg, cv float32
	m, v       slotState
}

// Step implements gorgonia.Solver.
func (s *NadamSolver) Step(model []G.ValueGrad) error { return step(s, model) }

func (s *NadamSolver) prepare(sizes []int) { s.m.prepare(sizes); s.v.prepare(sizes) }
func (s *NadamSolver) begin() {
	if s.t == 0 {
		s.uProduct = 1
	}
	s.t++
	t := float64(s.t)
	ut := beta1 * (1 - 0.5*math.Pow(0.96, t))
	ut1 := beta1 * (1 - 0.5*math.Pow(0.96, t+1))
	s.uProduct *= ut
	uProd1 := s.uProduct * ut1
	s.cm = float32(ut1 / (1 - uProd1))          // coefficient of m in m̂
	s.cg = float32((1 - ut) / (1 - s.uProduct)) // coefficient of g in m̂
	s.cv = float32(1 / (1 - math.Pow(beta2, t)))
}
func (s *NadamSolver) update(i int, w, g []float32, lo, hi int) {
	kernels.Nadam(w[lo:hi], g[lo:hi], s.m[i][lo:hi], s.v[i][lo:hi], float32(s.LR), s.cm, s.cg, s.cv, 1-beta1, 1-beta2, epsilon)
}

// RMSpropSolver is RMSprop (Hinton) as Keras computes it, without momentum.
type RMSpropSolver struct {
	LR float64
	v  slotState
}

// Step implements gorgonia.Solver.
func (s *RMSpropSolver) Step(model []G.ValueGrad) error { return step(s, model) }

func (s *RMSpropSolver) prepare(sizes []int) { s.v.prepare(sizes) }
func (s *RMSpropSolver) begin()              {}
func (s *RMSpropSolver) update(i int, w, g []float32, lo, hi int) {
	kernels.RMSprop(w[lo:hi], g[lo:hi], s.v[i][lo:hi], float32(s.LR), rho, 1-rho, epsilon)
}

var (
	_ solver = (*SGDSolver)(nil)
	_ solver = (*AdamSolver)(nil)
	_ solver = (*NadamSolver)(nil)
	_ solver = (*RMSpropSolver)(nil)
)
