package kernels

import "math/bits"

// PCG is the PCG-DXSM generator of math/rand/v2 (same seeds, same stream:
// NewPCG(a, b) here and rand.NewPCG(a, b) there give the same numbers),
// with its state in the open so that DropoutMask's C twin can draw from it.
type PCG struct{ hi, lo uint64 } // the C kernels rely on this layout

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

// jump returns the state k draws ahead. PCG's state is a 128-bit linear
// congruential generator, s' = a*s + c mod 2^128, so k steps are one
// affine map, found by squaring (Brown, "Random number generation with
// arbitrary strides", 1994).
func (p PCG) jump(k uint64) PCG {
	const (
		mulHi = 2549297995355413924
		mulLo = 4865540595714422341
		incHi = 6364136223846793005
		incLo = 1442695040888963407
	)
	accMul, accInc := u128{0, 1}, u128{0, 0}
	curMul, curInc := u128{mulHi, mulLo}, u128{incHi, incLo}
	for ; k > 0; k >>= 1 {
		if k&1 == 1 {
			accMul = accMul.mul(curMul)
			accInc = accInc.mul(curMul).add(curInc)
		}
		curInc = curMul.add(u128{0, 1}).mul(curInc)
		curMul = curMul.mul(curMul)
	}
	return PCG(accMul.mul(u128(p)).add(accInc))
}

// u128 is an unsigned 128-bit integer, arithmetic mod 2^128.
type u128 struct{ hi, lo uint64 }

func (a u128) mul(b u128) u128 {
	hi, lo := bits.Mul64(a.lo, b.lo)
	return u128{hi + a.hi*b.lo + a.lo*b.hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	return u128{a.hi + b.hi + c, lo}
}

// maskChunk is the number of mask elements per chunk of MaskFiller.Fill.
const maskChunk = 1 << 14

// A MaskFiller fills dropout masks from one PCG stream on the threads of a
// team: each fixed chunk of a mask starts from the stream's state at that
// chunk (found by jumping ahead), so the masks are exactly those of
// DropoutMask drawing in order, whatever the number of threads.
type MaskFiller struct {
	team      *Team
	r         *PCG
	mask      []float32
	rate      float64
	starts    []PCG
	ends      []PCG
	fillChunk func(int, int)
}

// NewMaskFiller returns a filler drawing from r on team's threads.
func NewMaskFiller(team *Team, r *PCG) *MaskFiller {
	f := &MaskFiller{team: team, r: r}
	f.fillChunk = f.chunk
	return f
}

// Fill is DropoutMask(mask, rate, r) on the team's threads.
func (f *MaskFiller) Fill(mask []float32, rate float64) {
	chunks := Chunks(len(mask), maskChunk)
	if chunks == 0 {
		return
	}
	if len(f.starts) < chunks { // once per size
		f.starts, f.ends = make([]PCG, chunks), make([]PCG, chunks)
	}
	s := *f.r
	for c := range chunks {
		f.starts[c] = s
		s = s.jump(maskChunk)
	}
	f.mask, f.rate = mask, rate
	f.team.Run(chunks, f.fillChunk)
	*f.r = f.ends[chunks-1]
	f.mask = nil
}

func (f *MaskFiller) chunk(c, _ int) {
	f.ends[c] = f.starts[c]
	DropoutMask(f.mask[c*maskChunk:min((c+1)*maskChunk, len(f.mask))], f.rate, &f.ends[c])
}

// State returns the generator's state, to store it (see SetState).
func (p *PCG) State() (hi, lo uint64) { return p.hi, p.lo }

// SetState puts the generator back in a state State returned.
func (p *PCG) SetState(hi, lo uint64) { p.hi, p.lo = hi, lo }
