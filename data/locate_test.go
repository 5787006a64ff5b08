package data

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	root := t.TempDir()
	full := func(name string, zip bool) string {
		d := filepath.Join(root, name)
		writeFiles(t, d, tinyFiles(2, 1), zip)
		return d
	}
	flagDir := full("flag", true)
	envDir := full("env", false) // raw files are accepted too
	sysDir := full("system", true)
	cacheHome := filepath.Join(root, "cache")
	cacheDir := full(filepath.Join("cache", "fmtune", "fashion-mnist"), true)
	emptyCacheHome := filepath.Join(root, "nocache")
	partial := filepath.Join(root, "partial")
	writeFiles(t, partial, map[string][]byte{TrainImagesFile: imagesIDX(1)}, true)
	missing := filepath.Join(root, "does-not-exist")

	tests := []struct {
		name           string
		flag, env, sys string
		cache          string // XDG_CACHE_HOME
		want, wantSrc  string
		wantErr        []string // substrings of the error
	}{
		{"flag first", flagDir, envDir, sysDir, cacheHome, flagDir, SourceFlag, nil},
		{"env second", "", envDir, sysDir, cacheHome, envDir, SourceEnv, nil},
		{"system third", "", "", sysDir, cacheHome, sysDir, SourceSystem, nil},
		{"cache last", "", "", missing, cacheHome, cacheDir, SourceCache, nil},
		{"incomplete system falls through", "", "", partial, cacheHome, cacheDir, SourceCache, nil},
		{"incomplete flag dir is an error", partial, envDir, sysDir, cacheHome, "", "",
			[]string{partial, "--data flag", "lacks train-labels-idx1-ubyte[.gz], t10k-images"}},
		{"missing flag dir is an error", missing, envDir, sysDir, cacheHome, "", "",
			[]string{missing, "--data flag", "does not exist"}},
		{"incomplete env dir is an error", "", partial, sysDir, cacheHome, "", "",
			[]string{partial, "$FMTUNE_DATA", "lacks"}},
		{"nothing found", "", "", missing, emptyCacheHome, "", "",
			[]string{missing, filepath.Join(emptyCacheHome, "fmtune", "fashion-mnist"),
				"apt-get install dataset-fashion-mnist", "fmtune data download"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvDir, tt.env)
			t.Setenv("XDG_CACHE_HOME", tt.cache)
			old := systemDir
			systemDir = tt.sys
			t.Cleanup(func() { systemDir = old })

			got, src, err := LocateSource(tt.flag)
			if tt.wantErr != nil {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil || got != tt.want || src != tt.wantSrc {
				t.Fatalf("LocateSource = %q, %q, %v; want %q, %q", got, src, err, tt.want, tt.wantSrc)
			}
			if d, err := Locate(tt.flag); d != got || err != nil {
				t.Errorf("Locate = %q, %v", d, err)
			}
			if _, err := Load(got, Options{Val: 1}); err != nil {
				t.Errorf("Load(%s): %v", got, err)
			}
		})
	}
}
