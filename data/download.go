package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultBaseURL is the official Fashion-MNIST mirror.
const DefaultBaseURL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

// ErrChecksum means a downloaded file is not the expected one.
var ErrChecksum = errors.New("checksum mismatch")

// Content pins the decompressed IDX content of a file: its SHA-256 and size.
// Pinning the content rather than the .gz bytes makes the check independent
// of gzip headers (Debian's copies differ from the mirror's .gz files only in
// the header's name and time fields).
type Content struct {
	SHA256 string
	Size   int64
}

// Official is the content of the official Fashion-MNIST files, keyed by
// FileNames (computed from Debian's dataset-fashion-mnist copies).
var Official = map[string]Content{
	TrainImagesFile: {"c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016},
	TrainLabelsFile: {"bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008},
	TestImagesFile:  {"5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016},
	TestLabelsFile:  {"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008},
}

// OfficialChecksum is Dataset.Checksum of the official data.
var OfficialChecksum = func() string {
	sums := make([]string, len(FileNames))
	for i, n := range FileNames {
		sums[i] = Official[n].SHA256
	}
	return combine(sums)
}()

// maxDownload bounds the size of one downloaded .gz file.
const maxDownload = 256 << 20

// DownloadOptions configures Download.
type DownloadOptions struct {
	Dir      string             // destination; "" means CacheDir()
	BaseURL  string             // "" means DefaultBaseURL
	Client   *http.Client       // nil means http.DefaultClient
	Progress io.Writer          // progress lines (stderr); nil for none
	Want     map[string]Content // expected content per file; nil means Official
}

// Downloaded reports what Download did with one file.
type Downloaded struct {
	Name    string // e.g. train-images-idx3-ubyte.gz
	Path    string
	Bytes   int64 // bytes fetched (0 when skipped)
	Skipped bool  // already present with the right content
}

// Download fetches the four .gz files into opt.Dir, verifies their content
// against the pinned checksums and moves each into place atomically (temp
// file in the same directory, then rename). Files already present with the
// right content are skipped. A failed or corrupt download leaves nothing.
func Download(ctx context.Context, opt DownloadOptions) ([]Downloaded, error) {
	if opt.Dir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		opt.Dir = d
	}
	if opt.BaseURL == "" {
		opt.BaseURL = DefaultBaseURL
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	if opt.Want == nil {
		opt.Want = Official
	}
	if opt.Progress == nil {
		opt.Progress = io.Discard
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	var done []Downloaded
	for _, name := range FileNames {
		want, ok := opt.Want[name]
		if !ok {
			return done, fmt.Errorf("no pinned checksum for %s", name)
		}
		d, err := downloadOne(ctx, opt, name+".gz", want)
		if err != nil {
			return done, err
		}
		done = append(done, d)
	}
	return done, nil
}

// downloadOne fetches one file unless it is already present and right.
func downloadOne(ctx context.Context, opt DownloadOptions, name string, want Content) (Downloaded, error) {
	final := filepath.Join(opt.Dir, name)
	d := Downloaded{Name: name, Path: final}
	if _, err := os.Stat(final); err == nil {
		if verifyFile(final, want) == nil {
			d.Skipped = true
			fmt.Fprintf(opt.Progress, "%s: already present, checksum ok\n", name)
			return d, nil
		}
		fmt.Fprintf(opt.Progress, "%s: present but wrong, downloading again\n", name)
	}

	url := strings.TrimSuffix(opt.BaseURL, "/") + "/" + name
	tmp, err := os.CreateTemp(opt.Dir, "."+name+".*.part")
	if err != nil {
		return d, fmt.Errorf("download %s: %w", name, err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	n, err := fetch(ctx, opt, url, name, tmp)
	if err != nil {
		return d, err
	}
	d.Bytes = n
	if err := tmp.Sync(); err != nil {
		return d, fmt.Errorf("download %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return d, fmt.Errorf("download %s: %w", name, err)
	}
	if err := verifyFile(tmp.Name(), want); err != nil {
		// Name the source, not the temp file that is about to vanish.
		var fe *FileError
		if errors.As(err, &fe) {
			err = fe.Err
		}
		return d, &FileError{Path: url, Err: err}
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return d, fmt.Errorf("download %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return d, fmt.Errorf("download %s: %w", name, err)
	}
	keep = true
	if dir, err := os.Open(opt.Dir); err == nil { // persist the rename
		dir.Sync()
		dir.Close()
	}
	return d, nil
}

// fetch GETs url into w, reporting progress; it returns the bytes written.
func fetch(ctx context.Context, opt DownloadOptions, url, name string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", name, err)
	}
	resp, err := opt.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download %s: GET %s: %s", name, url, resp.Status)
	}
	if resp.ContentLength > maxDownload {
		return 0, fmt.Errorf("download %s: %w: %d bytes", name, ErrTooLarge, resp.ContentLength)
	}
	p := &progress{w: opt.Progress, name: name, total: resp.ContentLength}
	n, err := io.Copy(io.MultiWriter(w, p), io.LimitReader(resp.Body, maxDownload+1))
	p.finish()
	if err != nil {
		return n, fmt.Errorf("download %s: after %d bytes: %w", name, n, err)
	}
	if n > maxDownload {
		return n, fmt.Errorf("download %s: %w: more than %d bytes", name, ErrTooLarge, maxDownload)
	}
	return n, nil
}

// verifyFile checks that the gzip file at path decompresses to want.
func verifyFile(path string, want Content) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	content, err := gunzip(b, int(want.Size))
	if err != nil {
		return &FileError{Path: path, Err: err}
	}
	sum := sha256.Sum256(content)
	got := hex.EncodeToString(sum[:])
	if int64(len(content)) != want.Size || got != want.SHA256 {
		return &FileError{Path: path, Err: fmt.Errorf("%w: content is %d bytes with sha256 %s, want %d bytes with sha256 %s",
			ErrChecksum, len(content), got, want.Size, want.SHA256)}
	}
	return nil
}

// progress writes "name: 3.1 MiB / 25.2 MiB (12%)" lines, rewriting one
// line with \r, at most every 200ms.
type progress struct {
	w     io.Writer
	name  string
	total int64 // -1 when unknown
	n     int64
	last  time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond {
		p.last = now
		p.print("\r")
	}
	return len(b), nil
}

func (p *progress) print(prefix string) {
	if p.total > 0 {
		fmt.Fprintf(p.w, "%s%s: %s / %s (%d%%)", prefix, p.name, mib(p.n), mib(p.total), p.n*100/p.total)
	} else {
		fmt.Fprintf(p.w, "%s%s: %s", prefix, p.name, mib(p.n))
	}
}

func (p *progress) finish() {
	p.print("\r")
	fmt.Fprintln(p.w)
}

// mib formats a byte count for progress lines.
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
