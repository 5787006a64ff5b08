package models

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestResumeFromCheckpointIsBitwiseTheSame stops a training after epoch 2
// of 4, encodes and decodes its checkpoint, continues from it and checks
// that the curve and the weights equal those of a training without a stop,
// for every optimizer (their states differ) and with dropout (whose
// generator state is part of the checkpoint).
func TestResumeFromCheckpointIsBitwiseTheSame(t *testing.T) {
	train, val := subset(t, 300, 100)
	cases := []Config{
		{Arch: "cnn-dropout", Optimizer: Adam, LR: 0.001},
		{Arch: "mlp", Optimizer: Nadam, LR: 0.002},
		{Arch: "mlp", Optimizer: RMSprop, LR: 0.001},
		{Arch: "deep", Optimizer: SGD, LR: 0.05, Momentum: 0.9},
		{Arch: "mlp", Optimizer: SGD, LR: 0.1},
	}
	for _, cfg := range cases {
		cfg.Batch, cfg.Epochs, cfg.Seed = 64, 4, 5
		t.Run(cfg.Arch+"/"+cfg.Optimizer, func(t *testing.T) {
			whole, err := Train(context.Background(), cfg, train, val, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			var saved []byte
			stop := errors.New("stop")
			_, err = Train(context.Background(), cfg, train, val, Hooks{OnCheckpoint: func(c *Checkpoint) error {
				if c.Epoch < 2 {
					return nil
				}
				saved, err = c.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				return stop
			}})
			if !errors.Is(err, stop) {
				t.Fatalf("the checkpoint hook's error did not stop training: %v", err)
			}
			c, err := UnmarshalCheckpoint(saved)
			if err != nil {
				t.Fatal(err)
			}
			if c.Epoch != 2 || len(c.History) != 2 {
				t.Fatalf("checkpoint at epoch %d with %d epochs of history, want 2", c.Epoch, len(c.History))
			}
			var trained []int
			resumed, err := Train(context.Background(), cfg, train, val, Hooks{Resume: c, OnEpoch: func(e EpochStats) error {
				trained = append(trained, e.Epoch)
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(trained, []int{3, 4}) {
				t.Errorf("resumed training trained epochs %v, want [3 4]", trained)
			}
			if !sameCurve(whole.History, resumed.History) {
				t.Errorf("curves differ:\nwhole   %+v\nresumed %+v", curve(whole.History), curve(resumed.History))
			}
			if !slices.Equal(whole.Model.flat, resumed.Model.flat) {
				t.Error("final weights differ")
			}
		})
	}
}

// TestCheckpointNotCalledAfterLastEpoch: the last epoch's state is the
// result, not a checkpoint.
func TestCheckpointNotCalledAfterLastEpoch(t *testing.T) {
	train, val := subset(t, 200, 50)
	var epochs []int
	cfg := Config{Arch: "mlp", Optimizer: Adam, LR: 0.001, Batch: 64, Epochs: 3, Seed: 1}
	if _, err := Train(context.Background(), cfg, train, val, Hooks{OnCheckpoint: func(c *Checkpoint) error {
		epochs = append(epochs, c.Epoch)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(epochs, []int{1, 2}) {
		t.Errorf("checkpoints after epochs %v, want [1 2]", epochs)
	}
}

// TestBadCheckpointsAreRefused: damaged bytes and checkpoints of another
// configuration give ErrBadCheckpoint, never a panic or a silent restart.
func TestBadCheckpointsAreRefused(t *testing.T) {
	train, val := subset(t, 200, 50)
	cfg := Config{Arch: "mlp", Optimizer: Adam, LR: 0.001, Batch: 64, Epochs: 3, Seed: 1}
	var saved []byte
	if _, err := Train(context.Background(), cfg, train, val, Hooks{OnCheckpoint: func(c *Checkpoint) error {
		var err error
		saved, err = c.MarshalBinary()
		return err
	}}); err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(saved)
	flipped[len(flipped)/2] ^= 1
	for name, b := range map[string][]byte{
		"empty": nil, "truncated": saved[:len(saved)-9], "flipped bit": flipped, "foreign": []byte("PK\x03\x04 not a checkpoint"),
	} {
		if _, err := UnmarshalCheckpoint(b); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: got %v, want ErrBadCheckpoint", name, err)
		}
	}
	c, err := UnmarshalCheckpoint(saved)
	if err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string]Config{
		"other lr":   {Arch: "mlp", Optimizer: Adam, LR: 0.01, Batch: 64, Epochs: 3, Seed: 1},
		"other arch": {Arch: "deep", Optimizer: Adam, LR: 0.001, Batch: 64, Epochs: 3, Seed: 1},
		"other seed": {Arch: "mlp", Optimizer: Adam, LR: 0.001, Batch: 64, Epochs: 3, Seed: 2},
		"done":       {Arch: "mlp", Optimizer: Adam, LR: 0.001, Batch: 64, Epochs: 2, Seed: 1},
	} {
		if _, err := Train(context.Background(), other, train, val, Hooks{Resume: c}); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: got %v, want ErrBadCheckpoint", name, err)
		}
	}
}
