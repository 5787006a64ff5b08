package data

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// idxBytes builds an IDX file: the 4-byte magic, the dimensions, the data.
func idxBytes(magic uint32, dims []uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

// pixel is the byte of pixel p of image i in the hand-made files.
func pixel(i, p int) byte { return byte(i*31 + p) }

// imagesIDX builds a valid image file of n 28x28 images.
func imagesIDX(n int) []byte {
	data := make([]byte, n*Pixels)
	for i := range n {
		for p := range Pixels {
			data[i*Pixels+p] = pixel(i, p)
		}
	}
	return idxBytes(0x803, []uint32{uint32(n), 28, 28}, data)
}

// labelsIDX builds a valid label file with labels i%10.
func labelsIDX(n int) []byte {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i % Classes)
	}
	return idxBytes(0x801, []uint32{uint32(n)}, data)
}

// gz compresses b (deterministically: no name, no time in the header).
func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tinyFiles returns the four files (raw IDX content) of a tiny valid dataset
// with nTrain training and nTest test examples, keyed by FileNames.
func tinyFiles(nTrain, nTest int) map[string][]byte {
	return map[string][]byte{
		TrainImagesFile: imagesIDX(nTrain),
		TrainLabelsFile: labelsIDX(nTrain),
		TestImagesFile:  imagesIDX(nTest),
		TestLabelsFile:  labelsIDX(nTest),
	}
}

// writeFiles writes files into dir, gzipped with a .gz suffix when zip.
func writeFiles(t *testing.T, dir string, files map[string][]byte, zip bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if zip {
			name, b = name+".gz", gz(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tinyDir writes a tiny valid dataset into a new temp dir and returns it.
func tinyDir(t *testing.T, nTrain, nTest int, zip bool) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, tinyFiles(nTrain, nTest), zip)
	return dir
}
