// Package models owns the networks fmtune tunes: the four Fashion-MNIST
// architectures (mlp, deep, cnn, cnn-dropout), the optimizers with Keras'
// formulas and defaults (sgd, adam, nadam, rmsprop), seeded initialisation
// and dropout, training with per-epoch hooks (pruning stops a run through
// Hooks.OnEpoch), and exact evaluation.
//
// gorgonia is the graph and the automatic differentiation: each layer is
// one gorgonia operator (ops.go), a thin adapter over the allocation-free
// kernels of models/kernels, and G.Grad derives the backward graph. A plan
// (plan.go) runs the graph without allocating; gorgonia's TapeMachine runs
// the same graph in the tests, bitwise alike. The weights live in one flat
// buffer that the optimizer updates in one pass.
//
// A training step uses the threads of its model's kernels.Team: by default
// the cores shared equally among the trainings running in the process
// (Config.Threads overrides). The work is split into fixed chunks, so
// results do not depend on the number of threads. Graphs are built under a
// package mutex, so many trials may train at once in goroutines.
package models
