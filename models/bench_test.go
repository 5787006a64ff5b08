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
