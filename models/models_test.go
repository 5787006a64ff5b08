package models

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fmtune/fmtune/data"
	"github.com/fmtune/fmtune/models/kernels"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestArchParams(t *testing.T) {
	want := []struct {
		name   string
		params int
	}{
		{"mlp", 25450},
		{"deep", 53706},
		{"cnn", 225034},
		{"cnn-dropout", 225034},
	}
	got := Archs()
	if len(got) != len(want) {
		t.Fatalf("Archs() has %d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Name != w.name || got[i].Params != w.params {
			t.Errorf("Archs()[%d] = %s with %d params, want %s with %d", i, got[i].Name, got[i].Params, w.name, w.params)
		}
		m, err := NewModel(w.name, 1)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, p := range m.params {
			total += len(p.Data().([]float32))
		}
		if total != w.params {
			t.Errorf("%s: model holds %d weights, want %d", w.name, total, w.params)
		}
	}
	if got := strings.Join(Optimizers(), ","); got != "sgd,adam,nadam,rmsprop" {
		t.Errorf("Optimizers() = %s", got)
	}
}

func TestGlorotInit(t *testing.T) {
	m, err := NewModel("mlp", 7)
	if err != nil {
		t.Fatal(err)
	}
	w := m.params[0].Data().([]float32) // 784x32
	limit := math.Sqrt(6.0 / (784 + 32))
	var sum, sq float64
	for _, v := range w {
		if math.Abs(float64(v)) > limit {
			t.Fatalf("weight %v outside ±%v", v, limit)
		}
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(w))
	if mean, variance := sum/n, sq/n; math.Abs(mean) > 0.01*limit*10 || math.Abs(variance-limit*limit/3) > 0.05*limit*limit/3 {
		t.Errorf("mean %v variance %v, want ~0 and %v (uniform)", mean, variance, limit*limit/3)
	}
	for _, v := range m.params[1].Data().([]float32) {
		if v != 0 {
			t.Fatalf("bias %v, want 0", v)
		}
	}
	again, _ := NewModel("mlp", 7)
	other, _ := NewModel("mlp", 8)
	if again.params[0].Data().([]float32)[100] != w[100] {
		t.Error("same seed, different weights")
	}
	if other.params[0].Data().([]float32)[100] == w[100] {
		t.Error("different seed, same weights")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Arch: "mlp", Optimizer: "sgd", LR: 0.1, Batch: 128, Epochs: 10}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string // in the message
	}{
		{"unknown arch", func(c *Config) { c.Arch = "resnet" }, "mlp, deep, cnn, cnn-dropout"},
		{"unknown optimizer", func(c *Config) { c.Optimizer = "adagrad" }, "sgd, adam, nadam, rmsprop"},
		{"zero lr", func(c *Config) { c.LR = 0 }, "learning rate"},
		{"nan lr", func(c *Config) { c.LR = math.NaN() }, "learning rate"},
		{"negative batch", func(c *Config) { c.Batch = -1 }, "batch size"},
		{"zero epochs", func(c *Config) { c.Epochs = 0 }, "epochs"},
		{"momentum 1", func(c *Config) { c.Momentum = 1 }, "momentum"},
		{"momentum with adam", func(c *Config) { c.Optimizer = "adam"; c.Momentum = 0.9 }, "sgd only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q lacks %q", err, tc.want)
			}
		})
	}
}

// subset returns n real training and m validation images, or skips.
func subset(t *testing.T, n, m int) (train, val *data.Set) {
	t.Helper()
	ds := fashion(t)
	return ds.Train.Slice(0, n), ds.Val.Slice(0, m)
}

// curve drops the timings of a history.
func curve(h []EpochStats) []EpochStats {
	out := make([]EpochStats, len(h))
	for i, s := range h {
		s.Seconds, s.SamplesPerSec = 0, 0
		out[i] = s
	}
	return out
}

func sameCurve(a, b []EpochStats) bool {
	a, b = curve(a), curve(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSeededDeterminism(t *testing.T) {
	train, val := subset(t, 300, 100)
	for _, arch := range []string{"mlp", "cnn-dropout"} {
		t.Run(arch, func(t *testing.T) {
			// Batch 64 leaves a partial last batch of 44.
			cfg := Config{Arch: arch, Optimizer: "adam", LR: 0.001, Batch: 64, Epochs: 2, Seed: 11}
			a, err := Train(context.Background(), cfg, train, val, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Train(context.Background(), cfg, train, val, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if !sameCurve(a.History, b.History) {
				t.Errorf("same seed, different histories:\n%+v\n%+v", curve(a.History), curve(b.History))
			}
			cfg.Seed = 12
			c, err := Train(context.Background(), cfg, train, val, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if sameCurve(a.History, c.History) {
				t.Errorf("different seeds, same history %+v", curve(a.History))
			}
		})
	}
}

// TestThreadCountDoesNotChangeResults trains with one thread and with two:
// the work is split into the same chunks either way, so the learning
// curves and the final weights are bitwise equal.
func TestThreadCountDoesNotChangeResults(t *testing.T) {
	train, val := subset(t, 300, 100)
	for _, arch := range []string{"deep", "cnn-dropout"} {
		t.Run(arch, func(t *testing.T) {
			var res [2]*Result
			for i, threads := range []int{1, 2} {
				cfg := Config{Arch: arch, Optimizer: "nadam", LR: 0.001, Batch: 64, Epochs: 2, Seed: 3, Threads: threads}
				r, err := Train(context.Background(), cfg, train, val, Hooks{})
				if err != nil {
					t.Fatal(err)
				}
				res[i] = r
			}
			if !sameCurve(res[0].History, res[1].History) {
				t.Errorf("1 thread %+v\n2 threads %+v", curve(res[0].History), curve(res[1].History))
			}
			if !slices.Equal(res[0].Model.flat, res[1].Model.flat) {
				t.Error("the weights differ between 1 and 2 threads")
			}
		})
	}
}

func TestEachOptimizerLowersMLPLoss(t *testing.T) {
	train, val := subset(t, 3000, 1000)
	lrs := map[string]float64{"sgd": 0.1, "adam": 0.001, "nadam": 0.001, "rmsprop": 0.001}
	for _, opt := range Optimizers() {
		t.Run(opt, func(t *testing.T) {
			cfg := Config{Arch: "mlp", Optimizer: opt, LR: lrs[opt], Batch: 64, Epochs: 3, Seed: 1}
			res, err := Train(context.Background(), cfg, train, val, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			h := res.History
			t.Logf("train loss %.4f -> %.4f, val loss %.4f -> %.4f, val acc %.3f",
				h[0].TrainLoss, h[2].TrainLoss, h[0].ValLoss, h[2].ValLoss, h[2].ValAcc)
			if !(h[1].TrainLoss < h[0].TrainLoss && h[2].TrainLoss < h[1].TrainLoss) {
				t.Errorf("train loss did not fall: %.4f %.4f %.4f", h[0].TrainLoss, h[1].TrainLoss, h[2].TrainLoss)
			}
			if !(h[2].ValLoss < h[0].ValLoss) {
				t.Errorf("val loss did not fall: %.4f -> %.4f", h[0].ValLoss, h[2].ValLoss)
			}
		})
	}
}

// TestDropoutScaling checks inverted dropout in a graph: forward y = x·mask
// and backward dL/dx = mask, where the mask is 0 or 1/(1-p).
func TestDropoutScaling(t *testing.T) {
	const p = 0.25 // 1/(1-p) = 4/3, while gorgonia.Dropout's 1/p would be 4
	graphMu.Lock()
	g := G.NewGraph()
	xv := tensor.New(tensor.WithShape(8, 50), tensor.Of(tensor.Float32))
	for i := range xv.Data().([]float32) {
		xv.Data().([]float32)[i] = float32(i%7) + 1
	}
	x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(8, 50), G.WithValue(xv), G.WithName("x"))
	b := &builder{g: g, train: true, team: &kernels.Team{}}
	y := b.dropout(x, p)
	loss, err := G.Sum(y)
	if err != nil || b.err != nil || len(b.drops) != 1 {
		graphMu.Unlock()
		t.Fatalf("build: %v %v, %d dropout sites", err, b.err, len(b.drops))
	}
	grads, err := G.Grad(loss, x)
	if err != nil {
		graphMu.Unlock()
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	graphMu.Unlock()

	kernels.DropoutMask(b.drops[0].mask, b.drops[0].rate, kernels.NewPCG(5, 6))
	if b.drops[0].rate != p {
		t.Fatalf("rate %v", b.drops[0].rate)
	}
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	defer vm.Reset()
	mask := b.drops[0].mask
	xs := xv.Data().([]float32)
	ys, _ := f32s(y.Value())
	dx, _ := f32s(grads[0].Value())
	kept := 0
	for i, m := range mask {
		if m != 0 && m != 1/(1-p) {
			t.Fatalf("mask[%d] = %v, want 0 or %v", i, m, 1/(1-p))
		}
		if m != 0 {
			kept++
		}
		if ys[i] != xs[i]*m {
			t.Fatalf("y[%d] = %v, want x·mask = %v", i, ys[i], xs[i]*m)
		}
		if dx[i] != m {
			t.Fatalf("dL/dx[%d] = %v, want mask %v (gorgonia.Dropout would scale by 1/p)", i, dx[i], m)
		}
	}
	if kept == 0 || kept == len(mask) {
		t.Fatalf("kept %d of %d", kept, len(mask))
	}
}

// refMLP is the mlp's forward pass in plain Go, float64.
func refMLP(m *Model, set *data.Set) (loss, acc float64) {
	w1, b1 := m.params[0].Data().([]float32), m.params[1].Data().([]float32)
	w2, b2 := m.params[2].Data().([]float32), m.params[3].Data().([]float32)
	correct := 0
	for i := range set.Len() {
		x := set.Image(i)
		h := make([]float64, 32)
		for j := range h {
			s := float64(b1[j])
			for k, v := range x {
				s += float64(float32(v)/255) * float64(w1[k*32+j])
			}
			h[j] = 1 / (1 + math.Exp(-s))
		}
		logits := make([]float32, 10)
		for j := range logits {
			s := float64(b2[j])
			for k, v := range h {
				s += v * float64(w2[k*10+j])
			}
			logits[j] = float32(s)
		}
		l := int(set.Labels[i])
		loss += logSumExp(logits) - float64(logits[l])
		if argmax(logits) == l {
			correct++
		}
	}
	return loss / float64(set.Len()), float64(correct) / float64(set.Len())
}

func TestEvaluateExact(t *testing.T) {
	train, _ := subset(t, 1037, 1) // eval batch 1000: a last batch of 37
	res, err := Train(context.Background(), Config{Arch: "mlp", Optimizer: "sgd", LR: 0.1, Batch: 128, Epochs: 1, Seed: 2}, train.Slice(0, 500), nil, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	loss, acc, err := res.Model.Evaluate(train)
	if err != nil {
		t.Fatal(err)
	}
	wantLoss, wantAcc := refMLP(res.Model, train)
	if math.Abs(loss-wantLoss) > 1e-5 || acc != wantAcc {
		t.Errorf("Evaluate = %.6f, %.6f; reference %.6f, %.6f", loss, acc, wantLoss, wantAcc)
	}
	// The padding rows must not count: the first 37 alone agree too.
	l37, a37, _ := res.Model.Evaluate(train.Slice(1000, 1037))
	r37, ra37 := refMLP(res.Model, train.Slice(1000, 1037))
	if math.Abs(l37-r37) > 1e-5 || a37 != ra37 {
		t.Errorf("last 37: Evaluate = %.6f, %.6f; reference %.6f, %.6f", l37, a37, r37, ra37)
	}

	// cnn: one padded pass over 257 (eval batch 250 + 7) equals the
	// size-weighted results of separate graphs for 250 and 7.
	m, err := NewModel("cnn", 3)
	if err != nil {
		t.Fatal(err)
	}
	set := train.Slice(0, 257)
	lAll, aAll, err := m.Evaluate(set)
	if err != nil {
		t.Fatal(err)
	}
	l1, a1, _ := m.Evaluate(train.Slice(0, 250))
	l2, a2, _ := m.Evaluate(train.Slice(250, 257))
	if wl, wa := (250*l1+7*l2)/257, (250*a1+7*a2)/257; math.Abs(lAll-wl) > 1e-5 || math.Abs(aAll-wa) > 1e-12 {
		t.Errorf("cnn: Evaluate(257) = %.6f, %.6f; pieces give %.6f, %.6f", lAll, aAll, wl, wa)
	}
}

func TestCancelStopsWithinABatch(t *testing.T) {
	train, val := subset(t, 2000, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var canceledAt time.Time
	calls, after := 0, 0
	hooks := Hooks{OnBatch: func(epoch, batch, batches int) {
		calls++
		if !canceledAt.IsZero() {
			after++
		}
		if epoch == 1 && batch == 3 {
			canceledAt = time.Now()
			cancel()
		}
	}}
	res, err := Train(ctx, Config{Arch: "mlp", Optimizer: "sgd", LR: 0.1, Batch: 32, Epochs: 5, Seed: 1}, train, val, hooks)
	took := time.Since(canceledAt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Train = %v, want context.Canceled", err)
	}
	if after != 0 || calls != 3 {
		t.Errorf("%d batches ran after the cancel (%d in all)", after, calls)
	}
	if took > 2*time.Second {
		t.Errorf("Train returned %v after the cancel", took)
	}
	if res == nil || len(res.History) != 0 {
		t.Errorf("result %+v, want an empty history", res)
	}
}

func TestOnEpochErrorStops(t *testing.T) {
	train, val := subset(t, 256, 64)
	stop := errors.New("pruned")
	res, err := Train(context.Background(), Config{Arch: "mlp", Optimizer: "adam", LR: 0.001, Batch: 64, Epochs: 5, Seed: 1},
		train, val, Hooks{OnEpoch: func(s EpochStats) error {
			if s.Epoch == 2 {
				return stop
			}
			return nil
		}})
	if !errors.Is(err, stop) {
		t.Fatalf("Train = %v, want the hook's error", err)
	}
	if res == nil || len(res.History) != 2 || res.History[1].Epoch != 2 {
		t.Fatalf("history %+v, want epochs 1 and 2", res)
	}
}

func TestDivergence(t *testing.T) {
	train, val := subset(t, 512, 64)
	res, err := Train(context.Background(), Config{Arch: "deep", Optimizer: "sgd", LR: 1e6, Batch: 64, Epochs: 3, Seed: 1}, train, val, Hooks{})
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Train = %v, want ErrDiverged", err)
	}
	var de *DivergedError
	if !errors.As(err, &de) || de.Epoch < 1 || de.Batch < 1 || !(math.IsNaN(de.Loss) || math.IsInf(de.Loss, 0)) {
		t.Fatalf("error %#v, want a *DivergedError with epoch, batch and a non-finite loss", err)
	}
	t.Logf("%v", err)
	if res == nil {
		t.Error("nil result")
	}
}

// TestConcurrentTrainingMatchesSequential trains two models at once (run
// it with -race) and compares with sequential runs.
func TestConcurrentTrainingMatchesSequential(t *testing.T) {
	train, val := subset(t, 96, 32)
	cfgs := []Config{
		{Arch: "deep", Optimizer: "nadam", LR: 0.001, Batch: 32, Epochs: 2, Seed: 5},
		{Arch: "cnn-dropout", Optimizer: "rmsprop", LR: 0.001, Batch: 32, Epochs: 2, Seed: 6},
	}
	seq := make([]*Result, len(cfgs))
	for i, c := range cfgs {
		r, err := Train(context.Background(), c, train, val, Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		seq[i] = r
	}
	par := make([]*Result, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() { par[i], errs[i] = Train(context.Background(), c, train, val, Hooks{}) })
	}
	wg.Wait()
	for i := range cfgs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !sameCurve(seq[i].History, par[i].History) {
			t.Errorf("%s: concurrent %+v, sequential %+v", cfgs[i].Arch, curve(par[i].History), curve(seq[i].History))
		}
	}
}

func TestTrainRejectsInvalidConfig(t *testing.T) {
	_, err := Train(context.Background(), Config{Arch: "mlp", Optimizer: "sgd", LR: 0, Batch: 1, Epochs: 1}, &data.Set{}, nil, Hooks{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Train = %v, want ErrInvalidConfig", err)
	}
}

// TestPlanMatchesTapeMachine trains the same steps with the plan and with
// gorgonia's TapeMachine running the same graph: losses and weights are
// bitwise equal.
func TestPlanMatchesTapeMachine(t *testing.T) {
	train, _ := subset(t, 200, 1)
	for _, arch := range []string{"deep", "cnn-dropout"} {
		t.Run(arch, func(t *testing.T) {
			var losses [2][]float64
			var weights [2][]float32
			for i := range 2 {
				m, err := NewModel(arch, 4)
				if err != nil {
					t.Fatal(err)
				}
				tr, err := newTrainer(m, Config{Optimizer: Adam, LR: 0.001}, 50)
				if err != nil {
					t.Fatal(err)
				}
				defer tr.close()
				if i == 1 {
					graphMu.Lock()
					tr.tg.tape = G.NewTapeMachine(tr.tg.g)
					graphMu.Unlock()
				}
				rs := newRandSource(4)
				idx := make([]int, 50)
				for b := range 4 {
					for k := range idx {
						idx[k] = b*50 + k
					}
					loss, _, err := tr.step(train, idx, rs)
					if err != nil {
						t.Fatal(err)
					}
					losses[i] = append(losses[i], loss)
				}
				weights[i] = m.flat
			}
			for b := range losses[0] {
				if losses[0][b] != losses[1][b] {
					t.Errorf("batch %d: loss %v with the plan, %v with the TapeMachine", b, losses[0][b], losses[1][b])
				}
			}
			if !slices.Equal(weights[0], weights[1]) {
				t.Error("weights differ after 4 steps")
			}
		})
	}
}
