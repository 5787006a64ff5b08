//go:build openblas

package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestOpenBLASSgemmMatchesGonum: on normal numbers the flush-to-zero
// product is gonum's, for every transpose; where the exact result is
// subnormal it is zero.
func TestOpenBLASSgemmMatchesGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = r.Float32()*2 - 1
		}
		return v
	}
	const m, n, k = 7, 5, 9
	for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
		for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			lda, ldb := k, n
			if tA == blas.Trans {
				lda = m
			}
			if tB == blas.Trans {
				ldb = k
			}
			a, b, c := random(m*k), random(k*n), random(m*n)
			want := append([]float32(nil), c...)
			gonum.Implementation{}.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, want, n)
			Gemm(tA == blas.Trans, tB == blas.Trans, m, n, k, 0.5, a, lda, b, ldb, 2, c, n)
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-5 {
					t.Fatalf("tA %c tB %c: c[%d] = %v, gonum %v", tA, tB, i, c[i], want[i])
				}
			}
		}
	}

	runtime.LockOSThread() // the check after the call is on the same thread
	defer runtime.UnlockOSThread()
	tiny := float32(1e-39) // subnormal in float32
	a, b, c := []float32{tiny}, []float32{1}, []float32{5}
	Gemm(false, false, 1, 1, 1, 1, a, 1, b, 1, 0, c, 1)
	if c[0] != 0 {
		t.Fatalf("subnormal input %v times 1 = %v, want 0 (flushed)", tiny, c[0])
	}
	if x := a[0] * b[0]; x == 0 {
		t.Fatalf("Go arithmetic flushes subnormals after the call: MXCSR was not restored")
	}
}
