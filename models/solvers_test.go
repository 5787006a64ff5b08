package models

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fixedGrad is a weight with a gradient set by the test.
type fixedGrad struct{ w, g *tensor.Dense }

func (f fixedGrad) Value() G.Value         { return f.w }
func (f fixedGrad) Grad() (G.Value, error) { return f.g, nil }

func vec(v ...float32) *tensor.Dense { return tensor.New(tensor.WithBacking(v)) }

// runSteps applies s to the weights w with one gradient per step and
// returns the weights after each step.
func runSteps(t *testing.T, s G.Solver, w []float32, grads [][]float32) [][]float32 {
	t.Helper()
	wt := vec(append([]float32(nil), w...)...)
	var out [][]float32
	for _, g := range grads {
		if err := s.Step([]G.ValueGrad{fixedGrad{w: wt, g: vec(g...)}}); err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float32(nil), wt.Data().([]float32)...))
	}
	return out
}

func assertClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > tol {
			t.Errorf("%s[%d] = %.9f, want %.9f", what, i, got[i], want[i])
		}
	}
}

// TestNadamHandComputed checks Nadam against Keras 3's formula
// (keras/src/optimizers/nadam.py), beta1 0.9, beta2 0.999, eps 1e-7:
//
//	u_t = b1 (1 - 0.5·0.96^t),  U_t = u_1···u_t
//	m = m + (g-m)(1-b1);  v = v + (g²-v)(1-b2)
//	m̂ = u_{t+1} m / (1 - U_t u_{t+1}) + (1-u_t) g / (1-U_t)
//	w = w - lr m̂ / (sqrt(v / (1-b2^t)) + eps)
//
// for w = (1, -2), lr 0.01, gradients (0.5, -1), (0.1, 0.3), (-0.2, 0.4).
//
// Step 1, element 0 by hand: u_1 = 0.9(1-0.48) = 0.468, u_2 = 0.48528,
// U_1 = 0.468; m = 0.05, v = 0.00025; m̂ = 0.48528·0.05/(1-0.468·0.48528)
// + 0.532·0.5/0.532 = 0.0313940 + 0.5 = 0.5313940; v̂ = 0.25, sqrt 0.5;
// w = 1 - 0.01·0.5313940/0.5 = 0.9893721. Element 1 has g = -1 and v̂ = 1,
// m̂ = -1.0627880, so w = -2 + 0.0106279 = -1.9893721. Steps 2 and 3
// follow the same formula (u_3 = 0.5018688, U_2 = 0.22711104,
// U_3 = 0.11397995).
func TestNadamHandComputed(t *testing.T) {
	got := runSteps(t, &NadamSolver{LR: 0.01}, []float32{1, -2},
		[][]float32{{0.5, -1}, {0.1, 0.3}, {-0.2, 0.4}})
	want := [][]float64{
		{0.9893721241, -1.9893721230},
		{0.9866603857, -1.9916185360},
		{0.9897038607, -1.9949842214},
	}
	for i := range want {
		assertClose(t, "nadam step "+string(rune('1'+i)), got[i], want[i], 2e-6)
	}
}

// TestSolversFirstSteps checks the other optimizers' Keras formulas on
// steps worked out by hand.
func TestSolversFirstSteps(t *testing.T) {
	grads := [][]float32{{0.5, -1}, {0.1, 0.3}}
	cases := []struct {
		name string
		s    G.Solver
		want [][]float64
	}{
		// w -= lr g
		{"sgd", &SGDSolver{LR: 0.1}, [][]float64{{0.95, -1.9}, {0.94, -1.93}}},
		// v = 0.9 v - lr g; w += v: v1 = (-0.05, 0.1), v2 = (-0.055, 0.06)
		{"sgd-momentum", &SGDSolver{LR: 0.1, Momentum: 0.9}, [][]float64{{0.95, -1.9}, {0.895, -1.84}}},
		// Adam's first step is lr·sign(g) up to eps: m̂ = g, v̂ = g².
		// Step 2, element 0: m = 0.045+0.01 = 0.055, v = 0.00024975+0.00001
		// = 0.00025975; alpha = 0.01·sqrt(1-0.999²)/(1-0.9²) = 0.00235317;
		// w = 0.99 - 0.00235317·0.055/0.01611676 = 0.98196970.
		{"adam", &AdamSolver{LR: 0.01}, [][]float64{{0.99, -1.99}, {0.98196970, -1.98572156}}},
		// v = 0.9 v + 0.1 g²; w -= lr g / sqrt(v + eps). Step 1, element 0:
		// v = 0.025, 0.01·0.5/0.1581139 = 0.0316227. Step 2: v = 0.0235,
		// 0.01·0.1/0.1532971 = 0.0065233, w = 0.9618540.
		{"rmsprop", &RMSpropSolver{LR: 0.01}, [][]float64{{0.96837729, -1.96837724}, {0.96185402, -1.97791186}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runSteps(t, c.s, []float32{1, -2}, grads)
			for i := range c.want {
				assertClose(t, c.name, got[i], c.want[i], 2e-6)
			}
		})
	}
}
