package kernels

import (
	"sync/atomic"
	"time"
)

// Gemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices,
// where op(A) is m×k (A itself, or Aᵀ when transA), op(B) is k×n and C is
// m×n, with leading dimensions lda, ldb and ldc. Subnormal results are
// flushed to zero in the OpenBLAS build.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if gemmTiming.Load() {
		start := time.Now()
		sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		gemmNanos.Add(int64(time.Since(start)))
		gemmFlops.Add(int64(2 * m * n * k))
		return
	}
	sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

var (
	gemmTiming atomic.Bool
	gemmNanos  atomic.Int64
	gemmFlops  atomic.Int64
)

// GemmStats are the time spent in Gemm and its floating-point operations,
// summed over every goroutine since StartGemmTiming.
type GemmStats struct {
	Seconds float64
	Flops   int64
}

// StartGemmTiming resets the Gemm counters and starts timing every call
// (about 50 ns a call; for benchmarks).
func StartGemmTiming() {
	gemmNanos.Store(0)
	gemmFlops.Store(0)
	gemmTiming.Store(true)
}

// StopGemmTiming stops timing and returns the counters.
func StopGemmTiming() GemmStats {
	gemmTiming.Store(false)
	return GemmStats{Seconds: float64(gemmNanos.Load()) / 1e9, Flops: gemmFlops.Load()}
}
