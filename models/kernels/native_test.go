//go:build openblas

package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNativeMatchesGo runs every C kernel and its Go twin on the same
// random inputs (odd lengths, so the vector loops' tails run too): the
// results are bitwise equal.
func TestNativeMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const n = 1037
	both := func(name string, fn func() [][]float32) {
		t.Helper()
		useNative = true
		got := fn()
		useNative = false
		want := fn()
		useNative = native
		for i := range want {
			for j := range want[i] {
				if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
					t.Fatalf("%s: output %d [%d] = %v in C, %v in Go", name, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
	w, g, m, v := randomSlice(r, n), randomSlice(r, n), randomSlice(r, n), randomSlice(r, n)
	for i := range v {
		v[i] = float32(math.Abs(float64(v[i])))
	}
	state := func() (w2, m2, v2 []float32) { return slices.Clone(w), slices.Clone(m), slices.Clone(v) }
	both("Adam", func() [][]float32 {
		w2, m2, v2 := state()
		Adam(w2, g, m2, v2, 0.003, 0.1, 0.001, 1e-7)
		return [][]float32{w2, m2, v2}
	})
	both("Nadam", func() [][]float32 {
		w2, m2, v2 := state()
		Nadam(w2, g, m2, v2, 0.002, 0.9, 0.5, 1.2, 0.1, 0.001, 1e-7)
		return [][]float32{w2, m2, v2}
	})
	both("RMSprop", func() [][]float32 {
		w2, _, v2 := state()
		RMSprop(w2, g, v2, 0.01, 0.9, 0.1, 1e-7)
		return [][]float32{w2, v2}
	})
	both("SGD", func() [][]float32 { w2, _, _ := state(); SGD(w2, g, 0.1); return [][]float32{w2} })
	both("Momentum", func() [][]float32 {
		w2, _, v2 := state()
		Momentum(w2, g, v2, 0.1, 0.9)
		return [][]float32{w2, v2}
	})
	pixels := make([]uint8, 5*n)
	for i := range pixels {
		pixels[i] = uint8(r.IntN(256))
	}
	both("GatherScale", func() [][]float32 {
		dst := make([]float32, 3*n)
		GatherScale(dst, pixels, []int{4, 0, 2}, n)
		return [][]float32{dst}
	})
	const cols = 17
	b := randomSlice(r, cols)
	big := randomSlice(r, 61*cols)
	for i := range big {
		big[i] *= 120 // reach the sigmoid's clamp
	}
	for _, act := range []Act{Linear, ReLU, Sigmoid} {
		both("BiasAct "+act.String(), func() [][]float32 { y := slices.Clone(big); BiasAct(y, b, act); return [][]float32{y} })
		both("ActGrad "+act.String(), func() [][]float32 {
			dz := make([]float32, len(big))
			ActGrad(m[:len(big)], g[:len(big)], dz, act)
			return [][]float32{dz}
		})
	}
	both("addColSum", func() [][]float32 { d := slices.Clone(b); addColSum(d, big); return [][]float32{d} })
	both("Add", func() [][]float32 { d := slices.Clone(w); Add(d, g); return [][]float32{d} })
	both("Mul", func() [][]float32 { d := make([]float32, n); Mul(d, w, g); return [][]float32{d} })
	const h, wd, c = 7, 9, 5
	x := randomSlice(r, 3*h*wd*c)
	both("MaxPool2", func() [][]float32 {
		y := make([]float32, 3*(h/2)*(wd/2)*c)
		arg := make([]uint8, len(y))
		MaxPool2(x, h, wd, c, y, arg)
		argf := make([]float32, len(arg))
		for i, a := range arg {
			argf[i] = float32(a)
		}
		return [][]float32{y, argf}
	})
	both("MaxPool2Grad", func() [][]float32 {
		y := make([]float32, 3*(h/2)*(wd/2)*c)
		arg := make([]uint8, len(y))
		MaxPool2(x, h, wd, c, y, arg)
		dx := randomSlice(r, len(x))
		MaxPool2Grad(y, arg, h, wd, c, dx)
		return [][]float32{dx}
	})
	both("DropoutMask", func() [][]float32 {
		mask := make([]float32, n)
		r := NewPCG(5, 6)
		DropoutMask(mask, 0.3, r)
		return [][]float32{mask, {float32(r.Uint64())}} // the state moved on alike
	})
	for _, f := range []int{16, 32} { // 32: the register-blocked C version
		g1 := ConvGeom{H: h, W: wd, C: 1, K: 3, F: f}
		x1 := randomSlice(r, 3*g1.InSize())
		w1 := randomSlice(r, g1.Cols()*g1.F)
		both("Conv1", func() [][]float32 { z := make([]float32, 3*g1.OutSize()); Conv1(g1, x1, w1, z); return [][]float32{z} })
		dz1 := randomSlice(r, 3*g1.OutSize())
		both("Conv1WeightGrad", func() [][]float32 {
			dw := make([]float32, len(w1))
			Conv1WeightGrad(g1, x1, dz1, dw)
			return [][]float32{dw}
		})
	}
	geom := ConvGeom{H: h, W: wd, C: c, K: 3, F: 4}
	both("Im2col", func() [][]float32 {
		col := make([]float32, 3*geom.ColSize())
		Im2col(geom, x, col)
		return [][]float32{col}
	})
	dcol := randomSlice(r, 3*geom.ColSize())
	both("Col2im", func() [][]float32 {
		dx := randomSlice(r, 3*geom.InSize())
		Col2im(geom, dcol, dx)
		return [][]float32{dx}
	})
}
