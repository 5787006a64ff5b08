package data

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The four Fashion-MNIST files, without the optional .gz suffix, in the
// fixed order used for Dataset.Files and Dataset.Checksum.
const (
	TrainImagesFile = "train-images-idx3-ubyte"
	TrainLabelsFile = "train-labels-idx1-ubyte"
	TestImagesFile  = "t10k-images-idx3-ubyte"
	TestLabelsFile  = "t10k-labels-idx1-ubyte"
)

// FileNames lists the four files in the fixed order.
var FileNames = [4]string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile}

// EnvDir is the environment variable naming the data directory.
const EnvDir = "FMTUNE_DATA"

// SystemDir is where Debian's dataset-fashion-mnist package puts the files.
const SystemDir = "/usr/share/datasets/fashion-mnist"

// DefaultVal is the default validation size: the last 10,000 training images.
const DefaultVal = 10000

// ErrNotFound means no directory with the four files was found.
var ErrNotFound = errors.New("Fashion-MNIST data not found")

// ErrOptions means invalid Load options.
var ErrOptions = errors.New("invalid data options")

// systemDir is SystemDir; tests point it elsewhere.
var systemDir = SystemDir

// Sources of a located directory, as returned by LocateSource.
const (
	SourceFlag   = "--data flag"
	SourceEnv    = "$" + EnvDir
	SourceSystem = "system (dataset-fashion-mnist)"
	SourceCache  = "user cache"
)

// CacheDir returns the per-user download directory,
// os.UserCacheDir()/fmtune/fashion-mnist.
func CacheDir() (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache directory: %w", err)
	}
	return filepath.Join(c, "fmtune", "fashion-mnist"), nil
}

// findFiles returns the paths of the four files in dir, preferring the .gz
// form (the official files) over raw; missing lists the files not found.
func findFiles(dir string) (paths [4]string, missing []string) {
	for i, name := range FileNames {
		for _, cand := range []string{name + ".gz", name} {
			p := filepath.Join(dir, cand)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				paths[i] = p
				break
			}
		}
		if paths[i] == "" {
			missing = append(missing, name+"[.gz]")
		}
	}
	return paths, missing
}

// Locate finds the data directory. dir is the --data flag value ("" when
// not given). The order is: dir, $FMTUNE_DATA, SystemDir, CacheDir(). A
// directory given explicitly (flag or environment) must hold the four files;
// otherwise the error names it. The error wraps ErrNotFound.
func Locate(dir string) (string, error) {
	d, _, err := LocateSource(dir)
	return d, err
}

// LocateSource is Locate that also says where the directory came from
// (one of the Source constants).
func LocateSource(dir string) (found, source string, err error) {
	explicit := func(d, src string) (string, string, error) {
		if _, missing := findFiles(d); len(missing) > 0 {
			if st, err := os.Stat(d); err != nil || !st.IsDir() {
				return "", "", fmt.Errorf("%w: data directory %q (from %s) does not exist; %s", ErrNotFound, d, src, getData)
			}
			return "", "", fmt.Errorf("%w: data directory %q (from %s) lacks %s; %s",
				ErrNotFound, d, src, strings.Join(missing, ", "), getData)
		}
		return d, src, nil
	}
	if dir != "" {
		return explicit(dir, SourceFlag)
	}
	if env := os.Getenv(EnvDir); env != "" {
		return explicit(env, SourceEnv)
	}
	looked := []string{systemDir}
	if _, missing := findFiles(systemDir); len(missing) == 0 {
		return systemDir, SourceSystem, nil
	}
	if cache, err := CacheDir(); err == nil {
		looked = append(looked, cache)
		if _, missing := findFiles(cache); len(missing) == 0 {
			return cache, SourceCache, nil
		}
	}
	return "", "", fmt.Errorf("%w in %s; install it with `apt-get install dataset-fashion-mnist`, "+
		"run `fmtune data download`, or point --data or $%s at a directory with the four IDX files",
		ErrNotFound, strings.Join(looked, " or "), EnvDir)
}

// getData is the fix for a data directory given by hand that lacks the files.
var getData = "point it at a directory with the four Fashion-MNIST IDX files (.gz or not), " +
	"or get them with `apt-get install dataset-fashion-mnist` or `fmtune data download` and leave --data out"

// Options for Load.
type Options struct {
	// Val is the validation size: the last Val training images. 0 means
	// DefaultVal.
	Val int
	// TrainLimit, when > 0, keeps only the first TrainLimit of the training
	// images left after the validation split. 0 means all of them.
	TrainLimit int
}

// FileInfo describes one loaded data file.
type FileInfo struct {
	Name          string `json:"name"`           // base name, e.g. train-images-idx3-ubyte.gz
	Path          string `json:"path"`           // full path
	Size          int64  `json:"size"`           // bytes on disk
	SHA256        string `json:"sha256"`         // hex SHA-256 of the file as stored (as sha256sum prints)
	ContentSHA256 string `json:"content_sha256"` // hex SHA-256 of the decompressed IDX content
	Count         int    `json:"count"`          // number of images or labels
}

// Dataset is Fashion-MNIST split into training, validation and test sets.
// Train and Val are views of one training array; Test is only for the final
// evaluation.
type Dataset struct {
	Dir              string
	Train, Val, Test *Set
	// Checksum identifies the data for reproducibility: the hex SHA-256
	// over the four files' content SHA-256s (FileInfo.ContentSHA256, raw
	// 32-byte digests concatenated in FileNames order). It hashes the
	// decompressed IDX bytes, so the Debian copy, a download from the
	// mirror and a gunzipped copy of the same data all give the same value.
	Checksum string
	// Files describes the four files in FileNames order.
	Files []FileInfo
}

// Load reads and validates the four files in dir (already located, see
// Locate) and splits the training file into Train and Val.
func Load(dir string, opt Options) (*Dataset, error) {
	if opt.Val == 0 {
		opt.Val = DefaultVal
	}
	if opt.Val < 0 {
		return nil, fmt.Errorf("%w: validation size %d must be > 0", ErrOptions, opt.Val)
	}
	if opt.TrainLimit < 0 {
		return nil, fmt.Errorf("%w: train limit %d must be >= 0 (0 means all)", ErrOptions, opt.TrainLimit)
	}
	paths, missing := findFiles(dir)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: data directory %q lacks %s", ErrNotFound, dir, strings.Join(missing, ", "))
	}

	// Read and decompress the four files concurrently.
	var (
		raws [4]*rawFile
		errs [4]error
		wg   sync.WaitGroup
	)
	for i, p := range paths {
		wg.Go(func() { raws[i], errs[i] = readRaw(p) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}

	var (
		train, test *Set
		terr, eerr  error
	)
	wg.Go(func() { train, terr = makeSet(raws[0], raws[1]) })
	wg.Go(func() { test, eerr = makeSet(raws[2], raws[3]) })
	wg.Wait()
	if err := errors.Join(terr, eerr); err != nil {
		return nil, err
	}

	n := train.Len()
	if opt.Val >= n {
		return nil, fmt.Errorf("%w: validation size %d must be less than the %d training images",
			ErrOptions, opt.Val, n)
	}
	rest := n - opt.Val
	if opt.TrainLimit > rest {
		return nil, fmt.Errorf("%w: train limit %d exceeds the %d training images left after the %d validation images",
			ErrOptions, opt.TrainLimit, rest, opt.Val)
	}
	limit := rest
	if opt.TrainLimit > 0 {
		limit = opt.TrainLimit
	}

	ds := &Dataset{
		Dir:   dir,
		Train: train.Slice(0, limit),
		Val:   train.Slice(rest, n),
		Test:  test,
	}
	counts := [4]int{train.Len(), train.Len(), test.Len(), test.Len()}
	sums := make([]string, 4)
	for i, r := range raws {
		ds.Files = append(ds.Files, FileInfo{
			Name:          filepath.Base(r.path),
			Path:          r.path,
			Size:          r.size,
			SHA256:        r.sha256,
			ContentSHA256: r.contentSum,
			Count:         counts[i],
		})
		sums[i] = r.contentSum
	}
	ds.Checksum = combine(sums)
	return ds, nil
}

// combine hashes hex SHA-256 digests (decoded to raw bytes, in order).
func combine(hexSums []string) string {
	h := sha256.New()
	for _, s := range hexSums {
		b, _ := hex.DecodeString(s) // always our own well-formed digests
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
