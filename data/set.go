// Package data owns the Fashion-MNIST data: reading and validating IDX files
// (gzipped or raw), locating or downloading them, scaling pixels, the
// deterministic train/validation split and seeded batch iteration.
package data

import (
	"fmt"
	"math/rand"
)

// Pixels is the number of pixels in one 28x28 image.
const Pixels = 28 * 28

// Classes is the number of label classes.
const Classes = 10

// ClassNames are Fashion-MNIST's label names, indexed by label.
var ClassNames = [Classes]string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// Set is a list of images with their labels. Images are scaled to [0,1] and
// stored row-major, Pixels values per image.
type Set struct {
	Images []float32
	Labels []uint8
}

// Len is the number of examples in the set.
func (s *Set) Len() int { return len(s.Labels) }

// Image returns the pixels of example i (a view, not a copy).
func (s *Set) Image(i int) []float32 { return s.Images[i*Pixels : (i+1)*Pixels] }

// Slice returns the examples [from, to) as a view sharing memory with s.
func (s *Set) Slice(from, to int) *Set {
	// Full slice expressions: appending to a view never overwrites the
	// examples after it (Train and Val share one array).
	return &Set{Images: s.Images[from*Pixels : to*Pixels : to*Pixels], Labels: s.Labels[from:to:to]}
}

// Batches yields the set in batches of size batch, in an order shuffled from
// seed (the same seed gives the same order). The last batch may be smaller.
// Each batch is copied into x (len batch*Pixels) and y (len batch); fn gets
// the filled prefixes; they are reused between calls, so fn must copy what
// it keeps. fn returning an error stops the iteration and Batches returns
// that error. Without shuffle the order is the set's own.
func (s *Set) Batches(batch int, seed int64, shuffle bool, fn func(x []float32, y []uint8) error) error {
	if batch <= 0 {
		return fmt.Errorf("data: batch size %d must be > 0", batch)
	}
	n := s.Len()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if shuffle {
		r := rand.New(rand.NewSource(seed))
		r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	x := make([]float32, batch*Pixels)
	y := make([]uint8, batch)
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		for k, idx := range order[start:end] {
			copy(x[k*Pixels:(k+1)*Pixels], s.Image(idx))
			y[k] = s.Labels[idx]
		}
		m := end - start
		if err := fn(x[:m*Pixels], y[:m]); err != nil {
			return err
		}
	}
	return nil
}

// ClassCounts returns the number of examples of each class.
func (s *Set) ClassCounts() [Classes]int {
	var c [Classes]int
	for _, l := range s.Labels {
		if int(l) < Classes {
			c[l]++
		}
	}
	return c
}
