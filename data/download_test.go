package data

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fmtune/fmtune/internal/testenv"
)

// mirror is a local stand-in for the dataset's mirror.
type mirror struct {
	files map[string][]byte // served bodies by URL path ("/x.gz")
	hits  atomic.Int64
	// partial, when set, names a file whose body is cut in half while
	// announcing the full Content-Length.
	partial string
}

func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.hits.Add(1)
	b, ok := m.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.URL.Path == "/"+m.partial {
		b = b[:len(b)/2]
	}
	w.Write(b)
}

// newMirror serves the tiny dataset as .gz files; want is its pinned content.
func newMirror(t *testing.T) (*mirror, *httptest.Server, map[string]Content) {
	m := &mirror{files: map[string][]byte{}}
	want := map[string]Content{}
	for name, b := range tinyFiles(6, 3) {
		m.files["/"+name+".gz"] = gz(b)
		want[name] = Content{SHA256: sha(b), Size: int64(len(b))}
	}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv, want
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestDownload(t *testing.T) {
	m, srv, want := newMirror(t)
	dir := filepath.Join(t.TempDir(), "new", "dir")
	var progress bytes.Buffer
	opt := DownloadOptions{Dir: dir, BaseURL: srv.URL + "/", Want: want, Progress: &progress}

	t.Run("fresh", func(t *testing.T) {
		done, err := Download(t.Context(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != 4 || done[0].Skipped || done[0].Bytes == 0 {
			t.Fatalf("done = %+v", done)
		}
		if got := dirNames(t, dir); len(got) != 4 {
			t.Fatalf("dir holds %v, want just the 4 files", got)
		}
		if !strings.Contains(progress.String(), "train-images-idx3-ubyte.gz: ") ||
			!strings.Contains(progress.String(), "(100%)") {
			t.Errorf("progress = %q", progress.String())
		}
		if st, _ := os.Stat(done[0].Path); st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v", st.Mode())
		}
		if d, err := Locate(dir); err != nil || d != dir {
			t.Fatalf("Locate = %q, %v", d, err)
		}
		if _, err := Load(dir, Options{Val: 2}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("present files are skipped", func(t *testing.T) {
		before := m.hits.Load()
		done, err := Download(t.Context(), opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range done {
			if !d.Skipped {
				t.Errorf("%s not skipped", d.Name)
			}
		}
		if m.hits.Load() != before {
			t.Errorf("server hit %d times, want 0", m.hits.Load()-before)
		}
	})

	t.Run("partial file on disk is replaced", func(t *testing.T) {
		path := filepath.Join(dir, TestImagesFile+".gz")
		good, _ := os.ReadFile(path)
		os.WriteFile(path, good[:len(good)/3], 0o644)
		before := m.hits.Load()
		done, err := Download(t.Context(), opt)
		if err != nil {
			t.Fatal(err)
		}
		if m.hits.Load()-before != 1 || done[2].Skipped || !done[0].Skipped {
			t.Errorf("hits %d, done %+v", m.hits.Load()-before, done)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, good) {
			t.Error("file not restored")
		}
	})

	t.Run("official checksums pinned", func(t *testing.T) {
		if OfficialChecksum == "" || len(Official) != 4 {
			t.Fatal("no pinned checksums")
		}
		if _, err := os.Stat(SystemDir); err != nil {
			testenv.Skip(t, "data", "Debian copy %s absent (apt-get install dataset-fashion-mnist): %v", SystemDir, err)
		}
		for _, name := range FileNames {
			if err := verifyFile(filepath.Join(SystemDir, name+".gz"), Official[name]); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestDownloadRejects serves bad files: each download must fail with a clear
// error and leave nothing behind, neither temp files nor the final file.
func TestDownloadRejects(t *testing.T) {
	labels := TrainLabelsFile + ".gz"
	tests := []struct {
		name    string
		corrupt func(m *mirror)
		want    error
		msg     string
	}{
		{"wrong content", func(m *mirror) {
			b := labelsIDX(6)
			b[len(b)-1] = 7
			m.files["/"+labels] = gz(b)
		}, ErrChecksum, "checksum mismatch: content is 14 bytes with sha256"},
		{"flipped byte in gzip", func(m *mirror) {
			b := bytes.Clone(m.files["/"+labels])
			b[len(b)-6] ^= 0x55
			m.files["/"+labels] = b
		}, ErrGzip, "bad gzip data"},
		{"html instead of gzip", func(m *mirror) {
			m.files["/"+labels] = []byte("<html>error</html>")
		}, ErrGzip, "bad gzip data: gzip: invalid header"},
		{"too long", func(m *mirror) {
			m.files["/"+labels] = gz(append(labelsIDX(6), 0))
		}, ErrTooLarge, "decompresses to more than 14 bytes"},
		{"partial body", func(m *mirror) { m.partial = labels }, nil, "unexpected EOF"},
		{"not found", func(m *mirror) { delete(m.files, "/"+labels) }, nil, "404 Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, srv, want := newMirror(t)
			tt.corrupt(m)
			dir := t.TempDir()
			done, err := Download(t.Context(), DownloadOptions{Dir: dir, BaseURL: srv.URL, Want: want})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			if !strings.Contains(err.Error(), labels) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not name %s and contain %q", err, labels, tt.msg)
			}
			// The first file was fine; the bad second one left nothing.
			if len(done) != 1 {
				t.Errorf("done = %+v", done)
			}
			if got := dirNames(t, dir); len(got) != 1 || got[0] != TrainImagesFile+".gz" {
				t.Errorf("dir holds %v, want only %s.gz", got, TrainImagesFile)
			}
		})
	}
}

func TestDownloadCanceled(t *testing.T) {
	_, srv, want := newMirror(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	_, err := Download(ctx, DownloadOptions{Dir: dir, BaseURL: srv.URL, Want: want})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("dir holds %v", got)
	}
}
