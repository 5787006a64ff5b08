package kernels

// ConvGeom is the geometry of a k×k valid, stride-1 convolution of images
// H×W×C (NHWC: channels last) with F filters. Its kernel is the
// (K*K*C)×F matrix whose row (ky*K+kx)*C+ch multiplies input channel ch at
// offset (ky, kx): Keras' (K, K, C, F) kernel flattened.
type ConvGeom struct{ H, W, C, K, F int }

// OH and OW are the output height and width.
func (g ConvGeom) OH() int { return g.H - g.K + 1 }
func (g ConvGeom) OW() int { return g.W - g.K + 1 }

// InSize, OutSize and ColSize are the values per image of the input, of
// the output and of its im2col patch matrix.
func (g ConvGeom) InSize() int  { return g.H * g.W * g.C }
func (g ConvGeom) OutSize() int { return g.OH() * g.OW() * g.F }
func (g ConvGeom) ColSize() int { return g.OH() * g.OW() * g.K * g.K * g.C }

// Rows is the number of patch-matrix rows per image; Cols its width.
func (g ConvGeom) Rows() int { return g.OH() * g.OW() }
func (g ConvGeom) Cols() int { return g.K * g.K * g.C }

// Im2col writes the patch matrix of the images x (n images, NHWC) to col
// (n*Rows()×Cols()): row (img, oy, ox) holds x[img, oy+ky, ox+kx, ch] at
// column (ky*K+kx)*C+ch. In NHWC a kernel row of a patch is K*C
// contiguous values, so a patch is K copies.
func Im2col(g ConvGeom, x, col []float32) {
	n := len(x) / g.InSize()
	if useNative && n > 0 {
		nativeIm2col(g, x[:n*g.InSize()], col[:n*g.ColSize()], n)
		return
	}
	oh, ow, kc := g.OH(), g.OW(), g.K*g.C
	row := 0
	for img := range n {
		for oy := range oh {
			for ox := range ow {
				for ky := range g.K {
					src := ((img*g.H+oy+ky)*g.W + ox) * g.C
					copy(col[row:row+kc], x[src:src+kc])
					row += kc
				}
			}
		}
	}
}

// Col2im is Im2col's adjoint: it sets dx (n images) to the sum of the
// patch-matrix gradient dcol over the positions each pixel was copied to.
func Col2im(g ConvGeom, dcol, dx []float32) {
	n := len(dx) / g.InSize()
	if useNative && n > 0 {
		nativeCol2im(g, dcol[:n*g.ColSize()], dx[:n*g.InSize()], n)
		return
	}
	clear(dx)
	oh, ow, kc := g.OH(), g.OW(), g.K*g.C
	row := 0
	for img := range n {
		for oy := range oh {
			for ox := range ow {
				for ky := range g.K {
					dst := dx[((img*g.H+oy+ky)*g.W+ox)*g.C:][:kc]
					for i, v := range dcol[row : row+kc] {
						dst[i] += v
					}
					row += kc
				}
			}
		}
	}
}

// MaxPool2 is 2×2 max pooling with stride 2 of x (n images h×w×c, NHWC;
// an odd last row or column is dropped) into y (n × h/2 × w/2 × c). For
// each output, arg records which of the window's four elements (0 top
// left, 1 top right, 2 bottom left, 3 bottom right) was the first maximum,
// so the backward pass (MaxPool2Grad) needs no search. The comparisons
// are branch-free (max is a > b ? a : b, as the CPU's max instruction).
func MaxPool2(x []float32, h, w, c int, y []float32, arg []uint8) {
	n := len(x) / (h * w * c)
	if useNative && n > 0 {
		size := n * (h / 2) * (w / 2) * c
		nativeMaxPool2(x[:n*h*w*c], n, h, w, c, y[:size], arg[:size])
		return
	}
	oh, ow := h/2, w/2
	out := 0
	for img := range n {
		for oy := range oh {
			for ox := range ow {
				a := ((img*h+2*oy)*w + 2*ox) * c
				b, cc := a+c, a+w*c
				d := cc + c
				xa, xb, xc, xd := x[a:a+c], x[b:b+c:b+c], x[cc:cc+c:cc+c], x[d:d+c:d+c]
				ys, as := y[out:out+c:out+c], arg[out:out+c:out+c]
				for ch, va := range xa {
					vb, vc, vd := xb[ch], xc[ch], xd[ch]
					m := maxf(maxf(va, vb), maxf(vc, vd))
					k := uint8(3)
					if vc == m {
						k = 2
					}
					if vb == m {
						k = 1
					}
					if va == m {
						k = 0
					}
					ys[ch], as[ch] = m, k
				}
				out += c
			}
		}
	}
}

// maxf is a > b ? a : b (the second when either is NaN).
func maxf(a, b float32) float32 {
	if a > b {
		return a
	}
	return b
}

// MaxPool2Grad is MaxPool2's backward pass: it sets dx (the pooling
// input's shape, h×w×c per image) to dy at each window's recorded maximum
// and to zero everywhere else, in one pass.
func MaxPool2Grad(dy []float32, arg []uint8, h, w, c int, dx []float32) {
	n := len(dx) / (h * w * c)
	if useNative && n > 0 {
		size := n * (h / 2) * (w / 2) * c
		nativeMaxPool2Grad(dy[:size], arg[:size], n, h, w, c, dx[:n*h*w*c])
		return
	}
	oh, ow := h/2, w/2
	if h%2 != 0 || w%2 != 0 {
		clear(dx) // the dropped last row or column gets no gradient
	}
	out := 0
	for img := range n {
		for oy := range oh {
			for ox := range ow {
				a := ((img*h+2*oy)*w + 2*ox) * c
				b, cc := a+c, a+w*c
				d := cc + c
				da, db, dc, dd := dx[a:a+c], dx[b:b+c:b+c], dx[cc:cc+c:cc+c], dx[d:d+c:d+c]
				gs, as := dy[out:out+c:out+c], arg[out:out+c:out+c]
				for ch := range da {
					g, k := gs[ch], as[ch]
					da[ch], db[ch], dc[ch], dd[ch] = pick(k == 0, g), pick(k == 1, g), pick(k == 2, g), pick(k == 3, g)
				}
				out += c
			}
		}
	}
}

// pick is g if ok, else 0.
func pick(ok bool, g float32) float32 {
	if ok {
		return g
	}
	return 0
}

// Conv1 is a k×k valid convolution of single-channel images x (n images
// H×W; g.C must be 1) computed directly, without a patch matrix: z (n ×
// OH×OW×F) gets, per output pixel, the sum over the k*k taps in order of
// pixel times kernel row. A patch matrix of one channel is only k*k
// columns wide, a shape on which matrix products run at a third of their
// speed.
func Conv1(g ConvGeom, x, w, z []float32) {
	n := len(x) / g.InSize()
	if useNative && n > 0 {
		nativeConv1(g, x[:n*g.InSize()], w[:g.Cols()*g.F], z[:n*g.OutSize()], n)
		return
	}
	oh, ow, f := g.OH(), g.OW(), g.F
	for img := range n {
		xi := x[img*g.H*g.W : (img+1)*g.H*g.W]
		for oy := range oh {
			for ox := range ow {
				out := z[((img*oh+oy)*ow+ox)*f:][:f]
				clear(out)
				for ky := range g.K {
					for kx := range g.K {
						xv := xi[(oy+ky)*g.W+ox+kx]
						wr := w[(ky*g.K+kx)*f:][:f]
						for j, wv := range wr {
							out[j] += xv * wv
						}
					}
				}
			}
		}
	}
}

// Conv1WeightGrad sets dw (k*k × F) to the gradient of Conv1's kernel:
// the sum over the output pixels, in order, of each tap's input pixel
// times the output gradient dz.
func Conv1WeightGrad(g ConvGeom, x, dz, dw []float32) {
	n := len(x) / g.InSize()
	clear(dw)
	if useNative && n > 0 {
		nativeConv1WeightGrad(g, x[:n*g.InSize()], dz[:n*g.OutSize()], dw[:g.Cols()*g.F], n)
		return
	}
	oh, ow, f := g.OH(), g.OW(), g.F
	for img := range n {
		xi := x[img*g.H*g.W : (img+1)*g.H*g.W]
		for oy := range oh {
			for ox := range ow {
				d := dz[((img*oh+oy)*ow+ox)*f:][:f]
				for ky := range g.K {
					for kx := range g.K {
						xv := xi[(oy+ky)*g.W+ox+kx]
						wr := dw[(ky*g.K+kx)*f:][:f]
						for j, dv := range d {
							wr[j] += xv * dv
						}
					}
				}
			}
		}
	}
}
