package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

func randomSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

func assertNear(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// refGemm is C = alpha*op(A)*op(B) + beta*C in float64, element by element.
func refGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s float64
			for p := range k {
				ai, bi := i*lda+p, p*ldb+j
				if transA {
					ai = p*lda + i
				}
				if transB {
					bi = j*ldb + p
				}
				av, bv := a[ai], b[bi]
				s += float64(av) * float64(bv)
			}
			out[i*n+j] = float64(alpha)*s + float64(beta)*float64(c[i*ldc+j])
		}
	}
	return out
}

func TestGemmMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			const m, n, k = 13, 7, 29
			lda, ldb := k, n
			if tA {
				lda = m
			}
			if tB {
				ldb = k
			}
			a, b, c := randomSlice(r, m*k), randomSlice(r, k*n), randomSlice(r, m*n)
			want := refGemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, c, n)
			Gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 2, c, n)
			assertNear(t, "C", c, want, 1e-5)
		}
	}
}

func TestExpAndSigmoid(t *testing.T) {
	for x := float32(-87); x <= 88; x += 0.173 {
		got, want := float64(exp32(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 3e-7*want {
			t.Fatalf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
	if exp32(-100) != 0 || !math.IsInf(float64(exp32(100)), 1) || !math.IsNaN(float64(exp32(float32(math.NaN())))) {
		t.Errorf("exp32 edges: %v %v %v", exp32(-100), exp32(100), exp32(float32(math.NaN())))
	}
	for _, x := range []float32{-200, -88, -30, -1, 0, 0.5, 3, 40, 200} {
		got, want := float64(sigmoid(x)), 1/(1+math.Exp(-float64(x)))
		if math.Abs(got-want) > 3e-7*want && !(x <= -87 && got >= float64(math.SmallestNonzeroFloat32) && got < 2e-38) {
			t.Errorf("sigmoid(%v) = %v, want %v", x, got, want)
		}
		if got != 0 && got < 1.1754944e-38 {
			t.Errorf("sigmoid(%v) = %v is subnormal", x, got)
		}
	}
}

func TestBiasActAndGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const rows, cols = 5, 6
	b := randomSlice(r, cols)
	for _, act := range []Act{Linear, ReLU, Sigmoid} {
		x := randomSlice(r, rows*cols)
		y := slices.Clone(x)
		BiasAct(y, b, act)
		dy := randomSlice(r, rows*cols)
		dz := make([]float32, rows*cols)
		ActGrad(y, dy, dz, act)
		want, wantDz := make([]float64, rows*cols), make([]float64, rows*cols)
		for i, v := range x {
			z := float64(v) + float64(b[i%cols])
			switch act {
			case ReLU:
				want[i] = max(z, 0)
				if z > 0 {
					wantDz[i] = float64(dy[i])
				}
			case Sigmoid:
				s := 1 / (1 + math.Exp(-z))
				want[i], wantDz[i] = s, float64(dy[i])*s*(1-s)
			default:
				want[i], wantDz[i] = z, float64(dy[i])
			}
		}
		assertNear(t, act.String()+" y", y, want, 1e-6)
		assertNear(t, act.String()+" dz", dz, wantDz, 1e-6)
	}
	g := randomSlice(r, rows*cols)
	sum := make([]float32, cols)
	ColSum(sum, g)
	want := make([]float64, cols)
	for i, v := range g {
		want[i%cols] += float64(v)
	}
	assertNear(t, "ColSum", sum, want, 1e-6)
}

// refConv is a direct valid convolution of n NHWC images with a
// (K*K*C, F) kernel matrix, in float64.
func refConv(g ConvGeom, x, w []float32) []float64 {
	n := len(x) / g.InSize()
	out := make([]float64, n*g.OutSize())
	for img := range n {
		for oy := range g.OH() {
			for ox := range g.OW() {
				for f := range g.F {
					var s float64
					for ky := range g.K {
						for kx := range g.K {
							for ch := range g.C {
								s += float64(x[((img*g.H+oy+ky)*g.W+ox+kx)*g.C+ch]) * float64(w[((ky*g.K+kx)*g.C+ch)*g.F+f])
							}
						}
					}
					out[((img*g.OH()+oy)*g.OW()+ox)*g.F+f] = s
				}
			}
		}
	}
	return out
}

func TestIm2colConvAndAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	g := ConvGeom{H: 6, W: 5, C: 2, K: 3, F: 4}
	const n = 2
	x, w := randomSlice(r, n*g.InSize()), randomSlice(r, g.Cols()*g.F)
	col := make([]float32, n*g.ColSize())
	Im2col(g, x, col)
	y := make([]float32, n*g.OutSize())
	Gemm(false, false, n*g.Rows(), g.F, g.Cols(), 1, col, g.Cols(), w, g.F, 0, y, g.F)
	assertNear(t, "conv", y, refConv(g, x, w), 1e-5)

	// Col2im is the adjoint: <Im2col(x), d> = <x, Col2im(d)>.
	d := randomSlice(r, len(col))
	dx := randomSlice(r, len(x)) // overwritten
	Col2im(g, d, dx)
	var lhs, rhs float64
	for i := range col {
		lhs += float64(col[i]) * float64(d[i])
	}
	for i := range x {
		rhs += float64(x[i]) * float64(dx[i])
	}
	if math.Abs(lhs-rhs) > 1e-4 {
		t.Errorf("<im2col x, d> = %v, <x, col2im d> = %v", lhs, rhs)
	}
}

// TestConv1 checks the direct one-channel convolution and its kernel
// gradient against the reference convolution and against im2col + GEMM.
func TestConv1(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	g := ConvGeom{H: 7, W: 6, C: 1, K: 3, F: 5}
	const n = 3
	x, w := randomSlice(r, n*g.InSize()), randomSlice(r, g.Cols()*g.F)
	z := make([]float32, n*g.OutSize())
	Conv1(g, x, w, z)
	assertNear(t, "conv", z, refConv(g, x, w), 1e-5)

	dz := randomSlice(r, len(z))
	dw := randomSlice(r, len(w)) // overwritten
	Conv1WeightGrad(g, x, dz, dw)
	col := make([]float32, n*g.ColSize())
	Im2col(g, x, col)
	zeros := make([]float32, len(w))
	want := refGemm(true, false, g.Cols(), g.F, n*g.Rows(), 1, col, g.Cols(), dz, g.F, 0, zeros, g.F)
	assertNear(t, "dw", dw, want, 1e-5)
}

func TestMaxPool2(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	const n, h, w, c = 2, 5, 7, 3 // odd sizes: the last row and column are dropped
	x := randomSlice(r, n*h*w*c)
	x[(0*h*w+1*w+1)*c+0] = x[(0*h*w+0*w+0)*c+0] // a tie: the first maximum wins
	oh, ow := h/2, w/2
	y := make([]float32, n*oh*ow*c)
	arg := make([]uint8, len(y))
	MaxPool2(x, h, w, c, y, arg)
	dy := randomSlice(r, len(y))
	dx := randomSlice(r, len(x))
	MaxPool2Grad(dy, arg, h, w, c, dx)
	wantDx := make([]float64, len(x))
	for img := range n {
		for oy := range oh {
			for ox := range ow {
				for ch := range c {
					best, bestK := -1, -1
					for k, d := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}} {
						i := ((img*h+2*oy+d[0])*w+2*ox+d[1])*c + ch
						if best < 0 || x[i] > x[best] {
							best, bestK = i, k
						}
					}
					o := ((img*oh+oy)*ow+ox)*c + ch
					if y[o] != x[best] || int(arg[o]) != bestK {
						t.Fatalf("output %d = %v at window element %d, want %v at %d", o, y[o], arg[o], x[best], bestK)
					}
					wantDx[best] = float64(dy[o])
				}
			}
		}
	}
	assertNear(t, "dx", dx, wantDx, 0)
}

func TestSoftmaxXent(t *testing.T) {
	x := []float32{
		0, 1000, -1000, // target class 1: loss ~0, correct
		2000, 0, 0, // target class 2: loss 2000, wrong
		1e30, 5, 7, // padding
		0.5, -0.25, 1, // target class 0
	}
	tg := []float32{
		0, 0.25, 0,
		0, 0, 0.25,
		0, 0, 0,
		0.25, 0, 0,
	}
	p := make([]float32, len(x))
	loss, correct := SoftmaxXent(x, tg, p, 3)
	lse := math.Log(math.Exp(0.5) + math.Exp(-0.25) + math.Exp(1))
	if want := 0.25*2000 + 0.25*(lse-0.5); math.Abs(loss-want) > 1e-6 {
		t.Errorf("loss = %v, want %v", loss, want)
	}
	if correct != 1 {
		t.Errorf("correct = %d, want 1", correct)
	}
	dx := make([]float32, len(x))
	SoftmaxXentGrad(p, tg, 2, dx, 3)
	want := make([]float64, len(x))
	for r := 0; r < len(x); r += 3 {
		var tsum float64
		for j := range 3 {
			tsum += float64(tg[r+j])
		}
		if tsum == 0 {
			continue
		}
		m := math.Max(float64(x[r]), math.Max(float64(x[r+1]), float64(x[r+2])))
		var s float64
		for j := range 3 {
			s += math.Exp(float64(x[r+j]) - m)
		}
		for j := range 3 {
			want[r+j] = 2 * (math.Exp(float64(x[r+j])-m)/s*tsum - float64(tg[r+j]))
		}
	}
	assertNear(t, "dx", dx, want, 1e-6)
}

// TestPCGIsMathRandPCG: same seeds, same stream as math/rand/v2.
func TestPCGIsMathRandPCG(t *testing.T) {
	ours, theirs := NewPCG(7, 0xd1b54a32d192ed03), rand.NewPCG(7, 0xd1b54a32d192ed03)
	for i := range 1000 {
		if a, b := ours.Uint64(), theirs.Uint64(); a != b {
			t.Fatalf("draw %d: %x, math/rand/v2 %x", i, a, b)
		}
	}
}

// TestMaskFillerIsSequential: masks filled in parallel chunks (jumping
// ahead in the stream) equal those drawn in order, and the stream ends in
// the same state.
func TestMaskFillerIsSequential(t *testing.T) {
	for _, threads := range []int{1, 2} {
		for _, n := range []int{1, maskChunk - 1, maskChunk, 3*maskChunk + 17} {
			want := make([]float32, n)
			seq := NewPCG(3, 4)
			seq.Uint64()
			DropoutMask(want, 0.25, seq)
			got := make([]float32, n)
			par := NewPCG(3, 4)
			par.Uint64()
			f := NewMaskFiller(&Team{Threads: threads}, par)
			f.Fill(got, 0.25)
			if !slices.Equal(got, want) || *par != *seq {
				t.Fatalf("threads %d, n %d: parallel masks or final state differ from sequential", threads, n)
			}
		}
	}
	if j := NewPCG(1, 2).jump(0); j != *NewPCG(1, 2) {
		t.Errorf("jump(0) moved the state")
	}
}

func TestDropoutMask(t *testing.T) {
	mask := make([]float32, 100000)
	DropoutMask(mask, 0.25, NewPCG(1, 2))
	zeros := 0
	for _, v := range mask {
		switch v {
		case 0:
			zeros++
		case float32(1 / 0.75):
		default:
			t.Fatalf("mask value %v, want 0 or 1/(1-0.25)", v)
		}
	}
	if f := float64(zeros) / float64(len(mask)); math.Abs(f-0.25) > 0.01 {
		t.Errorf("dropped fraction %.4f, want 0.25", f)
	}
	again := make([]float32, len(mask))
	DropoutMask(again, 0.25, NewPCG(1, 2))
	other := make([]float32, len(mask))
	DropoutMask(other, 0.25, NewPCG(3, 2))
	if !slices.Equal(mask, again) || slices.Equal(mask, other) {
		t.Errorf("seeded masks: same seed equal %v, other seed equal %v", slices.Equal(mask, again), slices.Equal(mask, other))
	}
}

// TestTeamRunsEveryChunkOnce runs many chunks with 1, 2 and automatic
// threads: each chunk runs exactly once.
func TestTeamRunsEveryChunkOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 0} {
		team := &Team{Threads: threads}
		team.Activate()
		var counts [100]atomic.Int32
		for range 50 {
			team.Run(len(counts), func(c, w int) {
				if w < 0 || w >= MaxThreads() {
					t.Errorf("worker %d", w)
				}
				counts[c].Add(1)
			})
		}
		team.Deactivate()
		for c := range counts {
			if n := counts[c].Load(); n != 50 {
				t.Fatalf("threads %d: chunk %d ran %d times, want 50", threads, c, n)
			}
		}
	}
	if got := (&Team{Threads: 1000}).Size(); got > 1000 || got < 1 {
		t.Errorf("Size = %d", got)
	}
}

// TestTeamAllocatesNothing: Run with a stored method value allocates
// nothing, on one thread or several.
func TestTeamAllocatesNothing(t *testing.T) {
	s := &summer{v: make([]float32, 64)}
	s.fn = s.chunk
	for _, threads := range []int{1, 2} {
		team := &Team{Threads: threads}
		if a := testing.AllocsPerRun(100, func() { team.Run(8, s.fn) }); a != 0 {
			t.Errorf("threads %d: %v allocations per Run", threads, a)
		}
	}
}

type summer struct {
	v  []float32
	fn func(int, int)
}

func (s *summer) chunk(c, _ int) { s.v[c*8] += 1 }
