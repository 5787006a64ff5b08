package kernels

import "math/rand/v2"

// DropoutMask sets each element of mask to 0 with probability rate and to
// 1/(1-rate) otherwise (inverted dropout), drawing from r.
func DropoutMask(mask []float32, rate float64, r *rand.Rand) {
	scale := float32(1 / (1 - rate))
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
