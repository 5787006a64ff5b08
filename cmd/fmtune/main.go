// goptuna's samplers draw from the global math/rand; fmtune seeds it for
// reproducible studies, which Go 1.24+ only allows with this setting.

//go:debug randseednop=0

// Command fmtune is a hyperparameter search engine for Fashion-MNIST image
// classifiers: it trains, tunes, stores and compares.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
