package data

import (
	"errors"
	"slices"
	"testing"
)

// indexedSet has n examples whose first pixel and label identify them.
func indexedSet(n int) *Set {
	s := &Set{Images: make([]uint8, n*Pixels), Labels: make([]uint8, n)}
	for i := range n {
		s.Images[i*Pixels] = uint8(i)
		s.Labels[i] = uint8(i % Classes)
	}
	return s
}

// order runs Batches and returns the example indices seen and batch sizes.
func order(t *testing.T, s *Set, batch int, seed int64, shuffle bool) (idx, sizes []int) {
	t.Helper()
	err := s.Batches(batch, seed, shuffle, func(b []int) error {
		sizes = append(sizes, len(b))
		for _, k := range b {
			if i := int(s.Image(k)[0]); i != k || s.Labels[k] != uint8(i%Classes) {
				t.Fatalf("index %d is example %d with label %d", k, i, s.Labels[k])
			}
			idx = append(idx, k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx, sizes
}

func TestBatches(t *testing.T) {
	s := indexedSet(10)
	tests := []struct {
		name    string
		batch   int
		shuffle bool
		sizes   []int
	}{
		{"shuffled, last batch partial", 4, true, []int{4, 4, 2}},
		{"in order", 3, false, []int{3, 3, 3, 1}},
		{"one batch bigger than the set", 64, true, []int{10}},
		{"exact fit", 5, true, []int{5, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, sizes := order(t, s, tt.batch, 42, tt.shuffle)
			if !slices.Equal(sizes, tt.sizes) {
				t.Errorf("batch sizes %v, want %v", sizes, tt.sizes)
			}
			sorted := slices.Sorted(slices.Values(idx))
			if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(sorted, want) {
				t.Errorf("examples seen %v, want each once", idx)
			}
			if !tt.shuffle && !slices.IsSorted(idx) {
				t.Errorf("unshuffled order %v", idx)
			}
			again, _ := order(t, s, tt.batch, 42, tt.shuffle)
			if !slices.Equal(idx, again) {
				t.Errorf("same seed, different order: %v vs %v", idx, again)
			}
		})
	}
	t.Run("different seeds differ", func(t *testing.T) {
		a, _ := order(t, indexedSet(50), 8, 1, true)
		b, _ := order(t, indexedSet(50), 8, 2, true)
		if slices.Equal(a, b) {
			t.Error("seeds 1 and 2 gave the same order")
		}
	})
	t.Run("bad batch size", func(t *testing.T) {
		if err := s.Batches(0, 1, true, func([]int) error { return nil }); err == nil {
			t.Error("batch 0 accepted")
		}
	})
	t.Run("fn error stops", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := s.Batches(2, 1, true, func([]int) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("err %v after %d calls", err, calls)
		}
	})
	t.Run("class counts", func(t *testing.T) {
		c := indexedSet(23).ClassCounts()
		if c != [Classes]int{3, 3, 3, 2, 2, 2, 2, 2, 2, 2} {
			t.Errorf("ClassCounts = %v", c)
		}
	})
}
