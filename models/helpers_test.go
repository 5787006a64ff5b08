package models

import (
	"sync"
	"testing"

	"github.com/fmtune/fmtune/data"

	"github.com/fmtune/fmtune/internal/testenv"
)

var (
	realOnce sync.Once
	realData *data.Dataset
	realErr  error
)

// fashion returns the real Fashion-MNIST data, loaded once per test
// binary, or skips the test when it is not installed.
func fashion(tb testing.TB) *data.Dataset {
	tb.Helper()
	realOnce.Do(func() {
		dir, err := data.Locate("")
		if err != nil {
			realErr = err
			return
		}
		realData, realErr = data.Load(dir, data.Options{})
	})
	if realErr != nil {
		testenv.Skip(tb, "data", "Fashion-MNIST not available (apt-get install dataset-fashion-mnist): %v", realErr)
	}
	return realData
}
