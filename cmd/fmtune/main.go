// Command fmtune is a hyperparameter search engine for Fashion-MNIST image
// classifiers: it trains, tunes, stores and compares.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
