//go:build openblas

package models

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int num_threads);
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// One OpenBLAS thread per call: trials already run in parallel goroutines,
// and OpenBLAS threads competing with them are several times slower.
func init() {
	C.openblas_set_num_threads(1)
	G.Use(netlib.Implementation{})
}

// BLASName is the BLAS implementation in use: "openblas" in this build
// (-tags openblas), "gonum" otherwise.
func BLASName() string { return "openblas" }
