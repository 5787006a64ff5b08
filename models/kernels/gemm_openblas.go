//go:build openblas

package kernels

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

import "fmt"

// One OpenBLAS thread per call: a Team runs several calls at once on its
// own goroutines, and OpenBLAS threads competing with them are several
// times slower.
func init() { C.openblas_set_num_threads(1) }

// BLASName is the BLAS behind Gemm: "openblas" in this build (-tags
// openblas), "gonum" otherwise.
func BLASName() string { return "openblas" }

// sgemm calls OpenBLAS with subnormals flushed to zero. A saturated
// sigmoid or softmax (a high learning rate) fills activations and
// gradients with subnormals, which the CPU handles several times slower
// than normal numbers. Results differ only where a product would be below
// float32's smallest normal (1.2e-38).
func sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	rowA, colA := m, k
	if transA {
		rowA, colA = k, m
	}
	rowB, colB := k, n
	if transB {
		rowB, colB = n, k
	}
	if k == 0 || lda < max(colA, 1) || ldb < max(colB, 1) || ldc < n ||
		len(a) < lda*(rowA-1)+colA || len(b) < ldb*(rowB-1)+colB || len(c) < ldc*(m-1)+n {
		panic(fmt.Sprintf("kernels: Gemm(%v, %v, m %d, n %d, k %d): buffers too short (a %d/%d, b %d/%d, c %d/%d)",
			transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc))
	}
	C.fmtune_sgemm_ftz(cblasTranspose(transA), cblasTranspose(transB), C.int(m), C.int(n), C.int(k),
		C.float(alpha), (*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb),
		C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}

// cblasTranspose is CBLAS' CblasNoTrans (111) or CblasTrans (112).
func cblasTranspose(t bool) C.int {
	if t {
		return 112
	}
	return 111
}
