package models

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
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
// with b1 0.9, b2 0.999, rho 0.9, eps 1e-7. Each is a gorgonia.Solver.
// The step count t starts at 1. Gradients are read, never accumulated, so
// there is nothing to zero between steps.

const (
	beta1   = 0.9
	beta2   = 0.999
	rho     = 0.9
	epsilon = 1e-7
)

// NewSolver returns the optimizer named by cfg.Optimizer with cfg's learning
// rate (and momentum for sgd).
func NewSolver(cfg Config) (G.Solver, error) {
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

// slots returns the weights and gradients of model as float32 slices.
func slots(model []G.ValueGrad) (ws, gs [][]float32, err error) {
	ws = make([][]float32, len(model))
	gs = make([][]float32, len(model))
	for i, vg := range model {
		if ws[i], err = f32s(vg.Value()); err != nil {
			return nil, nil, fmt.Errorf("weight %d: %w", i, err)
		}
		g, err := vg.Grad()
		if err != nil {
			return nil, nil, fmt.Errorf("gradient %d: %w", i, err)
		}
		if gs[i], err = f32s(g); err != nil {
			return nil, nil, fmt.Errorf("gradient %d: %w", i, err)
		}
		if len(gs[i]) != len(ws[i]) {
			return nil, nil, fmt.Errorf("gradient %d has %d values for %d weights", i, len(gs[i]), len(ws[i]))
		}
	}
	return ws, gs, nil
}

// state lazily allocates one zeroed slice per weight, shaped like ws.
func state(s *[][]float32, ws [][]float32) [][]float32 {
	if len(*s) != len(ws) {
		*s = make([][]float32, len(ws))
		for i, w := range ws {
			(*s)[i] = make([]float32, len(w))
		}
	}
	return *s
}

// SGDSolver is stochastic gradient descent with optional (non-Nesterov)
// momentum.
type SGDSolver struct {
	LR, Momentum float64
	velocity     [][]float32
}

// Step implements gorgonia.Solver.
func (s *SGDSolver) Step(model []G.ValueGrad) error {
	ws, gs, err := slots(model)
	if err != nil {
		return err
	}
	lr := float32(s.LR)
	if s.Momentum == 0 {
		for i, w := range ws {
			for j, g := range gs[i] {
				w[j] -= lr * g
			}
		}
		return nil
	}
	mom := float32(s.Momentum)
	vs := state(&s.velocity, ws)
	for i, w := range ws {
		v := vs[i]
		for j, g := range gs[i] {
			v[j] = mom*v[j] - lr*g
			w[j] += v[j]
		}
	}
	return nil
}

// AdamSolver is Adam (Kingma & Ba) as Keras computes it.
type AdamSolver struct {
	LR   float64
	t    int
	m, v [][]float32
}

// Step implements gorgonia.Solver.
func (s *AdamSolver) Step(model []G.ValueGrad) error {
	ws, gs, err := slots(model)
	if err != nil {
		return err
	}
	s.t++
	t := float64(s.t)
	alpha := float32(s.LR * math.Sqrt(1-math.Pow(beta2, t)) / (1 - math.Pow(beta1, t)))
	ms, vs := state(&s.m, ws), state(&s.v, ws)
	for i, w := range ws {
		m, v := ms[i], vs[i]
		for j, g := range gs[i] {
			m[j] += (g - m[j]) * (1 - beta1)
			v[j] += (g*g - v[j]) * (1 - beta2)
			w[j] -= alpha * m[j] / (sqrt32(v[j]) + epsilon)
		}
	}
	return nil
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
	LR       float64
	t        int
	uProduct float64
	m, v     [][]float32
}

// Step implements gorgonia.Solver.
func (s *NadamSolver) Step(model []G.ValueGrad) error {
	ws, gs, err := slots(model)
	if err != nil {
		return err
	}
	if s.t == 0 {
		s.uProduct = 1
	}
	s.t++
	t := float64(s.t)
	ut := beta1 * (1 - 0.5*math.Pow(0.96, t))
	ut1 := beta1 * (1 - 0.5*math.Pow(0.96, t+1))
	s.uProduct *= ut
	uProd1 := s.uProduct * ut1
	cm := float32(ut1 / (1 - uProd1))          // coefficient of m in m̂
	cg := float32((1 - ut) / (1 - s.uProduct)) // coefficient of g in m̂
	cv := float32(1 / (1 - math.Pow(beta2, t)))
	lr := float32(s.LR)
	ms, vs := state(&s.m, ws), state(&s.v, ws)
	for i, w := range ws {
		m, v := ms[i], vs[i]
		for j, g := range gs[i] {
			m[j] += (g - m[j]) * (1 - beta1)
			v[j] += (g*g - v[j]) * (1 - beta2)
			mhat := cm*m[j] + cg*g
			w[j] -= lr * mhat / (sqrt32(v[j]*cv) + epsilon)
		}
	}
	return nil
}

// RMSpropSolver is RMSprop (Hinton) as Keras computes it, without momentum.
type RMSpropSolver struct {
	LR float64
	v  [][]float32
}

// Step implements gorgonia.Solver.
func (s *RMSpropSolver) Step(model []G.ValueGrad) error {
	ws, gs, err := slots(model)
	if err != nil {
		return err
	}
	lr := float32(s.LR)
	vs := state(&s.v, ws)
	for i, w := range ws {
		v := vs[i]
		for j, g := range gs[i] {
			v[j] = rho*v[j] + (1-rho)*g*g
			w[j] -= lr * g / sqrt32(v[j]+epsilon)
		}
	}
	return nil
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// paramGrad pairs a weight tensor with the graph node computing its
// gradient: a gorgonia.ValueGrad that reads the gradient of the last run.
type paramGrad struct {
	w    *tensor.Dense
	grad *G.Node
}

func (p paramGrad) Value() G.Value { return p.w }

func (p paramGrad) Grad() (G.Value, error) {
	v := p.grad.Value()
	if v == nil {
		return nil, fmt.Errorf("gradient %v not computed yet", p.grad.Name())
	}
	return v, nil
}

var (
	_ G.Solver    = (*SGDSolver)(nil)
	_ G.Solver    = (*AdamSolver)(nil)
	_ G.Solver    = (*NadamSolver)(nil)
	_ G.Solver    = (*RMSpropSolver)(nil)
	_ G.ValueGrad = paramGrad{}
)
