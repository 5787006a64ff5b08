package kernels

import "math"

// The optimizer updates, each one pass over a weight buffer w and its
// gradient g (and the optimizer's state, shaped like w). The step-dependent
// coefficients are computed once per step by the caller; these are the
// per-element formulas of Keras 3, in float32. Each runs its C twin in the
// openblas build (bitwise the same, vectorized) and its Go version
// otherwise.

// SGD sets w -= lr*g.
func SGD(w, g []float32, lr float32) {
	if useNative {
		nativeSGD(w, g, lr)
		return
	}
	sGDGo(w, g, lr)
}

func sGDGo(w, g []float32, lr float32) {
	g = g[:len(w)]
	for j := range w {
		w[j] -= lr * g[j]
	}
}

// Momentum sets v = mom*v - lr*g; w += v (Keras' non-Nesterov momentum).
func Momentum(w, g, v []float32, lr, mom float32) {
	if useNative {
		nativeMomentum(w, g, v, lr, mom)
		return
	}
	momentumGo(w, g, v, lr, mom)
}

func momentumGo(w, g, v []float32, lr, mom float32) {
	g, v = g[:len(w)], v[:len(w)]
	for j := range w {
		v[j] = mom*v[j] - lr*g[j]
		w[j] += v[j]
	}
}

// Adam sets m += (g-m)*c1; v += (g²-v)*c2; w -= alpha*m/(sqrt(v)+eps),
// with c1 = 1-beta1, c2 = 1-beta2 (rounded once from the exact values) and
// alpha the bias-corrected learning rate of the step.
func Adam(w, g, m, v []float32, alpha, c1, c2, eps float32) {
	if useNative {
		nativeAdam(w, g, m, v, alpha, c1, c2, eps)
		return
	}
	adamGo(w, g, m, v, alpha, c1, c2, eps)
}

func adamGo(w, g, m, v []float32, alpha, c1, c2, eps float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for j := range w {
		gj := g[j]
		m[j] += (gj - m[j]) * c1
		v[j] += (gj*gj - v[j]) * c2
		w[j] -= alpha * m[j] / (sqrt32(v[j]) + eps)
	}
}

// Nadam sets m and v as Adam does (c1, c2), then
// w -= lr*(cm*m + cg*g)/(sqrt(v*cv)+eps) with the step's coefficients
// (see the models package's Nadam solver).
func Nadam(w, g, m, v []float32, lr, cm, cg, cv, c1, c2, eps float32) {
	if useNative {
		nativeNadam(w, g, m, v, lr, cm, cg, cv, c1, c2, eps)
		return
	}
	nadamGo(w, g, m, v, lr, cm, cg, cv, c1, c2, eps)
}

func nadamGo(w, g, m, v []float32, lr, cm, cg, cv, c1, c2, eps float32) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for j := range w {
		gj := g[j]
		m[j] += (gj - m[j]) * c1
		v[j] += (gj*gj - v[j]) * c2
		mhat := cm*m[j] + cg*gj
		w[j] -= lr * mhat / (sqrt32(v[j]*cv) + eps)
	}
}

// RMSprop sets v = rho*v + c*g²; w -= lr*g/sqrt(v+eps), with c = 1-rho.
func RMSprop(w, g, v []float32, lr, rho, c, eps float32) {
	if useNative {
		nativeRMSprop(w, g, v, lr, rho, c, eps)
		return
	}
	rMSpropGo(w, g, v, lr, rho, c, eps)
}

func rMSpropGo(w, g, v []float32, lr, rho, c, eps float32) {
	g, v = g[:len(w)], v[:len(w)]
	for j := range w {
		gj := g[j]
		v[j] = rho*v[j] + c*gj*gj
		w[j] -= lr * gj / sqrt32(v[j]+eps)
	}
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
