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

// Set is a list of images with their labels. Images holds the raw pixel
// bytes (0-255), row-major, Pixels per image: 47 MB for all of
// Fashion-MNIST's training images, shared read-only by every trial of a
// process. Scale says what a pixel is as a network input (training uses
// the vectorized models/kernels.Scale, which computes the same values).
type Set struct {
	Images []uint8
	Labels []uint8
}

// Len is the number of examples in the set.
func (s *Set) Len() int { return len(s.Labels) }

// Image returns the pixel bytes of example i (a view, not a copy).
func (s *Set) Image(i int) []uint8 { return s.Images[i*Pixels : (i+1)*Pixels] }

// Slice returns the examples [from, to) as a view sharing memory with s.
func (s *Set) Slice(from, to int) *Set {
	// Full slice expressions: appending to a view never overwrites the
	// examples after it (Train and Val share one array).
	return &Set{Images: s.Images[from*Pixels : to*Pixels : to*Pixels], Labels: s.Labels[from:to:to]}
}

// Scale writes the pixels of examples [from, to), scaled to [0,1]
// (byte/255 in float32), to dst[:(to-from)*Pixels].
func (s *Set) Scale(dst []float32, from, to int) {
	src := s.Images[from*Pixels : to*Pixels]
	for i, v := range src {
		dst[i] = scale[v]
	}
}

// Batches yields the indices of the set's examples in batches of size
// batch, in an order shuffled from seed (the same seed gives the same
// order); the last batch may be smaller. fn must not keep idx. fn
// returning an error stops the iteration and Batches returns that error.
// Without shuffle the order is the set's own.
func (s *Set) Batches(batch int, seed int64, shuffle bool, fn func(idx []int) error) error {
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
	for start := 0; start < n; start += batch {
		if err := fn(order[start:min(start+batch, n)]); err != nil {
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
