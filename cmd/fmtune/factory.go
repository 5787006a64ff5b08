package main

import (
	"context"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/storage"
	"github.com/fmtune/fmtune/study"
)

// Factory is where the commands get what they work on: the storage, the
// data and the training. run gives every command defaultFactory; a test
// gives its own (a data directory of its own, a fake trainer) to run a
// command in-process and check its parsing and output.
type Factory struct {
	// StoreURL resolves a --storage flag to a URL (the flag, else
	// $FMTUNE_STORAGE, else sqlite:///fmtune.db).
	StoreURL func(flag string) string
	// DataDir resolves a --data flag to the directory of the four IDX files
	// (the flag, else $FMTUNE_DATA, the Debian copy, the user cache).
	DataDir func(flag string) (string, error)
	// Train trains the trials of a study.
	Train study.Trainer
}

// defaultFactory is the real storage, data and training.
func defaultFactory() *Factory {
	return &Factory{StoreURL: storage.ResolveURL, DataDir: data.Locate, Train: study.TrainModel}
}

// openStore opens (creating if need be) the storage a --storage flag names.
func (f *Factory) openStore(ctx context.Context, flag string) (*storage.Storage, error) {
	return storage.Open(ctx, f.StoreURL(flag))
}

// openExistingStore opens a storage that must already exist (for reading).
func (f *Factory) openExistingStore(ctx context.Context, flag string) (*storage.Storage, error) {
	return storage.OpenExisting(ctx, f.StoreURL(flag))
}

// loadData loads the data a --data flag names, split for val and trainLimit.
func (f *Factory) loadData(dir string, val, trainLimit int) (*data.Dataset, error) {
	found, err := f.DataDir(dir)
	if err != nil {
		return nil, err
	}
	return data.Load(found, data.Options{Val: val, TrainLimit: trainLimit})
}
