package data

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite data/testdata")

// TestTestdata loads the committed tiny dataset (gz and raw) and checks it
// is what tinyFiles makes; -update rewrites it.
func TestTestdata(t *testing.T) {
	files := tinyFiles(8, 4)
	if *update {
		writeFiles(t, filepath.Join("testdata", "tiny-gz"), files, true)
		writeFiles(t, filepath.Join("testdata", "tiny-raw"), files, false)
	}
	var sums []string
	for _, dir := range []string{"tiny-gz", "tiny-raw"} {
		t.Run(dir, func(t *testing.T) {
			ds, err := Load(filepath.Join("testdata", dir), Options{Val: 2})
			if err != nil {
				t.Fatal(err)
			}
			if ds.Train.Len() != 6 || ds.Val.Len() != 2 || ds.Test.Len() != 4 {
				t.Errorf("sizes %d/%d/%d, want 6/2/4", ds.Train.Len(), ds.Val.Len(), ds.Test.Len())
			}
			for i, f := range ds.Files {
				if want := sha(files[FileNames[i]]); f.ContentSHA256 != want {
					t.Errorf("%s content sha256 %s, want %s", f.Name, f.ContentSHA256, want)
				}
			}
			sums = append(sums, ds.Checksum)
		})
	}
	if len(sums) == 2 && sums[0] != sums[1] {
		t.Errorf("gz and raw checksums differ: %s vs %s", sums[0], sums[1])
	}
}

// TestLoad checks scaling, the split and TrainLimit on gz and raw files.
func TestLoad(t *testing.T) {
	for _, zip := range []bool{true, false} {
		name := map[bool]string{true: "gz", false: "raw"}[zip]
		t.Run(name, func(t *testing.T) {
			dir := tinyDir(t, 12, 5, zip)
			tests := []struct {
				name               string
				opt                Options
				train, val, offset int
			}{
				{"val 4", Options{Val: 4}, 8, 4, 8},
				{"val 4 limit 3", Options{Val: 4, TrainLimit: 3}, 3, 4, 8},
				{"val 11 limit 1", Options{Val: 11, TrainLimit: 1}, 1, 11, 1},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ds, err := Load(dir, tt.opt)
					if err != nil {
						t.Fatal(err)
					}
					if ds.Train.Len() != tt.train || ds.Val.Len() != tt.val || ds.Test.Len() != 5 {
						t.Fatalf("sizes %d/%d/%d, want %d/%d/5", ds.Train.Len(), ds.Val.Len(), ds.Test.Len(), tt.train, tt.val)
					}
					// Val is the last Val training images, in file order.
					for i := range ds.Val.Len() {
						src := tt.offset + i
						if got, want := ds.Val.Labels[i], uint8(src%Classes); got != want {
							t.Errorf("val label %d = %d, want %d", i, got, want)
						}
						if got, want := ds.Val.Image(i)[5], pixel(src, 5); got != want {
							t.Errorf("val image %d pixel 5 = %v, want %v", i, got, want)
						}
					}
					for i := range ds.Train.Len() {
						if got, want := ds.Train.Image(i)[100], pixel(i, 100); got != want {
							t.Errorf("train image %d pixel 100 = %v, want %v", i, got, want)
						}
					}
					if len(ds.Files) != 4 || ds.Files[0].Count != 12 || ds.Files[3].Count != 5 {
						t.Errorf("files %+v", ds.Files)
					}
					if ds.Dir != dir || len(ds.Checksum) != 64 {
						t.Errorf("dir %q checksum %q", ds.Dir, ds.Checksum)
					}
				})
			}
		})
	}
}

func TestScale(t *testing.T) {
	s := &Set{Images: make([]byte, 2*Pixels), Labels: []uint8{3, 7}}
	s.Images[Pixels+0], s.Images[Pixels+1], s.Images[Pixels+2] = 0, 51, 255
	got := make([]float32, Pixels)
	s.Scale(got, 1, 2)
	want := []float32{0, 0.2, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Scale: pixel %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestLoadOptions(t *testing.T) {
	dir := tinyDir(t, 12, 5, false)
	tests := []struct {
		name string
		opt  Options
		msg  string
	}{
		{"negative val", Options{Val: -1}, "validation size -1 must be > 0"},
		{"val equals train size", Options{Val: 12}, "validation size 12 must be less than the 12 training images"},
		{"default val too big for tiny set", Options{}, "validation size 10000"},
		{"negative train limit", Options{Val: 2, TrainLimit: -3}, "train limit -3 must be >= 0"},
		{"train limit too big", Options{Val: 2, TrainLimit: 11}, "train limit 11 exceeds the 10 training images"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(dir, tt.opt)
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrOptions containing %q", err, tt.msg)
			}
		})
	}
}

// TestCorruptFiles has one case per kind of corruption; each must give an
// error that wraps the right sentinel and names the file and the problem.
func TestCorruptFiles(t *testing.T) {
	good := tinyFiles(3, 2)
	badImages := imagesIDX(3)
	tests := []struct {
		name    string
		file    string
		content []byte
		want    error
		msg     string
	}{
		{"bad magic images", TrainImagesFile, idxBytes(0x0903, []uint32{3, 28, 28}, make([]byte, 3*Pixels)), ErrBadMagic, "wrong magic number: 0x00000903, want 0x00000803"},
		{"bad magic labels", TestLabelsFile, idxBytes(0x12340801, []uint32{2}, []byte{1, 2}), ErrBadMagic, "wrong magic number: 0x12340801"},
		{"images with 2 dimensions", TrainImagesFile, idxBytes(0x802, []uint32{3, 784}, make([]byte, 3*Pixels)), ErrDims, "wrong number of dimensions: 2, want 3"},
		{"labels with 3 dimensions", TrainLabelsFile, imagesIDX(3), ErrDims, "wrong number of dimensions: 3, want 1"},
		{"images 28x27", TestImagesFile, idxBytes(0x803, []uint32{2, 28, 27}, make([]byte, 2*28*27)), ErrImageSize, "images are not 28x28: they are 28x27"},
		{"images 32x32", TrainImagesFile, idxBytes(0x803, []uint32{3, 32, 32}, make([]byte, 3*32*32)), ErrImageSize, "they are 32x32"},
		{"empty file", TrainImagesFile, nil, ErrTruncated, "too short for the 4-byte magic"},
		{"truncated header", TrainImagesFile, badImages[:10], ErrTruncated, "too short for the 16-byte header"},
		{"truncated pixels", TrainImagesFile, badImages[:len(badImages)-1], ErrTruncated, "truncated data: header [3 28 28] says 2352 data bytes, file has 2351"},
		{"truncated labels", TrainLabelsFile, idxBytes(0x801, []uint32{3}, []byte{1, 2}), ErrTruncated, "says 3 data bytes, file has 2"},
		{"trailing data", TestImagesFile, append(imagesIDX(2), 0), ErrTrailingData, "unexpected data after the end"},
		{"fewer labels than images", TrainLabelsFile, labelsIDX(2), ErrCountMismatch, "2 labels, but train-images-idx3-ubyte"},
		{"more labels than images", TestLabelsFile, labelsIDX(3), ErrCountMismatch, "3 labels, but t10k-images-idx3-ubyte"},
		{"label 10", TrainLabelsFile, idxBytes(0x801, []uint32{3}, []byte{0, 10, 9}), ErrBadLabel, "label outside 0-9: label 10 at index 1"},
		{"label 255", TestLabelsFile, idxBytes(0x801, []uint32{2}, []byte{255, 0}), ErrBadLabel, "label 255 at index 0"},
		{"huge dimensions", TrainImagesFile, idxBytes(0x803, []uint32{0xffffffff, 0xffff, 0xffff}, nil), ErrTooLarge, "file too large"},
	}
	for _, tt := range tests {
		for _, zip := range []bool{false, true} {
			name := tt.name + map[bool]string{true: " gz", false: " raw"}[zip]
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				files := map[string][]byte{}
				for k, v := range good {
					files[k] = v
				}
				files[tt.file] = tt.content
				writeFiles(t, dir, files, zip)
				path := filepath.Join(dir, tt.file)
				if zip {
					path += ".gz"
				}
				_, err := Load(dir, Options{Val: 1})
				checkFileError(t, err, path, tt.want, tt.msg)
			})
		}
	}
}

// TestBadGzip covers gzip-level corruption of a .gz file.
func TestBadGzip(t *testing.T) {
	z := gz(labelsIDX(3))
	flipped := append([]byte(nil), z...)
	flipped[len(flipped)-6] ^= 0xff // inside the CRC-32 trailer
	tests := []struct {
		name    string
		content []byte
		msg     string
	}{
		{"not gzip", labelsIDX(3), "bad gzip data: gzip: invalid header"},
		{"empty", nil, "bad gzip data"},
		{"truncated stream", z[:len(z)-10], "bad gzip data: compressed stream is truncated"},
		{"bad crc", flipped, "bad gzip data: gzip: invalid checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tinyDir(t, 3, 2, true)
			path := filepath.Join(dir, TrainLabelsFile+".gz")
			if err := os.WriteFile(path, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir, Options{Val: 1})
			checkFileError(t, err, path, ErrGzip, tt.msg)
		})
	}
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.gz")
	_, err := ReadIDX(path, 1)
	checkFileError(t, err, path, os.ErrNotExist, "no such file")

	_, err = Load(t.TempDir(), Options{})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "lacks train-images-idx3-ubyte[.gz]") {
		t.Errorf("Load of empty dir: %v", err)
	}
}

func TestReadSetAndIDX(t *testing.T) {
	dir := tinyDir(t, 4, 1, true)
	s, err := ReadSet(filepath.Join(dir, TrainImagesFile+".gz"), filepath.Join(dir, TrainLabelsFile+".gz"))
	if err != nil || s.Len() != 4 || len(s.Images) != 4*Pixels {
		t.Fatalf("ReadSet: %v, %+v", err, s)
	}
	x, err := ReadIDX(filepath.Join(dir, TestImagesFile+".gz"), 3)
	if err != nil || len(x.Dims) != 3 || x.Dims[0] != 1 || len(x.Data) != Pixels {
		t.Fatalf("ReadIDX: %v, %v", err, x)
	}
}

// checkFileError asserts err is a *FileError for path wrapping want, and that
// its message names the file and contains msg.
func checkFileError(t *testing.T, err error, path string, want error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, want) {
		t.Errorf("errors.Is(%v, %v) = false", err, want)
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path {
		t.Errorf("error %v is not a FileError for %s", err, path)
	}
	if s := err.Error(); !strings.HasPrefix(s, path+": ") || !strings.Contains(s, msg) {
		t.Errorf("error %q does not start with %q and contain %q", s, path, msg)
	}
}

// FuzzParseIDX checks that no input makes the parser panic, and that
// accepted input is self-consistent. The seeds run in every go test.
func FuzzParseIDX(f *testing.F) {
	img := imagesIDX(2)
	for _, cut := range []int{0, 3, 4, 15, 16, 100, len(img) - 1, len(img)} {
		f.Add(img[:cut], 3)
	}
	f.Add(labelsIDX(5), 1)
	f.Add(gz(labelsIDX(5)), 1)
	f.Fuzz(func(t *testing.T, b []byte, dims int) {
		dims = dims & 3
		x, err := parseIDX(b, dims)
		if err != nil {
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if len(x.Dims) != dims || len(x.Data) != n {
			t.Fatalf("accepted inconsistent IDX: dims %v, %d bytes", x.Dims, len(x.Data))
		}
		gunzip(b, 1<<20) // must not panic either
	})
}
