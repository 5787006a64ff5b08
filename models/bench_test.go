package models

import (
	"testing"
)

// BenchmarkTrainStep measures one training step (forward, backward, Adam)
// per architecture: batch 128, synthetic data (the cost does not depend on
// the pixels), the threads of an automatic trial. With -benchmem it shows
// the allocations per step.
// Run: go test -run '^$' -bench BenchmarkTrainStep -benchmem ./models/ [-tags openblas]
func BenchmarkTrainStep(b *testing.B) {
	for _, a := range Archs() {
		b.Run(a.Name, func(b *testing.B) {
			model, err := NewModel(a.Name, 1)
			if err != nil {
				b.Fatal(err)
			}
			const batch = 128
			tr, err := newTrainer(model, Config{Optimizer: Adam, LR: 0.001}, batch)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.close()
			set := syntheticSet(batch, 1)
			idx := make([]int, batch)
			for i := range idx {
				idx[i] = i
			}
			rs := newRandSource(1)
			step := func() {
				if _, _, err := tr.step(set, idx, rs); err != nil {
					b.Fatal(err)
				}
			}
			step() // warm-up: the first run allocates the graph's buffers
			b.ReportAllocs()
			for b.Loop() {
				step()
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkCheckpointCNN measures capturing and encoding a cnn checkpoint
// with Adam's state (what a trial stores at the end of every epoch).
//
//	go test -run '^$' -bench CheckpointCNN ./models/
func BenchmarkCheckpointCNN(b *testing.B) {
	m, err := NewModel("cnn", 1)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Arch: "cnn", Optimizer: Adam, LR: 0.001, Batch: 128, Epochs: 2, Seed: 1}
	tr, err := newTrainer(m, cfg, cfg.Batch)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.close()
	rs := newRandSource(cfg.Seed)
	var size int
	for i := 0; i < b.N; i++ {
		out, err := tr.checkpoint(cfg, 1, []EpochStats{{Epoch: 1}}, rs).MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/checkpoint")
}
