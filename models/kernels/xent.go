package kernels

import "math"

// SoftmaxXent computes softmax cross-entropy for logits x (rows×k) and
// targets t (rows×k, each row a class distribution scaled by the row's
// weight; an all-zero row is padding and ignored). It writes the softmax
// probabilities to p (zero in padding rows) and returns
// -sum t*log softmax(x) and the number of real rows whose largest logit is
// the target's largest entry.
func SoftmaxXent(x, t, p []float32, k int) (loss float64, correct int) {
	for r := 0; r+k <= len(x); r += k {
		row, tr, pr := x[r:r+k:r+k], t[r:r+k:r+k], p[r:r+k:r+k]
		var tsum float32
		best, target := 0, 0
		for j, v := range tr {
			tsum += v
			if v > tr[target] {
				target = j
			}
			if row[j] > row[best] {
				best = j
			}
		}
		if tsum == 0 {
			clear(pr)
			continue
		}
		m := row[best]
		var s float32
		for j, v := range row {
			e := exp32(v - m)
			pr[j] = e
			s += e
		}
		inv := 1 / s
		lse := float64(m) + math.Log(float64(s))
		for j, v := range tr {
			pr[j] *= inv
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

// SoftmaxXentGrad sets dx = g * (p*rowsum(t) - t), the gradient of
// SoftmaxXent's loss times g, from the probabilities it wrote.
func SoftmaxXentGrad(p, t []float32, g float32, dx []float32, k int) {
	for r := 0; r+k <= len(p); r += k {
		pr, tr, dr := p[r:r+k:r+k], t[r:r+k:r+k], dx[r:r+k:r+k]
		var tsum float32
		for _, v := range tr {
			tsum += v
		}
		for j := range pr {
			dr[j] = g * (pr[j]*tsum - tr[j])
		}
	}
}
