package models

import (
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dropout is one inverted-dropout site of a training graph: the graph
// multiplies the activations by mask, which holds 0 with probability rate
// and 1/(1-rate) otherwise. Since the mask is an input of an elementwise
// product, the backward pass multiplies the gradient by the same mask, so
// the scaling is 1/(1-rate) both ways. (gorgonia.Dropout scales the
// gradient by 1/rate and draws from the clock.)
type dropout struct {
	rate  float64
	scale float32
	mask  *tensor.Dense
	data  []float32
	node  *G.Node // the mask's input node
}

func newDropout(rate float64, shape tensor.Shape) *dropout {
	mask := tensor.New(tensor.WithShape(shape.Clone()...), tensor.Of(tensor.Float32))
	return &dropout{
		rate:  rate,
		scale: float32(1 / (1 - rate)),
		mask:  mask,
		data:  mask.Data().([]float32),
	}
}

// fill draws a new mask from r.
func (d *dropout) fill(r *rand.Rand) {
	fillMask(d.data, d.rate, d.scale, r)
}

// fillMask sets each element of mask to 0 with probability rate and to
// scale otherwise.
func fillMask(mask []float32, rate float64, scale float32, r *rand.Rand) {
	// Compare 53-bit uniforms against the rate, as Float64 does, without
	// its call overhead per element.
	threshold := uint64(rate * (1 << 53))
	for i := range mask {
		if r.Uint64()>>11 < threshold {
			mask[i] = 0
		} else {
			mask[i] = scale
		}
	}
}
