package kernels

import (
	"fmt"
	"testing"
	"time"
)

// gemmShape is one matrix product of a training step.
type gemmShape struct {
	what    string
	ta, tb  bool
	m, n, k int
	calls   int // per training step of batch 128
}

// cnnGemms are the products of one cnn training step at batch 128, as the
// operators split them (convolutions by chunks of 8 images, dense layers
// by rows).
var cnnGemms = []gemmShape{
	{"conv1 forward", false, false, 8 * 676, 32, 9, 16},
	{"conv1 dW", true, false, 9, 32, 8 * 676, 16},
	{"conv2 forward", false, false, 8 * 121, 64, 288, 16},
	{"conv2 dW", true, false, 288, 64, 8 * 121, 16},
	{"conv2 dX", false, true, 8 * 121, 288, 64, 16},
	{"dense1 forward", false, false, 24, 128, 1600, 5},
	{"dense1 forward tail", false, false, 8, 128, 1600, 1},
	{"dense1 dW", true, false, 256, 128, 128, 6},
	{"dense1 dW tail", true, false, 64, 128, 128, 1},
	{"dense1 dX", false, true, 24, 1600, 128, 5},
	{"dense1 dX tail", false, true, 8, 1600, 128, 1},
	{"out forward", false, false, 128, 10, 128, 1},
	{"out dW", true, false, 128, 10, 128, 1},
	{"out dX", false, true, 128, 128, 10, 1},
}

// BenchmarkGemmCNNStep times the matrix products of one cnn training step
// alone, on one thread, and reports their GFLOP/s and the samples/s they
// alone would allow: the bound that the cnn's training speed is compared
// with (fmtune bench's GEMM% column is the share of that bound achieved).
// Run: go test -tags openblas -run '^$' -bench GemmCNNStep ./models/kernels/
func BenchmarkGemmCNNStep(b *testing.B) {
	var total time.Duration
	var flops float64
	for _, s := range cnnGemms {
		a := make([]float32, s.m*s.k)
		bb := make([]float32, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for i := range a {
			a[i] = float32(i%7)*0.1 + 0.05
		}
		for i := range bb {
			bb[i] = float32(i%5)*0.1 + 0.05
		}
		lda, ldb := s.k, s.n
		if s.ta {
			lda = s.m
		}
		if s.tb {
			ldb = s.k
		}
		var d time.Duration
		b.Run(fmt.Sprintf("%s_%dx%dx%d", s.what, s.m, s.n, s.k), func(b *testing.B) {
			for b.Loop() {
				Gemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, s.n)
			}
			d = b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(2*s.m*s.n*s.k)/d.Seconds()/1e9, "GFLOP/s")
		})
		total += d * time.Duration(s.calls)
		flops += float64(2*s.m*s.n*s.k) * float64(s.calls)
	}
	b.Logf("one cnn step's products alone: %v on one thread, %.1f GFLOP/s, %.0f samples/s per thread",
		total, flops/total.Seconds()/1e9, 128/total.Seconds())
}
