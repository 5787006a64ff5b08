package kernels

import "math/bits"

// PCG is the PCG-DXSM generator of math/rand/v2 (same seeds, same stream:
// NewPCG(a, b) here and rand.NewPCG(a, b) there give the same numbers),
// with its state in the open so that DropoutMask's C twin can draw from it.
type PCG struct{ hi, lo uint64 }

// NewPCG returns a generator seeded like rand.NewPCG(seed1, seed2).
func NewPCG(seed1, seed2 uint64) *PCG { return &PCG{seed1, seed2} }

// Uint64 returns the next number of the stream.
func (p *PCG) Uint64() uint64 {
	const (
		mulHi    = 2549297995355413924
		mulLo    = 4865540595714422341
		incHi    = 6364136223846793005
		incLo    = 1442695040888963407
		cheapMul = 0xda942042e4dd58b5
	)
	hi, lo := bits.Mul64(p.lo, mulLo)
	hi += p.hi*mulLo + p.lo*mulHi
	lo, c := bits.Add64(lo, incLo, 0)
	hi, _ = bits.Add64(hi, incHi, c)
	p.lo, p.hi = lo, hi
	hi ^= hi >> 32
	hi *= cheapMul
	hi ^= hi >> 48
	hi *= lo | 1
	return hi
}

// DropoutMask sets each element of mask to 0 with probability rate and to
// 1/(1-rate) otherwise (inverted dropout), drawing one number from r per
// element.
func DropoutMask(mask []float32, rate float64, r *PCG) {
	scale := float32(1 / (1 - rate))
	// Compare 53-bit uniforms against the rate, as rand.Float64 does.
	threshold := uint64(rate * (1 << 53))
	if useNative && len(mask) > 0 {
		nativeDropoutMask(mask, threshold, scale, r)
		return
	}
	for i := range mask {
		if r.Uint64()>>11 < threshold {
			mask[i] = 0
		} else {
			mask[i] = scale
		}
	}
}
