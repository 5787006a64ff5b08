//go:build openblas

package kernels

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include <stdint.h>
#include <string.h>
#include <math.h>

// The elementwise kernels in C, compiled for AVX2 and for plain x86-64
// (gcc picks the version the CPU runs at load time). Each does exactly the
// arithmetic of its Go twin, operation by operation and rounded to float
// after each (no contraction into FMA, no reassociation), so results are
// bitwise the same; gcc's vectorizer makes them several times faster.
// Never fuse a*b+c into an FMA (the AVX2 clones have no FMA anyway).
#pragma GCC optimize("fp-contract=off", "no-math-errno")
#if defined(__x86_64__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

typedef union { float f; int32_t i; } fbits;

// v8 is eight floats, with no alignment beyond a float's.
typedef float v8 __attribute__((vector_size(32), aligned(4)));
// fm_exp is exp32 for x in [-87, 88] (the callers clamp).
static inline float fm_exp(float x) {
	const float log2e = 1.44269504088896341f, c1 = 0.693359375f, c2 = -2.12194440e-4f, round = 12582912.0f;
	float fn = x * log2e + round;
	float n = fn - round;
	fbits a = {.f = fn}, b = {.f = round}, s;
	float r = x - n * c1 - n * c2;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1;
	s.i = (a.i - b.i + 127) << 23;
	return p * s.f;
}

// The optimizers divide by square roots: gcc does not vectorize sqrtf
// (it keeps errno), so their AVX2 versions are written with intrinsics.
// _mm256_sqrt_ps and _mm256_div_ps round like sqrtf and '/'.
static int fm_avx2(void) {
#if defined(__x86_64__)
	static int has = -1;
	if (has < 0) {
		__builtin_cpu_init();
		has = __builtin_cpu_supports("avx2") != 0;
	}
	return has;
#else
	return 0;
#endif
}

#if defined(__x86_64__)
#include <immintrin.h>
#define V8 __m256
#define LD(p) _mm256_loadu_ps(p)
#define ST(p, v) _mm256_storeu_ps(p, v)
#define SET(x) _mm256_set1_ps(x)
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps
#define SQRT _mm256_sqrt_ps

__attribute__((target("avx2"))) static long adam8(float *w, const float *g, float *m, float *v, long n,
	float alpha, float c1, float c2, float eps) {
	long j = 0;
	V8 a = SET(alpha), k1 = SET(c1), k2 = SET(c2), e = SET(eps);
	for (; j + 8 <= n; j += 8) {
		V8 gj = LD(g + j), mj = LD(m + j), vj = LD(v + j);
		mj = ADD(mj, MUL(SUB(gj, mj), k1));
		vj = ADD(vj, MUL(SUB(MUL(gj, gj), vj), k2));
		ST(m + j, mj);
		ST(v + j, vj);
		ST(w + j, SUB(LD(w + j), DIV(MUL(a, mj), ADD(SQRT(vj), e))));
	}
	return j;
}

__attribute__((target("avx2"))) static long nadam8(float *w, const float *g, float *m, float *v, long n,
	float lr, float cm, float cg, float cv, float c1, float c2, float eps) {
	long j = 0;
	V8 l = SET(lr), km = SET(cm), kg = SET(cg), kv = SET(cv), k1 = SET(c1), k2 = SET(c2), e = SET(eps);
	for (; j + 8 <= n; j += 8) {
		V8 gj = LD(g + j), mj = LD(m + j), vj = LD(v + j);
		mj = ADD(mj, MUL(SUB(gj, mj), k1));
		vj = ADD(vj, MUL(SUB(MUL(gj, gj), vj), k2));
		ST(m + j, mj);
		ST(v + j, vj);
		V8 mhat = ADD(MUL(km, mj), MUL(kg, gj));
		ST(w + j, SUB(LD(w + j), DIV(MUL(l, mhat), ADD(SQRT(MUL(vj, kv)), e))));
	}
	return j;
}

__attribute__((target("avx2"))) static long rmsprop8(float *w, const float *g, float *v, long n, float lr, float rho, float c, float eps) {
	long j = 0;
	V8 l = SET(lr), r = SET(rho), k = SET(c), e = SET(eps);
	for (; j + 8 <= n; j += 8) {
		V8 gj = LD(g + j);
		V8 vj = ADD(MUL(r, LD(v + j)), MUL(MUL(k, gj), gj));
		ST(v + j, vj);
		ST(w + j, SUB(LD(w + j), DIV(MUL(l, gj), SQRT(ADD(vj, e)))));
	}
	return j;
}
// sigmoid8 is fm_bias_act's sigmoid (clamp, fm_exp, 1/(1+e)) on
// y[j] + b[j], eight at a time; a NaN stays NaN.
__attribute__((target("avx2"))) static long sigmoid8(float *y, const float *b, long n) {
	long j = 0;
	const V8 lo = SET(-87), hi = SET(87), log2e = SET(1.44269504088896341f), c1 = SET(0.693359375f),
		c2 = SET(-2.12194440e-4f), round = SET(12582912.0f), one = SET(1);
	const __m256i roundBits = _mm256_castps_si256(round), bias = _mm256_set1_epi32(127);
	for (; j + 8 <= n; j += 8) {
		V8 x = ADD(LD(y + j), LD(b + j));
		x = _mm256_blendv_ps(x, lo, _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
		x = _mm256_blendv_ps(x, hi, _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
		x = _mm256_xor_ps(x, SET(-0.0f)); // -x
		V8 fn = ADD(MUL(x, log2e), round);
		V8 nn = SUB(fn, round);
		V8 r = SUB(SUB(x, MUL(nn, c1)), MUL(nn, c2));
		V8 p = SET(1.9875691500e-4f);
		p = ADD(MUL(p, r), SET(1.3981999507e-3f));
		p = ADD(MUL(p, r), SET(8.3334519073e-3f));
		p = ADD(MUL(p, r), SET(4.1665795894e-2f));
		p = ADD(MUL(p, r), SET(1.6666665459e-1f));
		p = ADD(MUL(p, r), SET(5.0000001201e-1f));
		p = ADD(ADD(MUL(MUL(p, r), r), r), one);
		__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(fn), roundBits), bias), 23);
		ST(y + j, DIV(one, ADD(one, MUL(p, _mm256_castsi256_ps(e)))));
	}
	return j;
}
#else
static long sigmoid8(float *y, const float *b, long n) { return 0; }
static long adam8(float *w, const float *g, float *m, float *v, long n, float alpha, float c1, float c2, float eps) { return 0; }
static long nadam8(float *w, const float *g, float *m, float *v, long n, float lr, float cm, float cg, float cv, float c1, float c2, float eps) { return 0; }
static long rmsprop8(float *w, const float *g, float *v, long n, float lr, float rho, float c, float eps) { return 0; }
#endif

void fm_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
	float alpha, float c1, float c2, float eps) {
	long j = fm_avx2() ? adam8(w, g, m, v, n, alpha, c1, c2, eps) : 0;
	for (; j < n; j++) {
		float gj = g[j];
		float mj = m[j] + (gj - m[j]) * c1;
		float vj = v[j] + (gj * gj - v[j]) * c2;
		m[j] = mj;
		v[j] = vj;
		w[j] = w[j] - alpha * mj / (sqrtf(vj) + eps);
	}
}

void fm_nadam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, long n,
	float lr, float cm, float cg, float cv, float c1, float c2, float eps) {
	long j = fm_avx2() ? nadam8(w, g, m, v, n, lr, cm, cg, cv, c1, c2, eps) : 0;
	for (; j < n; j++) {
		float gj = g[j];
		float mj = m[j] + (gj - m[j]) * c1;
		float vj = v[j] + (gj * gj - v[j]) * c2;
		m[j] = mj;
		v[j] = vj;
		float mhat = cm * mj + cg * gj;
		w[j] = w[j] - lr * mhat / (sqrtf(vj * cv) + eps);
	}
}

void fm_rmsprop(float *restrict w, const float *restrict g, float *restrict v, long n, float lr, float rho, float c, float eps) {
	long j = fm_avx2() ? rmsprop8(w, g, v, n, lr, rho, c, eps) : 0;
	for (; j < n; j++) {
		float gj = g[j];
		float vj = rho * v[j] + c * gj * gj;
		v[j] = vj;
		w[j] = w[j] - lr * gj / sqrtf(vj + eps);
	}
}

CLONES void fm_sgd(float *restrict w, const float *restrict g, long n, float lr) {
	for (long j = 0; j < n; j++) w[j] = w[j] - lr * g[j];
}

CLONES void fm_momentum(float *restrict w, const float *restrict g, float *restrict v, long n, float lr, float mom) {
	for (long j = 0; j < n; j++) {
		float vj = mom * v[j] - lr * g[j];
		v[j] = vj;
		w[j] = w[j] + vj;
	}
}

CLONES void fm_scale(float *restrict dst, const uint8_t *restrict src, long n) {
	for (long i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f;
}

// act: 0 linear, 1 relu, 2 sigmoid.
CLONES void fm_bias_act(float *restrict y, const float *restrict b, long rows, long cols, int act) {
	for (long r = 0; r < rows; r++) {
		float *restrict row = y + r * cols;
		if (act == 1) {
			for (long j = 0; j < cols; j++) {
				float x = row[j] + b[j];
				row[j] = (x != x) ? x : (x > 0 ? x : 0);
			}
		} else if (act == 2) {
			for (long j = fm_avx2() ? sigmoid8(row, b, cols) : 0; j < cols; j++) { // a NaN stays NaN
				float x = row[j] + b[j];
				x = x < -87 ? -87 : (x > 87 ? 87 : x);
				row[j] = 1 / (1 + fm_exp(-x));
			}
		} else {
			for (long j = 0; j < cols; j++) row[j] = row[j] + b[j];
		}
	}
}

CLONES void fm_act_grad(const float *restrict y, const float *restrict dy, float *restrict dz, long n, int act) {
	if (act == 1) {
		for (long i = 0; i < n; i++) dz[i] = y[i] > 0 ? dy[i] : 0;
	} else if (act == 2) {
		for (long i = 0; i < n; i++) dz[i] = dy[i] * y[i] * (1 - y[i]);
	} else {
		memmove(dz, dy, n * sizeof(float));
	}
}

CLONES void fm_add_col_sum(float *restrict dst, const float *restrict g, long rows, long cols) {
	for (long r = 0; r < rows; r++)
		for (long j = 0; j < cols; j++) dst[j] = dst[j] + g[r * cols + j];
}

CLONES void fm_add(float *restrict dst, const float *restrict src, long n) {
	for (long i = 0; i < n; i++) dst[i] = dst[i] + src[i];
}

CLONES void fm_mul(float *restrict dst, const float *restrict x, const float *restrict m, long n) {
	for (long i = 0; i < n; i++) dst[i] = x[i] * m[i];
}

CLONES void fm_maxpool2(const float *restrict x, long n, long h, long w, long c, float *restrict y, uint8_t *restrict arg) {
	long oh = h / 2, ow = w / 2, out = 0;
	for (long img = 0; img < n; img++)
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++) {
				const float *restrict xa = x + ((img * h + 2 * oy) * w + 2 * ox) * c;
				const float *restrict xb = xa + c, *restrict xc = xa + w * c, *restrict xd = xa + w * c + c;
				float *restrict ys = y + out;
				uint8_t *restrict as = arg + out;
				for (long ch = 0; ch < c; ch++) {
					float va = xa[ch], vb = xb[ch], vc = xc[ch], vd = xd[ch];
					float m1 = va > vb ? va : vb, m2 = vc > vd ? vc : vd;
					float m = m1 > m2 ? m1 : m2;
					uint8_t k = 3;
					k = vc == m ? 2 : k;
					k = vb == m ? 1 : k;
					k = va == m ? 0 : k;
					ys[ch] = m;
					as[ch] = k;
				}
				out += c;
			}
}

CLONES void fm_maxpool2_grad(const float *restrict dy, const uint8_t *restrict arg, long n, long h, long w, long c, float *restrict dx) {
	long oh = h / 2, ow = w / 2, out = 0;
	if (h % 2 != 0 || w % 2 != 0) memset(dx, 0, n * h * w * c * sizeof(float));
	for (long img = 0; img < n; img++)
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++) {
				float *restrict da = dx + ((img * h + 2 * oy) * w + 2 * ox) * c;
				float *restrict db = da + c, *restrict dc = da + w * c, *restrict dd = da + w * c + c;
				const float *restrict gs = dy + out;
				const uint8_t *restrict as = arg + out;
				for (long ch = 0; ch < c; ch++) {
					float g = gs[ch];
					uint8_t k = as[ch];
					da[ch] = k == 0 ? g : 0;
					db[ch] = k == 1 ? g : 0;
					dc[ch] = k == 2 ? g : 0;
					dd[ch] = k == 3 ? g : 0;
				}
				out += c;
			}
}

CLONES void fm_im2col(const float *restrict x, float *restrict col, long n, long h, long w, long c, long k) {
	long oh = h - k + 1, ow = w - k + 1, kc = k * c, row = 0;
	for (long img = 0; img < n; img++)
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++)
				for (long ky = 0; ky < k; ky++) {
					const float *restrict src = x + ((img * h + oy + ky) * w + ox) * c;
					for (long i = 0; i < kc; i++) col[row + i] = src[i];
					row += kc;
				}
}

// fm_dropout_mask is DropoutMask with kernels.PCG's generator.
void fm_dropout_mask(float *restrict mask, long n, uint64_t threshold, float scale, uint64_t *restrict state) {
	const unsigned __int128 mul = ((unsigned __int128)2549297995355413924ULL << 64) | 4865540595714422341ULL;
	const unsigned __int128 inc = ((unsigned __int128)6364136223846793005ULL << 64) | 1442695040888963407ULL;
	unsigned __int128 s = ((unsigned __int128)state[0] << 64) | state[1];
	for (long i = 0; i < n; i++) {
		s = s * mul + inc;
		uint64_t hi = (uint64_t)(s >> 64), lo = (uint64_t)s;
		hi ^= hi >> 32;
		hi *= 0xda942042e4dd58b5ULL;
		hi ^= hi >> 48;
		hi *= lo | 1;
		mask[i] = (hi >> 11) < threshold ? 0 : scale;
	}
	state[0] = (uint64_t)(s >> 64);
	state[1] = (uint64_t)s;
}

// fm_conv1 and fm_conv1_wgrad keep the F (= 32) sums of a pixel, or of
// a kernel tap, in registers instead of memory: the same additions in the
// same order.
CLONES void fm_conv1(const float *restrict x, const float *restrict w, float *restrict z, long n, long h, long wd, long k, long f) {
	long oh = h - k + 1, ow = wd - k + 1;
	for (long img = 0; img < n; img++) {
		const float *restrict xi = x + img * h * wd;
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++) {
				float *restrict out = z + ((img * oh + oy) * ow + ox) * f;
				if (f == 32) {
					v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
					for (long ky = 0; ky < k; ky++)
						for (long kx = 0; kx < k; kx++) {
							float xv = xi[(oy + ky) * wd + ox + kx];
							const v8 *wr = (const v8 *)(w + (ky * k + kx) * 32);
							a0 = a0 + xv * wr[0];
							a1 = a1 + xv * wr[1];
							a2 = a2 + xv * wr[2];
							a3 = a3 + xv * wr[3];
						}
					v8 *o = (v8 *)out;
					o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3;
					continue;
				}
				for (long j = 0; j < f; j++) out[j] = 0;
				for (long ky = 0; ky < k; ky++)
					for (long kx = 0; kx < k; kx++) {
						float xv = xi[(oy + ky) * wd + ox + kx];
						const float *restrict wr = w + (ky * k + kx) * f;
						for (long j = 0; j < f; j++) out[j] = out[j] + xv * wr[j];
					}
			}
	}
}

CLONES void fm_conv1_wgrad(const float *restrict x, const float *restrict dz, float *restrict dw, long n, long h, long wd, long k, long f) {
	long oh = h - k + 1, ow = wd - k + 1;
	if (f == 32) {
		for (long ky = 0; ky < k; ky++)
			for (long kx = 0; kx < k; kx++) {
				v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
				for (long img = 0; img < n; img++) {
					const float *restrict xi = x + img * h * wd;
					for (long oy = 0; oy < oh; oy++)
						for (long ox = 0; ox < ow; ox++) {
							float xv = xi[(oy + ky) * wd + ox + kx];
							const v8 *d = (const v8 *)(dz + ((img * oh + oy) * ow + ox) * 32);
							a0 = a0 + xv * d[0];
							a1 = a1 + xv * d[1];
							a2 = a2 + xv * d[2];
							a3 = a3 + xv * d[3];
						}
				}
				v8 *o = (v8 *)(dw + (ky * k + kx) * 32);
				o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3;
			}
		return;
	}
	for (long img = 0; img < n; img++) {
		const float *restrict xi = x + img * h * wd;
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++) {
				const float *restrict d = dz + ((img * oh + oy) * ow + ox) * f;
				for (long ky = 0; ky < k; ky++)
					for (long kx = 0; kx < k; kx++) {
						float xv = xi[(oy + ky) * wd + ox + kx];
						float *restrict wr = dw + (ky * k + kx) * f;
						for (long j = 0; j < f; j++) wr[j] = wr[j] + xv * d[j];
					}
			}
	}
}

CLONES void fm_col2im(const float *restrict dcol, float *restrict dx, long n, long h, long w, long c, long k) {
	long oh = h - k + 1, ow = w - k + 1, kc = k * c, row = 0;
	memset(dx, 0, n * h * w * c * sizeof(float));
	for (long img = 0; img < n; img++)
		for (long oy = 0; oy < oh; oy++)
			for (long ox = 0; ox < ow; ox++)
				for (long ky = 0; ky < k; ky++) {
					float *restrict dst = dx + ((img * h + oy + ky) * w + ox) * c;
					const float *restrict src = dcol + row;
					for (long i = 0; i < kc; i++) dst[i] = dst[i] + src[i];
					row += kc;
				}
}
*/
import "C"

import "unsafe"

// native says the C kernels are compiled in (the openblas build).
const native = true

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(unsafe.SliceData(s))) }

func nativeAdam(w, g, m, v []float32, alpha, c1, c2, eps float32) {
	C.fm_adam(fp(w), fp(g), fp(m), fp(v), C.long(len(w)), C.float(alpha), C.float(c1), C.float(c2), C.float(eps))
}

func nativeNadam(w, g, m, v []float32, lr, cm, cg, cv, c1, c2, eps float32) {
	C.fm_nadam(fp(w), fp(g), fp(m), fp(v), C.long(len(w)), C.float(lr), C.float(cm), C.float(cg), C.float(cv),
		C.float(c1), C.float(c2), C.float(eps))
}

func nativeRMSprop(w, g, v []float32, lr, rho, c, eps float32) {
	C.fm_rmsprop(fp(w), fp(g), fp(v), C.long(len(w)), C.float(lr), C.float(rho), C.float(c), C.float(eps))
}

func nativeSGD(w, g []float32, lr float32) { C.fm_sgd(fp(w), fp(g), C.long(len(w)), C.float(lr)) }

func nativeMomentum(w, g, v []float32, lr, mom float32) {
	C.fm_momentum(fp(w), fp(g), fp(v), C.long(len(w)), C.float(lr), C.float(mom))
}

func nativeScale(dst []float32, src []uint8) {
	C.fm_scale(fp(dst), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(src))), C.long(len(src)))
}

func nativeBiasAct(y, b []float32, act Act) {
	C.fm_bias_act(fp(y), fp(b), C.long(len(y)/len(b)), C.long(len(b)), C.int(act))
}

func nativeActGrad(y, dy, dz []float32, act Act) {
	C.fm_act_grad(fp(y), fp(dy), fp(dz), C.long(len(y)), C.int(act))
}

func nativeAddColSum(dst, g []float32) {
	C.fm_add_col_sum(fp(dst), fp(g), C.long(len(g)/len(dst)), C.long(len(dst)))
}

func nativeAdd(dst, src []float32) { C.fm_add(fp(dst), fp(src), C.long(len(dst))) }

func nativeMul(dst, x, m []float32) { C.fm_mul(fp(dst), fp(x), fp(m), C.long(len(dst))) }

func nativeMaxPool2(x []float32, n, h, w, c int, y []float32, arg []uint8) {
	C.fm_maxpool2(fp(x), C.long(n), C.long(h), C.long(w), C.long(c), fp(y), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(arg))))
}

func nativeCol2im(g ConvGeom, dcol, dx []float32, n int) {
	C.fm_col2im(fp(dcol), fp(dx), C.long(n), C.long(g.H), C.long(g.W), C.long(g.C), C.long(g.K))
}

func nativeMaxPool2Grad(dy []float32, arg []uint8, n, h, w, c int, dx []float32) {
	C.fm_maxpool2_grad(fp(dy), (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(arg))), C.long(n), C.long(h), C.long(w), C.long(c), fp(dx))
}

func nativeIm2col(g ConvGeom, x, col []float32, n int) {
	C.fm_im2col(fp(x), fp(col), C.long(n), C.long(g.H), C.long(g.W), C.long(g.C), C.long(g.K))
}

// nativeDropoutMask draws from r's state in place (hi then lo: the C
// function's state[0] and state[1]).
func nativeDropoutMask(mask []float32, threshold uint64, scale float32, r *PCG) {
	C.fm_dropout_mask(fp(mask), C.long(len(mask)), C.uint64_t(threshold), C.float(scale), (*C.uint64_t)(unsafe.Pointer(r)))
}

func nativeConv1(g ConvGeom, x, w, z []float32, n int) {
	C.fm_conv1(fp(x), fp(w), fp(z), C.long(n), C.long(g.H), C.long(g.W), C.long(g.K), C.long(g.F))
}

func nativeConv1WeightGrad(g ConvGeom, x, dz, dw []float32, n int) {
	C.fm_conv1_wgrad(fp(x), fp(dz), fp(dw), C.long(n), C.long(g.H), C.long(g.W), C.long(g.K), C.long(g.F))
}
