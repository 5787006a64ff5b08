// Package models owns the networks fmtune tunes: the four Fashion-MNIST
// architectures (mlp, deep, cnn, cnn-dropout) built on gorgonia, the
// optimizers with Keras' formulas and defaults (sgd, adam, nadam, rmsprop),
// seeded initialisation and dropout, training with per-epoch hooks
// (pruning stops a run through Hooks.OnEpoch), and exact evaluation.
//
// Graphs are built under a package mutex, so many trials may train at once
// in goroutines. Built with the openblas tag, matrix products go through
// OpenBLAS (cgo) with one BLAS thread per caller; otherwise through gonum's
// pure-Go BLAS. BLASName reports which.
package models
