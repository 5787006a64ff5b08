package data

// ReadImages reads an IDX file of 28x28 images (gzipped when its name ends
// in .gz) without labels, for prediction: the Set's labels are all 0.
func ReadImages(path string) (*Set, error) {
	f, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	x, err := decodeImages(f)
	if err != nil {
		return nil, err
	}
	return &Set{Images: x.Data, Labels: make([]uint8, x.Dims[0])}, nil
}
