package kernels

import "math"

// Act is an activation fused into a layer's forward pass.
type Act uint8

// The activations.
const (
	Linear Act = iota
	ReLU
	Sigmoid
)

func (a Act) String() string {
	switch a {
	case ReLU:
		return "relu"
	case Sigmoid:
		return "sigmoid"
	}
	return "linear"
}

// BiasAct sets each row r of y (rows×len(b)) to act(y[r] + b).
func BiasAct(y []float32, b []float32, act Act) {
	if useNative && len(b) > 0 && len(y) > 0 {
		nativeBiasAct(y[:len(y)/len(b)*len(b)], b, act)
		return
	}
	biasActGo(y, b, act)
}

func biasActGo(y []float32, b []float32, act Act) {
	cols := len(b)
	for r := 0; r+cols <= len(y); r += cols {
		row := y[r : r+cols : r+cols]
		switch act {
		case ReLU:
			for j, bv := range b {
				row[j] = max(row[j]+bv, 0)
			}
		case Sigmoid:
			for j, bv := range b {
				row[j] = sigmoid(row[j] + bv)
			}
		default:
			for j, bv := range b {
				row[j] += bv
			}
		}
	}
}

// ActGrad sets dz = dy * act'(z) given the activation's output y = act(z).
func ActGrad(y, dy, dz []float32, act Act) {
	dy, dz = dy[:len(y)], dz[:len(y)]
	if useNative && len(y) > 0 {
		nativeActGrad(y, dy, dz, act)
		return
	}
	actGradGo(y, dy, dz, act)
}

func actGradGo(y, dy, dz []float32, act Act) {
	switch act {
	case ReLU:
		for i, v := range y {
			if v > 0 {
				dz[i] = dy[i]
			} else {
				dz[i] = 0
			}
		}
	case Sigmoid:
		for i, v := range y {
			dz[i] = dy[i] * v * (1 - v)
		}
	default:
		copy(dz, dy)
	}
}

// ColSum sets dst[j] to the sum of column j of the rows×len(dst) matrix g.
func ColSum(dst, g []float32) {
	clear(dst)
	addColSum(dst, g)
}

// addColSum adds the column sums of the rows×len(dst) matrix g to dst.
func addColSum(dst, g []float32) {
	if useNative && len(dst) > 0 && len(g) >= len(dst) {
		nativeAddColSum(dst, g[:len(g)/len(dst)*len(dst)])
		return
	}
	addColSumGo(dst, g)
}

func addColSumGo(dst, g []float32) {
	cols := len(dst)
	for r := 0; r+cols <= len(g); r += cols {
		for j, v := range g[r : r+cols : r+cols] {
			dst[j] += v
		}
	}
}

// Add sets dst[i] += src[i].
func Add(dst, src []float32) {
	src = src[:len(dst)]
	if useNative && len(dst) > 0 {
		nativeAdd(dst, src)
		return
	}
	for i, v := range src {
		dst[i] += v
	}
}

// Mul sets dst[i] = x[i] * m[i].
func Mul(dst, x, m []float32) {
	x, m = x[:len(dst)], m[:len(dst)]
	if useNative && len(dst) > 0 {
		nativeMul(dst, x, m)
		return
	}
	for i := range dst {
		dst[i] = x[i] * m[i]
	}
}

// sigmoid is 1/(1+exp(-x)) in float32. The input is clamped to ±87 so the
// result is never subnormal (which the CPU handles many times slower).
func sigmoid(x float32) float32 {
	x = min(max(x, -87), 87)
	return 1 / (1 + exp32(-x))
}

// exp32 is e^x in float32 (Cephes' expf: range reduction to |r| <= ln2/2 and
// a degree-6 polynomial, within 2 ulp). Below -87.3 it returns 0 (never
// a subnormal); NaN stays NaN.
func exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88:
		return float32(math.Exp(float64(x))) // 2^n would overflow below

	case x < -87.33654:
		return 0
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
		// Adding and subtracting 1.5·2²³ rounds a float32 of magnitude
		// below 2²² to the nearest integer, without a branch or a call.
		round = 12582912
	)
	fn := x*log2e + round
	n := fn - round
	ni := int32(math.Float32bits(fn)) - int32(math.Float32bits(round)) // n as an integer
	r := x - n*c1 - n*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

// useNative is native, switched off by the tests that compare the C
// kernels with their Go twins.
var useNative = native

// Native says the elementwise kernels run in C (the openblas build). In
// the pure-Go build, Conv1 in Go is slower than im2col with gonum's
// matrix product, so callers choose by it.
const Native = native

// Scale writes the pixel bytes src to dst, scaled to [0,1] as byte/255 in
// float32.
func Scale(dst []float32, src []uint8) {
	dst = dst[:len(src)]
	if useNative && len(src) > 0 {
		nativeScale(dst, src)
		return
	}
	for j, v := range src {
		dst[j] = float32(v) / 255
	}
}

// GatherScale writes the pixels of the images idx of images (pixels bytes
// each) to dst, scaled to [0,1] as byte/255 in float32.
func GatherScale(dst []float32, images []uint8, idx []int, pixels int) {
	for k, i := range idx {
		Scale(dst[k*pixels:(k+1)*pixels], images[i*pixels:(i+1)*pixels])
	}
}
