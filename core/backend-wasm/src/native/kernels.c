// SIMD kernels for the tfjs wasm backend: Winograd F(4x4, 3x3) convolution (forward, backprop
// input, backprop filter) and a register-blocked SGEMM.
//
// This module runs inside the linear memory of @tensorflow/tfjs-backend-wasm (it imports that
// module's memory), so it reads and writes tensors in place at their heap offsets. It has no data
// segment and no libc; its shadow stack is a block the loader mallocs from the tfjs heap.
// Rebuild with ./build.sh (clang >= 16 with the wasm32 target and wasm-ld).
#include <wasm_simd128.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define INLINE static inline __attribute__((always_inline))

typedef v128_t f4;

INLINE f4 ld(const float *p) { return wasm_v128_load(p); }
INLINE void st(float *p, f4 v) { wasm_v128_store(p, v); }
INLINE f4 add(f4 a, f4 b) { return wasm_f32x4_add(a, b); }
INLINE f4 sub(f4 a, f4 b) { return wasm_f32x4_sub(a, b); }
INLINE f4 mul(f4 a, f4 b) { return wasm_f32x4_mul(a, b); }
INLINE f4 mulc(f4 a, float c) { return wasm_f32x4_mul(a, wasm_f32x4_splat(c)); }
INLINE f4 zero(void) { return wasm_f32x4_splat(0.f); }
// a * b + c: one fused instruction where relaxed SIMD is on (the build's -mrelaxed-simd variant).
#ifdef __wasm_relaxed_simd__
INLINE f4 madd(f4 a, f4 b, f4 c) { return __builtin_wasm_relaxed_madd_f32x4(a, b, c); }
#else
INLINE f4 madd(f4 a, f4 b, f4 c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }
#endif

// Loads n (< 4) floats, zero-filling the rest; stores n floats.
INLINE f4 ld_n(const float *p, int n) {
  float a = p[0], b = n > 1 ? p[1] : 0.f, c = n > 2 ? p[2] : 0.f;
  return wasm_f32x4_make(a, b, c, 0.f);
}
INLINE void st_n(float *p, f4 v, int n) {
  p[0] = wasm_f32x4_extract_lane(v, 0);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2);
}
INLINE f4 ld_c(const float *p, int n) { return n >= 4 ? ld(p) : ld_n(p, n); }
INLINE void st_c(float *p, f4 v, int n) { if (n >= 4) st(p, v); else st_n(p, v, n); }

// ---------------------------------------------------------------------------------------------
// Winograd F(4x4, 3x3) transforms (Lavin & Gray 2015). Each 1-D transform works on 4 channels.
// Input:  V = B^T d B (6x6 from a 6x6 input tile)
// Filter: U = G g G^T (6x6 from a 3x3 filter)
// Output: Y = A^T M A (4x4 from a 6x6 product)
// Output gradient (backprop filter): Z = A y A^T (6x6 from a 4x4 output-gradient tile)
// Filter gradient: dg = G^T dU G (3x3 from 6x6)

INLINE void bt6(const f4 d[6], f4 r[6]) {
  f4 four = wasm_f32x4_splat(4.f);
  f4 t1 = sub(d[4], mul(four, d[2]));  // d4 - 4 d2
  f4 t2 = sub(d[3], mul(four, d[1]));  // d3 - 4 d1
  f4 t3 = sub(d[4], d[2]);
  f4 t4 = mulc(sub(d[3], d[1]), 2.f);
  r[0] = add(sub(mul(four, d[0]), mulc(d[2], 5.f)), d[4]);
  r[1] = add(t1, t2);
  r[2] = sub(t1, t2);
  r[3] = add(t3, t4);
  r[4] = sub(t3, t4);
  r[5] = add(sub(mul(four, d[1]), mulc(d[3], 5.f)), d[5]);
}

INLINE void g3(const f4 g[3], f4 r[6]) {
  f4 a = add(g[0], g[2]);
  r[0] = mulc(g[0], 0.25f);
  r[1] = mulc(add(a, g[1]), -1.f / 6.f);
  r[2] = mulc(sub(a, g[1]), -1.f / 6.f);
  f4 b = add(mulc(g[0], 1.f / 24.f), mulc(g[2], 1.f / 6.f));
  f4 c = mulc(g[1], 1.f / 12.f);
  r[3] = add(b, c);
  r[4] = sub(b, c);
  r[5] = g[2];
}

INLINE void at6(const f4 m[6], f4 r[4]) {
  f4 s12 = add(m[1], m[2]), d12 = sub(m[1], m[2]);
  f4 s34 = add(m[3], m[4]), d34 = sub(m[3], m[4]);
  r[0] = add(add(m[0], s12), s34);
  r[1] = add(d12, mulc(d34, 2.f));
  r[2] = add(s12, mulc(s34, 4.f));
  r[3] = add(add(d12, mulc(d34, 8.f)), m[5]);
}

INLINE void a4(const f4 y[4], f4 r[6]) {
  f4 s02 = add(y[0], mulc(y[2], 1.f)), s13 = add(y[1], y[3]);
  f4 t02 = add(y[0], mulc(y[2], 4.f)), t13 = add(mulc(y[1], 2.f), mulc(y[3], 8.f));
  r[0] = y[0];
  r[1] = add(s02, s13);
  r[2] = sub(s02, s13);
  r[3] = add(t02, t13);
  r[4] = sub(t02, t13);
  r[5] = y[3];
}

INLINE void gt6(const f4 u[6], f4 r[3]) {
  f4 s12 = add(u[1], u[2]), d12 = sub(u[2], u[1]);
  f4 s34 = add(u[3], u[4]), d34 = sub(u[3], u[4]);
  r[0] = add(sub(mulc(u[0], 0.25f), mulc(s12, 1.f / 6.f)), mulc(s34, 1.f / 24.f));
  r[1] = add(mulc(d12, 1.f / 6.f), mulc(d34, 1.f / 12.f));
  r[2] = add(add(mulc(s34, 1.f / 6.f), mulc(s12, -1.f / 6.f)), u[5]);
}

// Every [36][rows][cols] buffer has a plane stride ps >= rows * cols, given by the caller: padding
// it off a power of two keeps the 36 planes that a tile touches out of the same cache sets.

// x: NHWC [N,H,W,C]. V: [36][T][C], T = N*tilesH*tilesW, tile (th,tw) reads rows th*4-padT..+5.
EXPORT(wino_input)
void wino_input(const float *x, float *V, int N, int H, int W, int C, int padT, int padL,
                int tilesH, int tilesW, int ps) {
  const long pstride = ps;
  int t = 0;
  for (int n = 0; n < N; n++) {
    const float *xn = x + (long)n * H * W * C;
    for (int th = 0; th < tilesH; th++) {
      const int r0 = th * 4 - padT;
      for (int tw = 0; tw < tilesW; tw++, t++) {
        const int c0 = tw * 4 - padL;
        int rv[6], cv[6];
        int interior = r0 >= 0 && r0 + 6 <= H && c0 >= 0 && c0 + 6 <= W;
        for (int i = 0; i < 6; i++) {
          rv[i] = r0 + i >= 0 && r0 + i < H;
          cv[i] = c0 + i >= 0 && c0 + i < W;
        }
        float *vt = V + (long)t * C;
        for (int c = 0; c < C; c += 4) {
          const int nc = C - c;
          f4 d[6][6], tmp[6][6];
          if (interior && nc >= 4) {
            for (int i = 0; i < 6; i++)
              for (int j = 0; j < 6; j++) d[i][j] = ld(xn + ((long)(r0 + i) * W + c0 + j) * C + c);
          } else {
            for (int i = 0; i < 6; i++)
              for (int j = 0; j < 6; j++)
                d[i][j] = rv[i] && cv[j] ? ld_c(xn + ((long)(r0 + i) * W + c0 + j) * C + c, nc) : zero();
          }
          // columns: tmp[.][j] = B^T d[.][j]
          for (int j = 0; j < 6; j++) {
            f4 col[6], out[6];
            for (int i = 0; i < 6; i++) col[i] = d[i][j];
            bt6(col, out);
            for (int i = 0; i < 6; i++) tmp[i][j] = out[i];
          }
          for (int i = 0; i < 6; i++) {
            f4 out[6];
            bt6(tmp[i], out);
            for (int j = 0; j < 6; j++) st_c(vt + (i * 6 + j) * pstride + c, out[j], nc);
          }
        }
      }
    }
  }
}

// M: [36][T][K] -> y NHWC [N,OH,OW,K]. bias (may be 0) is added; relu != 0 clamps at 0.
EXPORT(wino_output)
void wino_output(const float *M, float *y, int N, int OH, int OW, int K, int tilesH, int tilesW,
                 const float *bias, int relu, int ps) {
  const long pstride = ps;
  int t = 0;
  for (int n = 0; n < N; n++) {
    float *yn = y + (long)n * OH * OW * K;
    for (int th = 0; th < tilesH; th++) {
      const int r0 = th * 4;
      const int nr = OH - r0 < 4 ? OH - r0 : 4;
      for (int tw = 0; tw < tilesW; tw++, t++) {
        const int c0 = tw * 4;
        const int ncol = OW - c0 < 4 ? OW - c0 : 4;
        const float *mt = M + (long)t * K;
        for (int k = 0; k < K; k += 4) {
          const int nk = K - k;
          f4 tmp[4][6];
          for (int j = 0; j < 6; j++) {
            f4 col[6], out[4];
            for (int i = 0; i < 6; i++) col[i] = ld_c(mt + (i * 6 + j) * pstride + k, nk);
            at6(col, out);
            for (int i = 0; i < 4; i++) tmp[i][j] = out[i];
          }
          f4 b = bias ? ld_c(bias + k, nk) : zero();
          for (int i = 0; i < nr; i++) {
            f4 out[4];
            at6(tmp[i], out);
            float *row = yn + ((long)(r0 + i) * OW + c0) * K + k;
            for (int j = 0; j < ncol; j++) {
              f4 v = add(out[j], b);
              if (relu) v = wasm_f32x4_max(v, zero());
              st_c(row + (long)j * K, v, nk);
            }
          }
        }
      }
    }
  }
}

// dy NHWC [N,OH,OW,K] -> Z: [36][T][K], Z = A y A^T per 4x4 tile (zero beyond OH, OW).
EXPORT(wino_grad_output)
void wino_grad_output(const float *dy, float *Z, int N, int OH, int OW, int K, int tilesH,
                      int tilesW, int ps) {
  const long pstride = ps;
  int t = 0;
  for (int n = 0; n < N; n++) {
    const float *dyn = dy + (long)n * OH * OW * K;
    for (int th = 0; th < tilesH; th++) {
      const int r0 = th * 4;
      for (int tw = 0; tw < tilesW; tw++, t++) {
        const int c0 = tw * 4;
        float *zt = Z + (long)t * K;
        for (int k = 0; k < K; k += 4) {
          const int nk = K - k;
          f4 tmp[6][4];
          for (int j = 0; j < 4; j++) {
            f4 col[4], out[6];
            for (int i = 0; i < 4; i++)
              col[i] = r0 + i < OH && c0 + j < OW ? ld_c(dyn + ((long)(r0 + i) * OW + c0 + j) * K + k, nk)
                                                  : zero();
            a4(col, out);
            for (int i = 0; i < 6; i++) tmp[i][j] = out[i];
          }
          for (int i = 0; i < 6; i++) {
            f4 out[6];
            a4(tmp[i], out);
            for (int j = 0; j < 6; j++) st_c(zt + (i * 6 + j) * pstride + k, out[j], nk);
          }
        }
      }
    }
  }
}

// Filter g HWIO [3][3][C][K] -> U [36][C][K] (forward). With flip != 0, the filter of the
// backprop-input convolution: U [36][K][C] from g'[i][j][k][c] = g[2-i][2-j][c][k].
// Only rows [r0, r1) of each U plane (rows: C, or K with flip), so threads can share the work.
EXPORT(wino_filter)
void wino_filter(const float *g, float *U, int C, int K, int flip, int ps, int r0, int r1) {
  const int cols = flip ? C : K;
  const long pstride = ps;
  for (int r = r0; r < r1; r++) {
    for (int q = 0; q < cols; q += 4) {
      const int nq = cols - q;
      f4 gg[3][3], tmp[6][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          if (!flip) {
            gg[i][j] = ld_c(g + ((i * 3 + j) * (long)C + r) * K + q, nq);
          } else {
            const float *p = g + ((2 - i) * 3 + (2 - j)) * (long)C * K + (long)q * K + r;
            float a = p[0], b = nq > 1 ? p[K] : 0.f, c = nq > 2 ? p[2 * K] : 0.f,
                  d = nq > 3 ? p[3 * K] : 0.f;
            gg[i][j] = wasm_f32x4_make(a, b, c, d);
          }
        }
      for (int j = 0; j < 3; j++) {
        f4 col[3] = {gg[0][j], gg[1][j], gg[2][j]}, out[6];
        g3(col, out);
        for (int i = 0; i < 6; i++) tmp[i][j] = out[i];
      }
      for (int i = 0; i < 6; i++) {
        f4 out[6];
        g3(tmp[i], out);
        for (int j = 0; j < 6; j++) st_c(U + (i * 6 + j) * pstride + (long)r * cols + q, out[j], nq);
      }
    }
  }
}

// dU [36][C][K] -> dg HWIO [3][3][C][K], elements [o0, o1) of each plane (o0 a multiple of 4).
EXPORT(wino_filter_grad)
void wino_filter_grad(const float *dU, float *dg, int C, int K, int ps, int o0, int o1) {
  const long pstride = ps, n = (long)C * K;
  for (long o = o0; o < o1; o += 4) {
    const int nq = o1 - o < 4 ? (int)(o1 - o) : 4;
    f4 tmp[3][6];
    for (int j = 0; j < 6; j++) {
      f4 col[6], out[3];
      for (int i = 0; i < 6; i++) col[i] = ld_c(dU + (i * 6 + j) * pstride + o, nq);
      gt6(col, out);
      for (int i = 0; i < 3; i++) tmp[i][j] = out[i];
    }
    for (int i = 0; i < 3; i++) {
      f4 out[3];
      gt6(tmp[i], out);
      for (int j = 0; j < 3; j++) st_c(dg + (i * 3 + j) * n + o, out[j], nq);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SGEMM: for p < P: C_p (+)= A_p B_p with A_p (M x K) at A + p*aps, element (r, k) at
// r*ars + k*aks, B_p (K x N) at B + p*bps, element (k, n) at k*bks + n*bns (so transposed
// operands cost nothing), C_p row-major with leading dim ldc. B is packed per KC-block into
// panels of NR columns.
#define NR 8
#ifndef KC
#define KC 256
#endif
#ifndef NC
#define NC 512
#endif
#ifndef MR
#define MR 4
#endif

INLINE void ukernel(int mr, int kc, const float *a, long ars, long aks, const float *bp, float *c,
                    long ldc, int ncols, int load_c) {
  f4 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; r++) {
    if (r < mr && load_c && ncols == NR) {
      acc0[r] = ld(c + r * ldc);
      acc1[r] = ld(c + r * ldc + 4);
    } else {
      acc0[r] = zero();
      acc1[r] = zero();
    }
  }
  for (int k = 0; k < kc; k++) {
    f4 b0 = ld(bp), b1 = ld(bp + 4);
    bp += NR;
    for (int r = 0; r < MR; r++) {
      if (r < mr) {
        f4 av = wasm_v128_load32_splat(a + r * ars);
        acc0[r] = madd(av, b0, acc0[r]);
        acc1[r] = madd(av, b1, acc1[r]);
      }
    }
    a += aks;
  }
  for (int r = 0; r < MR; r++) {
    if (r >= mr) break;
    float *cr = c + r * ldc;
    if (ncols == NR) {
      st(cr, acc0[r]);
      st(cr + 4, acc1[r]);
    } else {
      float tmp[NR];
      st(tmp, acc0[r]);
      st(tmp + 4, acc1[r]);
      for (int j = 0; j < ncols; j++) cr[j] = (load_c ? cr[j] : 0.f) + tmp[j];
    }
  }
}

// Packs B (kc x N, element (k, n) at b + k*bks + n*bns) into panels of NR columns.
static void pack_b(const float *b, long bks, long bns, int kc, int N, float *bp) {
  for (int j0 = 0; j0 < N; j0 += NR) {
    const int nc = N - j0 < NR ? N - j0 : NR;
    for (int k = 0; k < kc; k++) {
      const float *row = b + k * bks + j0 * bns;
      if (nc == NR && bns == 1) {
        st(bp, ld(row));
        st(bp + 4, ld(row + 4));
      } else {
        for (int j = 0; j < NR; j++) bp[j] = j < nc ? row[j * bns] : 0.f;
      }
      bp += NR;
    }
  }
}

// scratch: KC * round_up(min(N, NC), NR) floats. Loops: column blocks of NC (the packed B block
// stays in L2), depth blocks of KC, row blocks of MR, column panels of NR.
EXPORT(sgemm)
void sgemm(int P, int M, int N, int K, const float *A, int ars, int aks, int aps, const float *B,
           int bks, int bns, int bps, float *C, int ldc, int cps, int accumulate, float *scratch) {
  for (int p = 0; p < P; p++) {
    const float *Ap = A + (long)p * aps;
    const float *Bp = B + (long)p * bps;
    float *Cp = C + (long)p * cps;
    for (int n0 = 0; n0 < N; n0 += NC) {
      const int nb = N - n0 < NC ? N - n0 : NC;
      for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        pack_b(Bp + (long)k0 * bks + (long)n0 * bns, bks, bns, kc, nb, scratch);
        const int load_c = accumulate || k0 > 0;
        for (int i0 = 0; i0 < M; i0 += MR) {
          const int mr = M - i0 < MR ? M - i0 : MR;
          const float *a = Ap + (long)i0 * ars + (long)k0 * aks;
          float *c = Cp + (long)i0 * ldc + n0;
          for (int j0 = 0; j0 < nb; j0 += NR) {
            const int nc = nb - j0 < NR ? nb - j0 : NR;
            const float *bp = scratch + (long)j0 * kc;
            if (mr == MR) ukernel(MR, kc, a, ars, aks, bp, c + j0, ldc, nc, load_c);
            else for (int r = 0; r < mr; r++)  // row remainder, one row at a time
              ukernel(1, kc, a + r * ars, ars, aks, bp, c + j0 + (long)r * ldc, ldc, nc, load_c);
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Shifted views for the general (any filter size, stride, dilation, padding) convolution
// gradients as sums of GEMMs over filter taps.
//
// o[0..C) = x[n][h][w][0..C) of NHWC x, or zeros where (h, w) is outside the input.
INLINE void pixel_or_zero(float *o, const float *x, int n, int h, int w, int H, int W, int C) {
  if (h < 0 || h >= H || w < 0 || w >= W) {
    for (int c = 0; c < C; c += 4) st_c(o + c, zero(), C - c);
  } else {
    const float *xi = x + (((long)n * H + h) * W + w) * C;
    for (int c = 0; c < C; c += 4) st_c(o + c, ld_c(xi + c, C - c), C - c);
  }
}

// im2col: out[n][oh][ow][(i*FW + j)*C + c] = x[n][oh*sH + i*dH - padT][ow*sW + j*dW - padL][c]
// (zero outside the input): the rows of the forward convolution as one GEMM against the HWIO filter
// viewed as [FH*FW*C][K].
EXPORT(im2col)
void im2col(const float *x, float *out, int N, int H, int W, int C, int OH, int OW, int FH, int FW,
            int padT, int padL, int sH, int sW, int dH, int dW) {
  const long rowLen = (long)FH * FW * C;
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        float *o = out + (((long)n * OH + oh) * OW + ow) * rowLen;
        for (int i = 0; i < FH; i++) {
          const int h = oh * sH + i * dH - padT;
          for (int j = 0; j < FW; j++, o += C) pixel_or_zero(o, x, n, h, ow * sW + j * dW - padL, H, W, C);
        }
      }
}

// y[r][k] = act(y[r][k] + bias[k]) (bias may be 0; relu != 0 clamps at 0).
EXPORT(bias_act)
void bias_act(float *y, const float *bias, int rows, int K, int relu) {
  for (long r = 0; r < rows; r++) {
    float *row = y + r * K;
    for (int k = 0; k < K; k += 4) {
      f4 v = ld_c(row + k, K - k);
      if (bias) v = add(v, ld_c(bias + k, K - k));
      if (relu) v = wasm_f32x4_max(v, zero());
      st_c(row + k, v, K - k);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Depthwise convolution gradients, NHWC, filter [FH][FW][C][Mul], output channel c*Mul + q.
// Vectorized over channels when Mul == 1.
EXPORT(dw_grad_input)
void dw_grad_input(const float *dy, const float *f, float *dx, int N, int H, int W, int C, int Mul,
                   int OH, int OW, int FH, int FW, int sH, int sW, int dH, int dW, int padT,
                   int padL) {
  const int OC = C * Mul;
  for (long i = 0; i < (long)N * H * W * C; i += 4) st_c(dx + i, zero(), (int)((long)N * H * W * C - i));
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *g = dy + (((long)n * OH + oh) * OW + ow) * OC;
        for (int fh = 0; fh < FH; fh++) {
          const int h = oh * sH + fh * dH - padT;
          if (h < 0 || h >= H) continue;
          for (int fw = 0; fw < FW; fw++) {
            const int w = ow * sW + fw * dW - padL;
            if (w < 0 || w >= W) continue;
            float *d = dx + (((long)n * H + h) * W + w) * C;
            const float *ft = f + ((long)fh * FW + fw) * OC;
            if (Mul == 1) {
              for (int c = 0; c < C; c += 4)
                st_c(d + c, add(ld_c(d + c, C - c), mul(ld_c(g + c, C - c), ld_c(ft + c, C - c))), C - c);
            } else {
              for (int c = 0; c < C; c++) {
                float s = 0.f;
                for (int q = 0; q < Mul; q++) s += g[c * Mul + q] * ft[c * Mul + q];
                d[c] += s;
              }
            }
          }
        }
      }
}

// Filter taps [t0, t1) only (tap = fh * FW + fw): each tap's sum keeps its order, so threads can
// take disjoint taps.
EXPORT(dw_grad_filter)
void dw_grad_filter(const float *x, const float *dy, float *df, int N, int H, int W, int C, int Mul,
                    int OH, int OW, int FH, int FW, int sH, int sW, int dH, int dW, int padT,
                    int padL, int t0, int t1) {
  const int OC = C * Mul;
  for (long i = (long)t0 * OC; i < (long)t1 * OC; i += 4) st_c(df + i, zero(), (int)((long)t1 * OC - i));
  for (int t = t0; t < t1; t++) {
      const int fh = t / FW, fw = t % FW;
      float *dft = df + (long)t * OC;
      for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++) {
          const int h = oh * sH + fh * dH - padT;
          if (h < 0 || h >= H) continue;
          for (int ow = 0; ow < OW; ow++) {
            const int w = ow * sW + fw * dW - padL;
            if (w < 0 || w >= W) continue;
            const float *g = dy + (((long)n * OH + oh) * OW + ow) * OC;
            const float *xi = x + (((long)n * H + h) * W + w) * C;
            if (Mul == 1) {
              for (int c = 0; c < C; c += 4)
                st_c(dft + c, add(ld_c(dft + c, C - c), mul(ld_c(g + c, C - c), ld_c(xi + c, C - c))), C - c);
            } else {
              for (int c = 0; c < C; c++)
                for (int q = 0; q < Mul; q++) dft[c * Mul + q] += g[c * Mul + q] * xi[c];
            }
          }
        }
    }
}

EXPORT(zero_floats)
void zero_floats(float *p, int n) { __builtin_memset(p, 0, (unsigned long)n * 4); }

// ---------------------------------------------------------------------------------------------
// Per-channel reductions and broadcasts over the rows of a [rows, C] view of an NHWC tensor
// (batch-norm statistics and their gradients). Sums run in blocks of ROWS_BLOCK rows in registers
// and are added to the result block by block, which keeps float32 rounding small.
#define ROWS_BLOCK 256

// Sums block by block: part[b][c] is the sum over block b's rows (blocks of ROWS_BLOCK from row 0
// of this call), and sum_blocks adds the parts in block order, so the result does not depend on
// how the rows were split between threads. reduce_blocks: sums of x; bn_grad_blocks: sums of dy and
// of dy * (x - mean), the batch-norm gradient's.
EXPORT(reduce_blocks)
void reduce_blocks(const float *x, float *part, int rows, int C) {
  for (int r0 = 0, b = 0; r0 < rows; r0 += ROWS_BLOCK, b++) {
    const int r1 = r0 + ROWS_BLOCK < rows ? r0 + ROWS_BLOCK : rows;
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      f4 s = zero();
      for (int r = r0; r < r1; r++) s = add(s, ld_c(x + (long)r * C + c, nc));
      st_c(part + (long)b * C + c, s, nc);
    }
  }
}

EXPORT(bn_grad_blocks)
void bn_grad_blocks(const float *x, const float *dy, const float *mean, float *pdy, float *pdyx,
                    int rows, int C) {
  for (int r0 = 0, b = 0; r0 < rows; r0 += ROWS_BLOCK, b++) {
    const int r1 = r0 + ROWS_BLOCK < rows ? r0 + ROWS_BLOCK : rows;
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      const f4 m = ld_c(mean + c, nc);
      f4 s = zero(), sx = zero();
      for (int r = r0; r < r1; r++) {
        const f4 g = ld_c(dy + (long)r * C + c, nc);
        s = add(s, g);
        sx = add(sx, mul(g, sub(ld_c(x + (long)r * C + c, nc), m)));
      }
      st_c(pdy + (long)b * C + c, s, nc);
      st_c(pdyx + (long)b * C + c, sx, nc);
    }
  }
}

// out[c] = scale * (((0 + part[0][c]) + part[1][c]) + ...)
EXPORT(sum_blocks)
void sum_blocks(const float *part, float *out, int blocks, int C, float scale) {
  for (int c = 0; c < C; c += 4) {
    const int nc = C - c;
    f4 s = zero();
    for (int b = 0; b < blocks; b++) s = add(s, ld_c(part + (long)b * C + c, nc));
    if (scale != 1.f) s = mulc(s, scale);
    st_c(out + c, s, nc);
  }
}

// Batch norm applied: y[r][c] = (x[r][c] - mean[c]) * a[c] + offset[c], a = scale * rsqrt(var + eps)
// (offset may be 0).
EXPORT(bn_apply)
void bn_apply(const float *x, const float *mean, const float *a, const float *offset, float *y,
              int rows, int C) {
  for (long r = 0; r < rows; r++)
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      f4 v = mul(sub(ld_c(x + r * C + c, nc), ld_c(mean + c, nc)), ld_c(a + c, nc));
      if (offset) v = add(v, ld_c(offset + c, nc));
      st_c(y + r * C + c, v, nc);
    }
}

// Elementwise binary ops on float32, y = a op b, op 0 add, 1 sub, 2 mul; b has the shape of a
// (bC == 0) or is one row of bC values broadcast over rows of bC (a per-channel operand).
INLINE f4 binop(f4 x, f4 z, int op) { return op == 0 ? add(x, z) : op == 1 ? sub(x, z) : mul(x, z); }

EXPORT(binary_op)
void binary_op(const float *a, const float *b, float *y, int n, int bC, int op) {
  if (bC == 0) {
    for (long i = 0; i < n; i += 4) st_c(y + i, binop(ld_c(a + i, n - i), ld_c(b + i, n - i), op), n - i);
    return;
  }
  for (long r = 0; r < n; r += bC)
    for (int c = 0; c < bC; c += 4)
      st_c(y + r + c, binop(ld_c(a + r + c, bC - c), ld_c(b + c, bC - c), op), bC - c);
}

// The gradient of relu as tfjs-core writes it: dx = dy * step(x), step(x) = x > 0 ? 1 : 0 (NaN for
// NaN x), so NaNs and infinities propagate as they do there.
EXPORT(relu_grad)
void relu_grad(const float *dy, const float *x, float *dx, int n) {
  const f4 one = wasm_f32x4_splat(1.f);
  for (long i = 0; i < n; i += 4) {
    const f4 xv = ld_c(x + i, n - i);
    f4 step = wasm_v128_and(wasm_f32x4_gt(xv, zero()), one);
    step = wasm_v128_or(step, wasm_v128_and(wasm_f32x4_ne(xv, xv), xv));
    st_c(dx + i, mul(ld_c(dy + i, n - i), step), n - i);
  }
}

// One SGD step as PyTorch applies it (core/trainer/src/optim/optimizer.ts, the same f32 operations in the
// same order): g = grad + w*wd (wd != 0); buf' = buf*m + g and g = nesterov ? g + buf'*m : buf'
// (m != 0); w' = w - g*lr.
EXPORT(sgd_step)
void sgd_step(const float *w, const float *grad, const float *buf, float *w_out, float *buf_out, int n,
              float lr, float m, float wd, int nesterov) {
  const f4 vlr = wasm_f32x4_splat(lr), vm = wasm_f32x4_splat(m), vwd = wasm_f32x4_splat(wd);
  for (long i = 0; i < n; i += 4) {
    const int left = n - i;
    const f4 wv = ld_c(w + i, left);
    f4 g = ld_c(grad + i, left);
    if (wd != 0.f) g = add(g, mul(wv, vwd));
    if (m != 0.f) {
      const f4 nb = add(mul(ld_c(buf + i, left), vm), g);
      st_c(buf_out + i, nb, left);
      g = nesterov ? add(g, mul(nb, vm)) : nb;
    }
    st_c(w_out + i, sub(wv, mul(g, vlr)), left);
  }
}

// One Adam/AdamW step (core/trainer/src/optim/optimizer.ts, the same f32 operations in the same order):
// g = grad + w*l2 (l2 != 0); m' = m*b1 + g*omb1; v' = v*b2 + (g*g)*omb2;
// w' = (decoupled ? w*wmul : w) - (m' / (sqrt(v')/sqrt_bc2 + eps)) * step.
EXPORT(adam_step)
void adam_step(const float *w, const float *grad, const float *m, const float *v, float *w_out, float *m_out,
               float *v_out, int n, float l2, float b1, float omb1, float b2, float omb2, float sqrt_bc2,
               float eps, int decoupled, float wmul, float step) {
  const f4 vb1 = wasm_f32x4_splat(b1), vomb1 = wasm_f32x4_splat(omb1), vb2 = wasm_f32x4_splat(b2),
           vomb2 = wasm_f32x4_splat(omb2), vbc2 = wasm_f32x4_splat(sqrt_bc2), veps = wasm_f32x4_splat(eps),
           vl2 = wasm_f32x4_splat(l2), vwmul = wasm_f32x4_splat(wmul), vstep = wasm_f32x4_splat(step);
  for (long i = 0; i < n; i += 4) {
    const int left = n - i;
    f4 wv = ld_c(w + i, left), g = ld_c(grad + i, left);
    if (l2 != 0.f) g = add(g, mul(wv, vl2));
    const f4 nm = add(mul(ld_c(m + i, left), vb1), mul(g, vomb1));
    const f4 nv = add(mul(ld_c(v + i, left), vb2), mul(mul(g, g), vomb2));
    st_c(m_out + i, nm, left);
    st_c(v_out + i, nv, left);
    const f4 denom = add(wasm_f32x4_div(wasm_f32x4_sqrt(nv), vbc2), veps);
    if (decoupled) wv = mul(wv, vwmul);
    st_c(w_out + i, sub(wv, mul(wasm_f32x4_div(nm, denom), vstep)), left);
  }
}

// out[r][c] = x[r][c] * coef[c]
EXPORT(scale_channels)
void scale_channels(const float *x, const float *coef, float *out, int rows, int C) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < C; c += 4)
      st_c(out + (long)r * C + c, mul(ld_c(x + (long)r * C + c, C - c), ld_c(coef + c, C - c)), C - c);
}

// out[r][c] = v[c] * scale
EXPORT(broadcast_rows)
void broadcast_rows(const float *v, float *out, int rows, int C, float scale) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < C; c += 4) st_c(out + (long)r * C + c, mulc(ld_c(v + c, C - c), scale), C - c);
}

// The input gradient of batch norm in training (batch statistics, so the mean and variance depend on x):
// dx[r][c] = dy[r][c] * a[c] + (x[r][c] - mean[c]) * b[c] + d[c], with a = g*rstd, b = -g*rstd^3*sum(dy*(x-mean))/N
// and d = -g*rstd*sum(dy)/N (core/backend-wasm/src/batchnorm-training.ts).
EXPORT(bn_train_dx)
void bn_train_dx(const float *dy, const float *x, const float *mean, const float *a, const float *b, const float *d,
                 float *dx, int rows, int C) {
  for (long r = 0; r < rows; r++)
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      const long i = r * C + c;
      f4 v = mul(ld_c(dy + i, nc), ld_c(a + c, nc));
      v = add(v, mul(sub(ld_c(x + i, nc), ld_c(mean + c, nc)), ld_c(b + c, nc)));
      st_c(dx + i, add(v, ld_c(d + c, nc)), nc);
    }
}
// ---------------------------------------------------------------------------------------------
// 224-px kernels (issue 15): max-pool gradient, col2im, depthwise forward, activations.

// Max-pool gradient, NHWC: dx[n][h][w][c] gets dy[n][oh][ow][c] at the first window position (rows,
// then columns, in the input) whose x equals the pooled y, as tfjs's cpu backend picks its
// argmax (the first strictly greater value). Vectorized over channels: a lane takes the first
// match and is then done. Images [0, N) of this call.
EXPORT(max_pool_grad)
void max_pool_grad(const float *dy, const float *x, const float *y, float *dx, int N, int H, int W,
                   int C, int OH, int OW, int FH, int FW, int sH, int sW, int dH, int dW, int padT,
                   int padL) {
  __builtin_memset(dx, 0, (unsigned long)N * H * W * C * 4);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const long o = (((long)n * OH + oh) * OW + ow) * C;
        for (int c = 0; c < C; c += 4) {
          const int nc = C - c;
          const f4 yv = ld_c(y + o + c, nc), g = ld_c(dy + o + c, nc);
          f4 done = wasm_i32x4_splat(0);
          for (int i = 0; i < FH; i++) {
            const int h = oh * sH + i * dH - padT;
            if (h < 0 || h >= H) continue;
            for (int j = 0; j < FW; j++) {
              const int w = ow * sW + j * dW - padL;
              if (w < 0 || w >= W) continue;
              const long p = (((long)n * H + h) * W + w) * C + c;
              const f4 hit = wasm_v128_andnot(wasm_f32x4_eq(ld_c(x + p, nc), yv), done);
              st_c(dx + p, add(ld_c(dx + p, nc), wasm_v128_and(hit, g)), nc);
              done = wasm_v128_or(done, hit);
            }
          }
        }
      }
}

// col2im, the transpose of im2col: dx[n][oh*sH + i*dH - padT][ow*sW + j*dW - padL][c] +=
// cols[n][oh][ow][(i*FW + j)*C + c] (inside the input only); dx is zeroed first. Images [0, N).
EXPORT(col2im)
void col2im(const float *cols, float *dx, int N, int H, int W, int C, int OH, int OW, int FH, int FW,
            int padT, int padL, int sH, int sW, int dH, int dW) {
  __builtin_memset(dx, 0, (unsigned long)N * H * W * C * 4);
  const long rowLen = (long)FH * FW * C;
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *s = cols + (((long)n * OH + oh) * OW + ow) * rowLen;
        for (int i = 0; i < FH; i++) {
          const int h = oh * sH + i * dH - padT;
          if (h < 0 || h >= H) { s += (long)FW * C; continue; }
          for (int j = 0; j < FW; j++, s += C) {
            const int w = ow * sW + j * dW - padL;
            if (w < 0 || w >= W) continue;
            float *d = dx + (((long)n * H + h) * W + w) * C;
            for (int c = 0; c < C; c += 4) st_c(d + c, add(ld_c(d + c, C - c), ld_c(s + c, C - c)), C - c);
          }
        }
      }
}

// Depthwise convolution forward, NHWC, channel multiplier 1, filter [FH][FW][C]:
// y[n][oh][ow][c] = act(sum over taps of x[..][c] * f[tap][c] + bias[c]) (bias may be 0; act 0 none,
// 1 relu, 2 relu6). Output rows [r0, r1) of the flattened [N*OH] rows. Channels in blocks of 16
// (four vectors) kept in registers over the taps.
EXPORT(dw_conv)
void dw_conv(const float *x, const float *f, const float *bias, float *y, int N, int H, int W, int C,
             int OH, int OW, int FH, int FW, int sH, int sW, int dH, int dW, int padT, int padL,
             int act, int r0, int r1) {
  const f4 six = wasm_f32x4_splat(6.f);
  for (int r = r0; r < r1; r++) {
    const int n = r / OH, oh = r % OH;
    for (int ow = 0; ow < OW; ow++) {
      float *yo = y + (((long)n * OH + oh) * OW + ow) * C;
      for (int c = 0; c < C; c += 16) {
        const int nc = C - c;
        f4 a0 = zero(), a1 = zero(), a2 = zero(), a3 = zero();
        for (int i = 0; i < FH; i++) {
          const int h = oh * sH + i * dH - padT;
          if (h < 0 || h >= H) continue;
          for (int j = 0; j < FW; j++) {
            const int w = ow * sW + j * dW - padL;
            if (w < 0 || w >= W) continue;
            const float *xi = x + (((long)n * H + h) * W + w) * C + c;
            const float *ft = f + ((long)i * FW + j) * C + c;
            if (nc >= 16) {
              a0 = madd(ld(xi), ld(ft), a0);
              a1 = madd(ld(xi + 4), ld(ft + 4), a1);
              a2 = madd(ld(xi + 8), ld(ft + 8), a2);
              a3 = madd(ld(xi + 12), ld(ft + 12), a3);
            } else {
              a0 = madd(ld_c(xi, nc), ld_c(ft, nc), a0);
              if (nc > 4) a1 = madd(ld_c(xi + 4, nc - 4), ld_c(ft + 4, nc - 4), a1);
              if (nc > 8) a2 = madd(ld_c(xi + 8, nc - 8), ld_c(ft + 8, nc - 8), a2);
              if (nc > 12) a3 = madd(ld_c(xi + 12, nc - 12), ld_c(ft + 12, nc - 12), a3);
            }
          }
        }
        f4 acc[4] = {a0, a1, a2, a3};
        for (int q = 0; q < 4 && q * 4 < nc; q++) {
          f4 v = acc[q];
          if (bias) v = add(v, ld_c(bias + c + q * 4, nc - q * 4));
          if (act >= 1) v = wasm_f32x4_max(v, zero());
          if (act == 2) v = wasm_f32x4_min(v, six);
          st_c(yo + c + q * 4, v, nc - q * 4);
        }
      }
    }
  }
}

// Depthwise filter gradient, channel multiplier 1, channels [c0, c1) only (threads take disjoint
// channel ranges): df[tap][c] = sum over n, oh, ow (in that order) of dy[n][oh][ow][c] *
// x[n][oh*sH + fh*dH - padT][ow*sW + fw*dW - padL][c]. One pass over dy and x for all taps (the
// per-tap kernel reads both once per tap); df (FH*FW*C floats) stays in cache.
EXPORT(dw_grad_filter1)
void dw_grad_filter1(const float *x, const float *dy, float *df, int N, int H, int W, int C, int OH,
                     int OW, int FH, int FW, int sH, int sW, int dH, int dW, int padT, int padL, int c0,
                     int c1) {
  const int taps = FH * FW;
  for (int t = 0; t < taps; t++)
    for (int c = c0; c < c1; c += 4) st_c(df + (long)t * C + c, zero(), c1 - c);
  for (int n = 0; n < N; n++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *g = dy + (((long)n * OH + oh) * OW + ow) * C;
        for (int i = 0; i < FH; i++) {
          const int h = oh * sH + i * dH - padT;
          if (h < 0 || h >= H) continue;
          const float *xr = x + ((long)n * H + h) * W * C;
          for (int j = 0; j < FW; j++) {
            const int w = ow * sW + j * dW - padL;
            if (w < 0 || w >= W) continue;
            const float *xi = xr + (long)w * C;
            float *dt = df + ((long)i * FW + j) * C;
            int c = c0;
            for (; c + 8 <= c1; c += 8) {
              st(dt + c, madd(ld(g + c), ld(xi + c), ld(dt + c)));
              st(dt + c + 4, madd(ld(g + c + 4), ld(xi + c + 4), ld(dt + c + 4)));
            }
            for (; c < c1; c += 4) st_c(dt + c, madd(ld_c(g + c, c1 - c), ld_c(xi + c, c1 - c), ld_c(dt + c, c1 - c)), c1 - c);
          }
        }
      }
}

// Activations and their gradients, elementwise over n floats.
// op 1: h-swish y = x * (relu6(x + 3) / 6) (a = x), the composite's operations in its order.
// op 2: h-swish gradient dx = dy * (x <= -3 ? 0 : x > 3 ? 1 : (2x + 3) / 6) (a = dy, b = x): the
//       composite's gradient (x + 3 <= 0 has no slope, x + 3 = 6 has) in one expression.
// op 3: h-sigmoid y = relu6(x + 3) / 6.
// op 4: h-sigmoid gradient dx = (dy / 6) * (0 < x + 3 <= 6), as the composite computes it.
EXPORT(act_op)
void act_op(const float *a, const float *b, float *y, int n, int op) {
  const f4 one = wasm_f32x4_splat(1.f), three = wasm_f32x4_splat(3.f), six = wasm_f32x4_splat(6.f),
           m3 = wasm_f32x4_splat(-3.f);
  for (long i = 0; i < n; i += 4) {
    const int left = n - i;
    const f4 av = ld_c(a + i, left);
    f4 r;
    if (op == 0) {
      r = av;
    } else if (op == 1) {
      r = mul(av, wasm_f32x4_div(wasm_f32x4_min(wasm_f32x4_max(add(av, three), zero()), six), six));
    } else if (op == 2) {
      const f4 xv = ld_c(b + i, left);
      f4 d = wasm_f32x4_div(add(add(xv, xv), three), six);
      d = wasm_v128_bitselect(one, d, wasm_f32x4_gt(xv, three));
      d = wasm_v128_andnot(d, wasm_f32x4_le(xv, m3));
      r = mul(av, d);
    } else if (op == 3) {
      r = wasm_f32x4_div(wasm_f32x4_min(wasm_f32x4_max(add(av, three), zero()), six), six);
    } else {
      const f4 x3 = add(ld_c(b + i, left), three);
      const f4 mask = wasm_v128_and(wasm_f32x4_gt(x3, zero()), wasm_f32x4_le(x3, six));
      r = mul(wasm_f32x4_div(av, six), wasm_v128_and(mask, one));
    }
    st_c(y + i, r, left);
  }
}

// Per-group reductions and broadcasts over x viewed as [G][R][C] (squeeze-excitation: the global
// average pool, Mean over H and W, and x * s with s [G][1][1][C], and their gradients).
// reduce_groups: out[g][c] = scale * sum over r of x[g][r][c], in blocks of ROWS_BLOCK rows as
// reduce_blocks + sum_blocks do. Groups [0, G) of this call.
EXPORT(reduce_groups)
void reduce_groups(const float *x, float *out, int G, int R, int C, float scale) {
  for (int g = 0; g < G; g++) {
    const float *xg = x + (long)g * R * C;
    for (int c = 0; c < C; c += 4) {
      const int nc = C - c;
      f4 total = zero();
      for (int r0 = 0; r0 < R; r0 += ROWS_BLOCK) {
        const int r1 = r0 + ROWS_BLOCK < R ? r0 + ROWS_BLOCK : R;
        f4 s = zero();
        for (int r = r0; r < r1; r++) s = add(s, ld_c(xg + (long)r * C + c, nc));
        total = add(total, s);
      }
      if (scale != 1.f) total = mulc(total, scale);
      st_c(out + (long)g * C + c, total, nc);
    }
  }
}

// y[g][r][c] = a[g][r][c] op b[g][c] (op as binary_op). Groups [0, G) of this call.
EXPORT(binary_groups)
void binary_groups(const float *a, const float *b, float *y, int G, int R, int C, int op) {
  for (int g = 0; g < G; g++)
    for (int r = 0; r < R; r++) {
      const long o = ((long)g * R + r) * C;
      for (int c = 0; c < C; c += 4)
        st_c(y + o + c, binop(ld_c(a + o + c, C - c), ld_c(b + (long)g * C + c, C - c), op), C - c);
    }
}

// out[g][r][c] = v[g][c] * scale (the gradient of a per-group mean).
EXPORT(broadcast_groups)
void broadcast_groups(const float *v, float *out, int G, int R, int C, float scale) {
  for (int g = 0; g < G; g++)
    for (int r = 0; r < R; r++)
      for (int c = 0; c < C; c += 4)
        st_c(out + ((long)g * R + r) * C + c, mulc(ld_c(v + (long)g * C + c, C - c), scale), C - c);
}
