package data

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestReadImages(t *testing.T) {
	for _, dir := range []string{"tiny-raw", "tiny-gz"} {
		name := "t10k-images-idx3-ubyte"
		if dir == "tiny-gz" {
			name += ".gz"
		}
		s, err := ReadImages(filepath.Join("testdata", dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := ReadSet(filepath.Join("testdata", dir, name), filepath.Join("testdata", dir, "t10k-labels-idx1-ubyte"+name[len("t10k-images-idx3-ubyte"):]))
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != want.Len() || string(s.Images) != string(want.Images) {
			t.Errorf("%s: %d images, want %d", dir, s.Len(), want.Len())
		}
	}
	// A label file is not an image file.
	if _, err := ReadImages(filepath.Join("testdata", "tiny-raw", "t10k-labels-idx1-ubyte")); !errors.Is(err, ErrDims) {
		t.Errorf("labels read as images: %v, want ErrDims", err)
	}
}
