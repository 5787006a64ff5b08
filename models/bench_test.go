package models

import "testing"

// BenchmarkTrain reports training samples/s per architecture (batch 128,
// synthetic data: the cost does not depend on the pixels).
// Run: go test -run '^$' -bench BenchmarkTrain ./models/ [-tags openblas]
func BenchmarkTrain(b *testing.B) {
	for _, a := range Archs() {
		b.Run(BLASName()+"/"+a.Name, func(b *testing.B) {
			model, err := NewModel(a.Name, 1)
			if err != nil {
				b.Fatal(err)
			}
			const batch = 128
			_, tg, err := model.build(batch, true)
			if err != nil {
				b.Fatal(err)
			}
			solver, err := NewSolver(Config{Optimizer: Adam, LR: 0.001})
			if err != nil {
				b.Fatal(err)
			}
			set := syntheticSet(batch, 1)
			rs := newRandSource(1)
			step := func() {
				if _, _, err := tg.step(set.Images, set.Labels, rs); err != nil {
					b.Fatal(err)
				}
				if err := solver.Step(tg.vgs); err != nil {
					b.Fatal(err)
				}
			}
			step() // warm-up
			n := 0
			for b.Loop() {
				step()
				n++
			}
			b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
