//go:build !openblas

package models

// BLASName is the BLAS implementation in use: "gonum" (pure Go) in this
// build, "openblas" when built with -tags openblas.
func BLASName() string { return "gonum" }
