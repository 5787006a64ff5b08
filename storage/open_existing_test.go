package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenExistingNeverCreatesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if _, err := OpenExisting(context.Background(), "sqlite:///"+path); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("OpenExisting on a missing file: %v, want ErrNoDatabase", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting created %s", path)
	}
	s, err := Open(context.Background(), "sqlite:///"+path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenExisting(context.Background(), "sqlite:///"+path)
	if err != nil {
		t.Fatalf("OpenExisting on a database Open made: %v", err)
	}
	s.Close()
}
