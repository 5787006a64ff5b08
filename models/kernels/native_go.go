//go:build !openblas

package kernels

// native says the C kernels are compiled in: not in this (pure-Go) build.
const native = false

// The C kernels' stand-ins; never called, since native is false.
func nativeAdam(w, g, m, v []float32, alpha, c1, c2, eps float32)           { panic("no C kernels") }
func nativeNadam(w, g, m, v []float32, lr, cm, cg, cv, c1, c2, eps float32) { panic("no C kernels") }
func nativeRMSprop(w, g, v []float32, lr, rho, c, eps float32)              { panic("no C kernels") }
func nativeSGD(w, g []float32, lr float32)                                  { panic("no C kernels") }
func nativeMomentum(w, g, v []float32, lr, mom float32)                     { panic("no C kernels") }
func nativeScale(dst []float32, src []uint8)                                { panic("no C kernels") }
func nativeBiasAct(y, b []float32, act Act)                                 { panic("no C kernels") }
func nativeActGrad(y, dy, dz []float32, act Act)                            { panic("no C kernels") }
func nativeAddColSum(dst, g []float32)                                      { panic("no C kernels") }
func nativeAdd(dst, src []float32)                                          { panic("no C kernels") }
func nativeMul(dst, x, m []float32)                                         { panic("no C kernels") }
func nativeMaxPool2(x []float32, n, h, w, c int, y []float32, arg []uint8)  { panic("no C kernels") }
func nativeCol2im(g ConvGeom, dcol, dx []float32, n int)                    { panic("no C kernels") }
func nativeMaxPool2Grad(dy []float32, arg []uint8, n, h, w, c int, dx []float32) {
	panic("no C kernels")
}
func nativeIm2col(g ConvGeom, x, col []float32, n int) { panic("no C kernels") }
func nativeDropoutMask(mask []float32, threshold uint64, scale float32, r *PCG) {
	panic("no C kernels")
}
func nativeConv1(g ConvGeom, x, w, z []float32, n int)             { panic("no C kernels") }
func nativeConv1WeightGrad(g ConvGeom, x, dz, dw []float32, n int) { panic("no C kernels") }
