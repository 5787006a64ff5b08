//go:build openblas

package models

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);

#if defined(__x86_64__) || defined(__SSE__)
#include <xmmintrin.h>
// Flush-to-zero (bit 15) and denormals-are-zero (bit 6) of MXCSR.
static unsigned int fmtune_enter_ftz(void) {
	unsigned int csr = _mm_getcsr();
	_mm_setcsr(csr | 0x8040);
	return csr;
}
static void fmtune_leave_ftz(unsigned int csr) { _mm_setcsr(csr); }
#else
static unsigned int fmtune_enter_ftz(void) { return 0; }
static void fmtune_leave_ftz(unsigned int csr) { (void)csr; }
#endif

// Row-major sgemm with subnormal numbers treated as zero for the length of
// the call only (MXCSR is per thread, and the calling thread's is restored,
// so Go code never runs with it changed).
static void fmtune_sgemm_ftz(int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc) {
	unsigned int csr = fmtune_enter_ftz();
	cblas_sgemm(101, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
	fmtune_leave_ftz(csr);
}
*/
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// One OpenBLAS thread per call: trials already run in parallel goroutines,
// and OpenBLAS threads competing with them are several times slower.
func init() {
	C.openblas_set_num_threads(1)
	G.Use(ftzBLAS{})
}

// BLASName is the BLAS implementation in use: "openblas" in this build
// (-tags openblas), "gonum" otherwise.
func BLASName() string { return "openblas" }

// ftzBLAS is OpenBLAS whose float32 matrix product flushes subnormal numbers
// to zero. A saturated sigmoid or softmax (a high learning rate) fills
// activations and gradients with subnormals, which the CPU handles several
// times slower than normal numbers: with plain OpenBLAS, mlp with rmsprop
// at lr 0.1 trained at 13,000 samples/s instead of 90,000. Results differ
// only where a product would be below float32's smallest normal (1.2e-38).
type ftzBLAS struct{ netlib.Implementation }

// Sgemm computes c = alpha*op(a)*op(b) + beta*c like netlib's Sgemm, which
// it calls for anything but a plain, well-formed product (to keep netlib's
// argument checks and their panics).
func (ftzBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	rowA, colA := m, k
	if tA == blas.Trans {
		rowA, colA = k, m
	}
	rowB, colB := k, n
	if tB == blas.Trans {
		rowB, colB = n, k
	}
	plain := (tA == blas.NoTrans || tA == blas.Trans) && (tB == blas.NoTrans || tB == blas.Trans) &&
		m > 0 && n > 0 && k > 0 &&
		lda >= colA && ldb >= colB && ldc >= n &&
		len(a) >= lda*(rowA-1)+colA && len(b) >= ldb*(rowB-1)+colB && len(c) >= ldc*(m-1)+n
	if !plain {
		netlib.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.fmtune_sgemm_ftz(cblasTranspose(tA), cblasTranspose(tB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb),
		C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}

// cblasTranspose is CBLAS' CblasNoTrans (111) or CblasTrans (112).
func cblasTranspose(t blas.Transpose) C.int {
	if t == blas.Trans {
		return 112
	}
	return 111
}
