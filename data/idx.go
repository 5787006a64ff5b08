package data

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sentinel errors for the ways an IDX file can be wrong. Errors returned by
// this package wrap them (usually inside a *FileError naming the file), so
// callers test with errors.Is.
var (
	ErrBadMagic      = errors.New("wrong magic number")
	ErrDims          = errors.New("wrong number of dimensions")
	ErrImageSize     = errors.New("images are not 28x28")
	ErrTruncated     = errors.New("truncated data")
	ErrTrailingData  = errors.New("unexpected data after the end")
	ErrCountMismatch = errors.New("label count differs from image count")
	ErrBadLabel      = errors.New("label outside 0-9")
	ErrGzip          = errors.New("bad gzip data")
	ErrTooLarge      = errors.New("file too large")
)

// FileError is an error about one data file. Path names the file; Err says
// what is wrong and wraps one of the sentinel errors (or an os error).
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *FileError) Unwrap() error { return e.Err }

// IDX magic numbers for unsigned-byte files: 0x00 0x00 0x08 <dims>.
const (
	idxTypeUbyte = 0x08
	imageDims    = 3
	labelDims    = 1
	imageSide    = 28
)

// maxContent bounds the decompressed size of one IDX file (the real training
// images are 47 MB), so a corrupt or hostile file cannot exhaust memory.
const maxContent = 1 << 30

// IDX is the decoded content of an IDX file of unsigned bytes.
type IDX struct {
	Dims []int  // size of each dimension; Dims[0] is the number of items
	Data []byte // the items, row-major; len is the product of Dims
}

// rawFile is a data file read from disk: its SHA-256 as stored, and the
// SHA-256 and bytes of its (decompressed) IDX content.
type rawFile struct {
	path       string
	size       int64
	sha256     string // of the file as stored (what sha256sum prints)
	contentSum string // of the decompressed IDX bytes
	content    []byte
}

// readRaw reads path, gunzipping it when its name ends in .gz.
func readRaw(path string) (*rawFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	f := &rawFile{path: path, size: int64(len(b))}
	sum := sha256.Sum256(b)
	f.sha256 = hex.EncodeToString(sum[:])
	if strings.HasSuffix(path, ".gz") {
		b, err = gunzip(b, maxContent)
		if err != nil {
			return nil, &FileError{Path: path, Err: err}
		}
	}
	if len(b) > maxContent {
		return nil, &FileError{Path: path, Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, maxContent)}
	}
	sum = sha256.Sum256(b)
	f.contentSum = hex.EncodeToString(sum[:])
	f.content = b
	return f, nil
}

// gunzip decompresses b (all gzip members), refusing more than limit bytes.
func gunzip(b []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGzip, err)
	}
	defer zr.Close()
	// The gzip trailer holds the uncompressed size mod 2^32: a good hint.
	var out bytes.Buffer
	if len(b) >= 4 {
		if hint := int(binary.LittleEndian.Uint32(b[len(b)-4:])); hint <= limit {
			out.Grow(hint + bytes.MinRead)
		}
	}
	n, err := out.ReadFrom(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: compressed stream is truncated", ErrGzip)
		}
		return nil, fmt.Errorf("%w: %v", ErrGzip, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrTooLarge, limit)
	}
	return out.Bytes(), nil
}

// parseIDX validates the header of content as an unsigned-byte IDX file with
// wantDims dimensions and checks that the data length matches it exactly.
func parseIDX(content []byte, wantDims int) (*IDX, error) {
	if len(content) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, too short for the 4-byte magic number", ErrTruncated, len(content))
	}
	magic := binary.BigEndian.Uint32(content)
	if content[0] != 0 || content[1] != 0 || content[2] != idxTypeUbyte {
		return nil, fmt.Errorf("%w: 0x%08x, want 0x%08x (IDX of unsigned bytes with %d dimension(s))",
			ErrBadMagic, magic, idxTypeUbyte<<8|wantDims, wantDims)
	}
	if nd := int(content[3]); nd != wantDims {
		return nil, fmt.Errorf("%w: %d, want %d (magic 0x%08x)", ErrDims, nd, wantDims, magic)
	}
	hdr := 4 + 4*wantDims
	if len(content) < hdr {
		return nil, fmt.Errorf("%w: %d bytes, too short for the %d-byte header", ErrTruncated, len(content), hdr)
	}
	dims := make([]int, wantDims)
	size := int64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(content[4+4*i:])
		dims[i] = int(d)
		size *= int64(d)
		if size > maxContent {
			return nil, fmt.Errorf("%w: dimensions %v describe more than %d bytes", ErrTooLarge, dims[:i+1], maxContent)
		}
	}
	data := content[hdr:]
	switch {
	case int64(len(data)) < size:
		return nil, fmt.Errorf("%w: header %v says %d data bytes, file has %d", ErrTruncated, dims, size, len(data))
	case int64(len(data)) > size:
		return nil, fmt.Errorf("%w: header %v says %d data bytes, file has %d", ErrTrailingData, dims, size, len(data))
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// ReadIDX reads and validates an IDX file of unsigned bytes (gzipped when its
// name ends in .gz) with wantDims dimensions.
func ReadIDX(path string, wantDims int) (*IDX, error) {
	f, err := readRaw(path)
	if err != nil {
		return nil, err
	}
	x, err := parseIDX(f.content, wantDims)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return x, nil
}

// decodeImages validates f as an IDX image file of 28x28 images.
func decodeImages(f *rawFile) (*IDX, error) {
	x, err := parseIDX(f.content, imageDims)
	if err != nil {
		return nil, &FileError{Path: f.path, Err: err}
	}
	if x.Dims[1] != imageSide || x.Dims[2] != imageSide {
		return nil, &FileError{Path: f.path, Err: fmt.Errorf("%w: they are %dx%d", ErrImageSize, x.Dims[1], x.Dims[2])}
	}
	return x, nil
}

// decodeLabels validates f as an IDX label file with labels 0-9.
func decodeLabels(f *rawFile) (*IDX, error) {
	x, err := parseIDX(f.content, labelDims)
	if err != nil {
		return nil, &FileError{Path: f.path, Err: err}
	}
	for i, l := range x.Data {
		if l >= Classes {
			return nil, &FileError{Path: f.path, Err: fmt.Errorf("%w: label %d at index %d", ErrBadLabel, l, i)}
		}
	}
	return x, nil
}

// scale is the byte -> [0,1] lookup table.
var scale = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// makeSet validates an image file and a label file as a pair and builds a Set.
func makeSet(imgs, lbls *rawFile) (*Set, error) {
	xi, err := decodeImages(imgs)
	if err != nil {
		return nil, err
	}
	xl, err := decodeLabels(lbls)
	if err != nil {
		return nil, err
	}
	if xi.Dims[0] != xl.Dims[0] {
		return nil, &FileError{Path: lbls.path, Err: fmt.Errorf("%w: %d labels, but %s has %d images",
			ErrCountMismatch, xl.Dims[0], filepath.Base(imgs.path), xi.Dims[0])}
	}
	labels := make([]uint8, len(xl.Data))
	copy(labels, xl.Data)
	return &Set{Images: xi.Data, Labels: labels}, nil
}

// ReadSet reads an image file and its label file (each gzipped or raw) and
// returns them as a validated Set.
func ReadSet(imagesPath, labelsPath string) (*Set, error) {
	imgs, err := readRaw(imagesPath)
	if err != nil {
		return nil, err
	}
	lbls, err := readRaw(labelsPath)
	if err != nil {
		return nil, err
	}
	return makeSet(imgs, lbls)
}
