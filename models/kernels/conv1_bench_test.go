package kernels

import "testing"

func BenchmarkConv1Chunk(b *testing.B) {
	g := ConvGeom{H: 28, W: 28, C: 1, K: 3, F: 32}
	x := make([]float32, 8*g.InSize())
	w := make([]float32, g.Cols()*g.F)
	z := make([]float32, 8*g.OutSize())
	for i := range x {
		x[i] = float32(i%11) * 0.1
	}
	for b.Loop() {
		Conv1(g, x, w, z)
	}
}

func BenchmarkMaxPoolChunk(b *testing.B) {
	g := ConvGeom{H: 28, W: 28, C: 1, K: 3, F: 32}
	z := make([]float32, 8*g.OutSize())
	y := make([]float32, 8*13*13*32)
	arg := make([]uint8, len(y))
	for i := range z {
		z[i] = float32(i%11) * 0.1
	}
	for b.Loop() {
		MaxPool2(z, 26, 26, 32, y, arg)
	}
}

func BenchmarkConv1WeightGradChunk(b *testing.B) {
	g := ConvGeom{H: 28, W: 28, C: 1, K: 3, F: 32}
	x := make([]float32, 8*g.InSize())
	dw := make([]float32, g.Cols()*g.F)
	dz := make([]float32, 8*g.OutSize())
	for i := range x {
		x[i] = float32(i%11) * 0.1
	}
	for b.Loop() {
		Conv1WeightGrad(g, x, dz, dw)
	}
}
