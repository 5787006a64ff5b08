// Package kernels holds the numeric kernels of fmtune's networks: forward
// and backward passes of the layers and the optimizer updates, as plain
// functions on []float32 with explicit shapes. They allocate nothing: the
// caller owns every buffer. Matrix products go through Gemm (OpenBLAS with
// the openblas build tag, gonum's pure-Go BLAS otherwise); a Team splits
// work into fixed chunks over goroutines, so results do not depend on the
// number of threads. Each kernel has a naive reference in the tests.
package kernels
