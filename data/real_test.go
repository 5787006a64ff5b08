package data

import (
	"os"
	"testing"

	"github.com/fmtune/fmtune/internal/testenv"
)

// TestRealData loads the Debian copy of Fashion-MNIST when it is installed.
func TestRealData(t *testing.T) {
	if _, err := os.Stat(SystemDir); err != nil {
		testenv.Skip(t, "data", "real data absent (apt-get install dataset-fashion-mnist): %v", err)
	}
	if testing.Short() {
		t.Skip("loads 30 MB; skipped with -short")
	}
	ds, err := Load(SystemDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sizes", func(t *testing.T) {
		if ds.Train.Len() != 50000 || ds.Val.Len() != 10000 || ds.Test.Len() != 10000 {
			t.Errorf("sizes %d/%d/%d, want 50000/10000/10000", ds.Train.Len(), ds.Val.Len(), ds.Test.Len())
		}
		if len(ds.Train.Images) != 50000*Pixels || len(ds.Test.Images) != 10000*Pixels {
			t.Errorf("image lengths %d, %d", len(ds.Train.Images), len(ds.Test.Images))
		}
	})
	t.Run("pixel range", func(t *testing.T) {
		for _, s := range []*Set{ds.Train, ds.Val, ds.Test} {
			x := make([]float32, s.Len()*Pixels)
			s.Scale(x, 0, s.Len())
			lo, hi := float32(1), float32(0)
			for _, v := range x {
				lo, hi = min(lo, v), max(hi, v)
			}
			if lo != 0 || hi != 1 {
				t.Errorf("scaled pixels in [%v, %v], want exactly [0, 1]", lo, hi)
			}
		}
	})
	t.Run("test histogram", func(t *testing.T) {
		for c, n := range ds.Test.ClassCounts() {
			if n != 1000 {
				t.Errorf("class %d (%s): %d test images, want 1000", c, ClassNames[c], n)
			}
		}
	})
	t.Run("train plus val histogram", func(t *testing.T) {
		a, b := ds.Train.ClassCounts(), ds.Val.ClassCounts()
		for c := range Classes {
			if a[c]+b[c] != 6000 {
				t.Errorf("class %d: %d+%d training images, want 6000", c, a[c], b[c])
			}
		}
	})
	t.Run("checksum", func(t *testing.T) {
		if ds.Checksum != OfficialChecksum {
			t.Errorf("checksum %s, want the official %s", ds.Checksum, OfficialChecksum)
		}
		if len(ds.Files) != 4 || ds.Files[0].Count != 60000 || ds.Files[2].Count != 10000 {
			t.Errorf("files %+v", ds.Files)
		}
	})
}
