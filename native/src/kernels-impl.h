// The kernels, written once over V16 (simd.h) and compiled once per instruction set: kernels-<isa>.cpp defines LS_NS
// and the LS_ISA_* macro, then includes this file. Register blocking differs per ISA; the order of every sum does not.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "packed-decode.h"
#include "pool.h"
#include "simd.h"

namespace LS_NS {
using ls::AttnShape;
using ls::GEMM_KC;
using ls::Kernels;
using ls::Weight;
using ls::WType;

#if defined(LS_ISA_AVX512)
constexpr int ABT_MR = 4, ABT_NR = 6;  // 24 accumulators + 4 rows of a + 1 of b: 29 of 32 zmm
#ifndef LS_NN_MR
constexpr int NN_MR = 12, NN_NV = 2;   // 12 rows × 32 columns: 24 zmm accumulators
#else
constexpr int NN_MR = LS_NN_MR, NN_NV = LS_NN_NV;
#endif
#elif defined(LS_ISA_AVX2)
constexpr int ABT_MR = 2, ABT_NR = 3;  // 6 V16 = 12 ymm accumulators
constexpr int NN_MR = 6, NN_NV = 1;    // 6 rows × 16 columns = 12 ymm
#elif defined(LS_ISA_NEON)
constexpr int ABT_MR = 2, ABT_NR = 2;
constexpr int NN_MR = 6, NN_NV = 1;
#else
constexpr int ABT_MR = 2, ABT_NR = 2;
constexpr int NN_MR = 4, NN_NV = 1;
#endif
constexpr int NN_NS = 16 * NN_NV;

// ---------------------------------------------------------------------------------------------------------------
// Weight formats. decode_rows is the seam for new formats (issue 12: Q8_0, Q4_K, NF4, …): it turns a tile of a weight
// — rows r0..r0+nr, columns k0..k0+kc — into f32, and the GEMMs only ever ask for such tiles (gemm_nn packs its
// panels through it; gemm_abt reads f32 in place and loads other formats lane by lane through vload).

// The row-blocked packed formats decoded with SIMD, 32 values at a time (the fused matrix-vector products below and the
// panels of decode_rows): the values of packed-decode.h, which stays the scalar definition (and serves nf4, int4-g128).

static LS_INLINE uint16_t rd_u16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/**
 * 16 values t[q] picked by the 4-bit codes of 16 bytes: lo by the low nibbles, hi by the high ones, where t[q] is
 * q·d + add (add = 0: q·d alone), q = 0..15 shifted by −bias — the formats' values for those codes, two roundings each.
 * AVX-512 computes the 16 possible values once and picks each weight's with vpermps (which reads the low 4 bits of
 * each lane); the other ISAs convert every code. The same floats either way.
 */
template <bool HasAdd>
static LS_INLINE void nibble_values(const uint8_t* q, int bias, V16 d, V16 add, V16& lo, V16& hi) {
#if defined(LS_ISA_AVX512)
  const __m512 iota = _mm512_sub_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_ps((float)bias));
  __m512 t = _mm512_mul_ps(iota, d.v);
  if (HasAdd) t = _mm512_add_ps(t, add.v);
  const __m512i codes = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q));
  lo.v = _mm512_permutexvar_ps(codes, t);
  hi.v = _mm512_permutexvar_ps(_mm512_srli_epi32(codes, 4), t);
#else
  vload_nibbles(q, bias, lo, hi);
  lo = vmul(lo, d);
  hi = vmul(hi, d);
  if (HasAdd) {
    lo = vadd(lo, add);
    hi = vadd(hi, add);
  }
#endif
}

/** As nibble_values (bias 0), for 16 codes that are the low (shift 0) or high (shift 4) nibbles of 16 bytes. */
template <bool HasAdd>
static LS_INLINE V16 nibble_half(const uint8_t* q, int shift, V16 d, V16 add) {
#if defined(LS_ISA_AVX512)
  __m512 t = _mm512_mul_ps(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), d.v);
  if (HasAdd) t = _mm512_add_ps(t, add.v);
  const __m512i codes = _mm512_srl_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)q)), _mm_cvtsi32_si128(shift));
  return {_mm512_permutexvar_ps(codes, t)};
#else
  V16 lo, hi;
  nibble_values<HasAdd>(q, 0, d, add, lo, hi);
  return shift ? hi : lo;
#endif
}

/** The two fp16 scales at p (d, then m / dmin) as broadcast vectors. */
static LS_INLINE void h2f_pair(const uint8_t* p, V16& a, V16& b) {
#if defined(LS_ISA_AVX512)
  // One conversion for both, then lane broadcasts (fewer shuffle-port operations than two scalar conversions).
  uint32_t bits;
  std::memcpy(&bits, p, 4);
  const __m512 f = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)bits)));
  a.v = _mm512_permutexvar_ps(_mm512_setzero_si512(), f);
  b.v = _mm512_permutexvar_ps(_mm512_set1_epi32(1), f);
#else
  a = vset1(h2f(rd_u16(p)));
  b = vset1(h2f(rd_u16(p + 2)));
#endif
}

/** The row-blocked formats of the fused path: BS values in BB bytes; chunk(y, c) decodes values 32c..32c+31. */
template <WType T>
struct QFormat;

template <>
struct QFormat<WType::Q8_0> {
  static constexpr size_t BS = 32, BB = ls::packed::Q8_0_BYTES;
  static LS_INLINE void chunk(const uint8_t* y, size_t, V16& lo, V16& hi) {
    const V16 d = vset1(h2f(rd_u16(y)));
    lo = vmul(vload_i8(reinterpret_cast<const int8_t*>(y + 2)), d);
    hi = vmul(vload_i8(reinterpret_cast<const int8_t*>(y + 18)), d);
  }
};

template <>
struct QFormat<WType::Q4_0> {
  static constexpr size_t BS = 32, BB = ls::packed::Q4_0_BYTES;
  static LS_INLINE void chunk(const uint8_t* y, size_t, V16& lo, V16& hi) { nibble_values<false>(y + 2, 8, vset1(h2f(rd_u16(y))), vzero(), lo, hi); }
};

template <>
struct QFormat<WType::Q4_1> {
  static constexpr size_t BS = 32, BB = ls::packed::Q4_1_BYTES;
  static LS_INLINE void chunk(const uint8_t* y, size_t, V16& lo, V16& hi) {
    V16 d, m;
    h2f_pair(y, d, m);
    nibble_values<true>(y + 4, 0, d, m, lo, hi);
  }
};

template <>
struct QFormat<WType::Q4_K> {
  static constexpr size_t BS = 256, BB = ls::packed::Q4_K_BYTES;
  // Sub-block c: scale dd·sc and min dmin·mn (6-bit, packed-decode.h's unpacking), value (d·sc)·q − dmin·mn; its
  // codes are the low (c even) or high (c odd) nibbles of qs[32·(c/2) ..][0 .. 32).
  static LS_INLINE void chunk(const uint8_t* y, size_t c, V16& lo, V16& hi) {
    const float dd = h2f(rd_u16(y)), dmin = h2f(rd_u16(y + 2));
    const uint8_t* at = y + 4;
    int sc, mn;
    if (c < 4) {
      sc = at[c] & 0x3f;
      mn = at[4 + c] & 0x3f;
    } else {
      sc = (at[8 + c - 4] & 0x0f) | ((at[c - 4] >> 2) & 0x30);
      mn = (at[8 + c - 4] >> 4) | ((at[4 + c - 4] >> 2) & 0x30);
    }
    const float dl = dd * (float)sc, ml = dmin * (float)mn;
    const uint8_t* qs = y + 16 + 32 * (c >> 1);
    const int shift = 4 * (int)(c & 1);
    const V16 dv = vset1(dl), mv = vset1(-ml);
    lo = nibble_half<true>(qs, shift, dv, mv);
    hi = nibble_half<true>(qs + 16, shift, dv, mv);
  }
};

template <>
struct QFormat<WType::Q6_K> {
  static constexpr size_t BS = 256, BB = ls::packed::Q6_K_BYTES;
  // Values 32c + t: low 4 bits from ql[64·g + 32·(c&1) + t] (>> 4·((c>>1)&1)), high 2 from qh[32·g + t]
  // (>> 2·(c&3)), g = c/4, minus 32; times dd·sc[e/16].
  static LS_INLINE void chunk(const uint8_t* y, size_t c, V16& lo, V16& hi) {
    const size_t g = c >> 2;
    const uint8_t* ql = y + 64 * g + 32 * (c & 1);
    const uint8_t* qh = y + 128 + 32 * g;
    const int sl = 4 * (int)((c >> 1) & 1), sh = 2 * (int)(c & 3);
    alignas(32) int8_t q[32];
#if defined(LS_ISA_AVX512) || defined(LS_ISA_AVX2)
    // Bytewise through 16-bit shifts: the masks keep each byte's own bits (sl ≤ 4, sh ≤ 6), and hi·16 ≤ 48 stays in it.
    const __m256i l = _mm256_loadu_si256((const __m256i*)ql), h = _mm256_loadu_si256((const __m256i*)qh);
    const __m256i lo4 = _mm256_and_si256(_mm256_srl_epi16(l, _mm_cvtsi32_si128(sl)), _mm256_set1_epi8(0x0f));
    const __m256i hi2 = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(sh)), _mm256_set1_epi8(3));
    _mm256_store_si256((__m256i*)q, _mm256_sub_epi8(_mm256_or_si256(lo4, _mm256_slli_epi16(hi2, 4)), _mm256_set1_epi8(32)));
#else
    for (int t = 0; t < 32; t++) q[t] = (int8_t)((((ql[t] >> sl) & 0x0f) | (((qh[t] >> sh) & 3) << 4)) - 32);
#endif
    const float dd = h2f(rd_u16(y + 208));
    const int8_t* sc = reinterpret_cast<const int8_t*>(y + 192);
    lo = vmul(vload_i8(q), vset1(dd * (float)sc[2 * c]));
    hi = vmul(vload_i8(q + 16), vset1(dd * (float)sc[2 * c + 1]));
  }
};

/** Columns [k0, k0 + kc) (multiples of 32) of rows [r0, r0 + nr) of a row-blocked weight, with the SIMD decoders. */
template <WType T>
static void decode_rows_simd(float* dst, size_t ldd, const Weight& w, size_t r0, size_t nr, size_t k0, size_t kc) {
  using F = QFormat<T>;
  const size_t rowBytes = (w.ld / F::BS) * F::BB;
  for (size_t r = 0; r < nr; r++) {
    const uint8_t* row = static_cast<const uint8_t*>(w.data) + (r0 + r) * rowBytes;
    float* d = dst + r * ldd;
    for (size_t k = k0; k < k0 + kc; k += 32) {
      V16 lo, hi;
      F::chunk(row + (k / F::BS) * F::BB, (k % F::BS) / 32, lo, hi);
      vstore(d + (k - k0), lo);
      vstore(d + (k - k0) + 16, hi);
    }
  }
}

static inline void decode_rows(float* dst, size_t ldd, Weight w, size_t r0, size_t nr, size_t k0, size_t kc) {
  if (ls::packed::is_packed(w.type)) {
    if (k0 % 32 == 0 && kc % 32 == 0) {
      switch (w.type) {
        case WType::Q8_0: return decode_rows_simd<WType::Q8_0>(dst, ldd, w, r0, nr, k0, kc);
        case WType::Q4_0: return decode_rows_simd<WType::Q4_0>(dst, ldd, w, r0, nr, k0, kc);
        case WType::Q4_1: return decode_rows_simd<WType::Q4_1>(dst, ldd, w, r0, nr, k0, kc);
        case WType::Q4_K: return decode_rows_simd<WType::Q4_K>(dst, ldd, w, r0, nr, k0, kc);
        case WType::Q6_K: return decode_rows_simd<WType::Q6_K>(dst, ldd, w, r0, nr, k0, kc);
        default: break;
      }
    }
    for (size_t r = 0; r < nr; r++) ls::packed::decode_row(dst + r * ldd, w, r0 + r, k0, kc);
    return;
  }
  if (w.type == WType::F32) {
    const float* src = static_cast<const float*>(w.data);
    for (size_t r = 0; r < nr; r++) {
      // Rows a weight-row stride apart defeat the hardware prefetchers: ask for the rows 16 ahead.
      LS_PREFETCH(src + (r0 + r + 16) * w.ld + k0);
      LS_PREFETCH(src + (r0 + r + 16) * w.ld + k0 + kc - 1);
      std::memcpy(dst + r * ldd, src + (r0 + r) * w.ld + k0, kc * sizeof(float));
    }
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(w.data);
  for (size_t r = 0; r < nr; r++) {
    const uint16_t* s = src + (r0 + r) * w.ld + k0;
    float* d = dst + r * ldd;
    size_t k = 0;
    for (; k + 16 <= kc; k += 16) vstore(d + k, vload(s + k));
    if (k < kc) vstore_part(d + k, vload_part(s + k, (int)(kc - k)), (int)(kc - k));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// gemm_abt: dot products. Output (i, j) = reduce16(lane sums over k ≡ l mod 16) — independent of the tile it falls
// in, so a one-row product (decoding) gives a row of the full product bit for bit.

template <int MR, int NR, typename W>
static LS_INLINE void abt_tile(const float* a, size_t lda, const W* b, size_t ldb, size_t K, float* sums) {
  V16 acc[MR * NR];
  for (int i = 0; i < MR * NR; i++) acc[i] = vzero();
  size_t k = 0;
  for (; k + 16 <= K; k += 16) {
    V16 av[MR];
    for (int i = 0; i < MR; i++) av[i] = vload(a + i * lda + k);
    for (int j = 0; j < NR; j++) {
      const V16 bv = vload(b + j * ldb + k);
      for (int i = 0; i < MR; i++) acc[i * NR + j] = vfma(av[i], bv, acc[i * NR + j]);
    }
  }
  if (k < K) {
    const int n = (int)(K - k);
    V16 av[MR];
    for (int i = 0; i < MR; i++) av[i] = vload_part(a + i * lda + k, n);
    for (int j = 0; j < NR; j++) {
      const V16 bv = vload_part(b + j * ldb + k, n);
      for (int i = 0; i < MR; i++) acc[i * NR + j] = vfma(av[i], bv, acc[i * NR + j]);
    }
  }
  int t = 0;
  for (; t + 16 <= MR * NR; t += 16) reduce16x16(acc + t, sums + t);
  for (; t < MR * NR; t++) sums[t] = reduce16(acc[t]);
}

struct AbtArgs {
  float* out;
  size_t ldo;
  const float* a;
  size_t lda;
  const void* b;
  size_t ldb;
  const float* bias;
  size_t M, K, N;
  float alpha;
  bool accumulate;
};

static LS_INLINE void store_out(float* o, float s, float alpha, const float* bias, size_t j, bool accumulate) {
  float v = s * alpha;
  if (bias) v = v + bias[j];
  *o = accumulate ? *o + v : v;
}

template <int MR, int NR, typename W>
static LS_INLINE void abt_block(const AbtArgs& p, size_t i0, size_t j0) {
  float sums[MR * NR];
  abt_tile<MR, NR, W>(p.a + i0 * p.lda, p.lda, static_cast<const W*>(p.b) + j0 * p.ldb, p.ldb, p.K, sums);
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NR; j++) store_out(p.out + (i0 + i) * p.ldo + j0 + j, sums[i * NR + j], p.alpha, p.bias, j0 + j, p.accumulate);
}

/** Edge tiles: m ≤ MR rows, n ≤ NR columns, dispatched to a fixed-size instance. */
template <int MR, typename W>
static inline void abt_edge_n(const AbtArgs& p, size_t i0, size_t j0, size_t n) {
  if constexpr (ABT_NR >= 1) if (n == 1) return abt_block<MR, 1, W>(p, i0, j0);
  if constexpr (ABT_NR >= 2) if (n == 2) return abt_block<MR, 2, W>(p, i0, j0);
  if constexpr (ABT_NR >= 3) if (n == 3) return abt_block<MR, 3, W>(p, i0, j0);
  if constexpr (ABT_NR >= 4) if (n == 4) return abt_block<MR, 4, W>(p, i0, j0);
  if constexpr (ABT_NR >= 5) if (n == 5) return abt_block<MR, 5, W>(p, i0, j0);
  if constexpr (ABT_NR >= 6) if (n == 6) return abt_block<MR, 6, W>(p, i0, j0);
}

template <typename W>
static inline void abt_tiles(const AbtArgs& p, size_t i0, size_t m, size_t j0, size_t n) {
  if constexpr (ABT_MR >= 1) if (m == 1) return abt_edge_n<1, W>(p, i0, j0, n);
  if constexpr (ABT_MR >= 2) if (m == 2) return abt_edge_n<2, W>(p, i0, j0, n);
  if constexpr (ABT_MR >= 3) if (m == 3) return abt_edge_n<3, W>(p, i0, j0, n);
  if constexpr (ABT_MR >= 4) if (m == 4) return abt_edge_n<4, W>(p, i0, j0, n);
}

template <typename W>
static void abt_range(const AbtArgs& p, size_t i0, size_t i1, size_t j0, size_t j1) {
  for (size_t i = i0; i < i1; i += ABT_MR) {
    const size_t m = std::min<size_t>(ABT_MR, i1 - i);
    size_t j = j0;
    if (m == ABT_MR)
      for (; j + ABT_NR <= j1; j += ABT_NR) abt_block<ABT_MR, ABT_NR, W>(p, i, j);
    for (; j < j1; j += ABT_NR) abt_tiles<W>(p, i, m, j, std::min<size_t>(ABT_NR, j1 - j));
  }
}

/** Columns per task: a block of weight rows that stays in L2 (≈ 192 KiB) while every row tile passes over it. */
static inline size_t abt_cols_per_task(size_t K, size_t elt) {
  size_t nb = (192 * 1024) / std::max<size_t>(1, K * elt);
  nb = std::max<size_t>(ABT_NR, nb / ABT_NR * ABT_NR);
  return nb;
}

static thread_local std::vector<float> abt_panel;

/**
 * gemm_abt over a packed weight: each task decodes its block of weight rows (columns j0..j1 of out: about 192 KiB of
 * f32, per thread) into a panel and runs the f32 kernel on it. An output's sum does not depend on its tile, and the
 * panel holds exactly the dequantized values, so the result is the f32 product on the dequantized weight, bit for bit.
 */
static void gemm_abt_packed(float* out, size_t ldo, const float* a, size_t lda, Weight b, const float* bias, size_t M, size_t K, size_t N, float alpha, bool accumulate) {
  const size_t nb = abt_cols_per_task(K, 4);
  // More rows per task than f32's 64: each task decodes its panel once, so fewer row blocks decode less often.
  const size_t mb = 256;
  const size_t colTasks = (N + nb - 1) / nb, rowTasks = (M + mb - 1) / mb;
  const double work = (double)M * (double)N * (double)K;
  const size_t tasks = work < 262144.0 ? 1 : colTasks * rowTasks;
  auto run = [&](size_t t) {
    size_t i0 = 0, i1 = M, c0 = 0, c1 = N;
    if (tasks > 1) {
      const size_t rb = t % rowTasks, cb = t / rowTasks;
      i0 = rb * mb, i1 = std::min(M, i0 + mb), c0 = cb * nb, c1 = std::min(N, c0 + nb);
    }
    std::vector<float>& panel = abt_panel;
    if (panel.size() < nb * K) panel.resize(nb * K);
    for (size_t j0 = c0; j0 < c1; j0 += nb) {
      const size_t n = std::min(nb, c1 - j0);
      decode_rows(panel.data(), K, b, j0, n, 0, K);
      const AbtArgs q{out + j0, ldo, a, lda, panel.data(), K, bias ? bias + j0 : nullptr, M, K, n, alpha, accumulate};
      abt_range<float>(q, i0, i1, 0, n);
    }
  };
  ls::parallel(tasks, run);
}

// ---------------------------------------------------------------------------------------------------------------
// Packed matrix-vector products (decoding: one row of a, or a few): each weight block is decoded in registers, 32
// values at a time, and dotted with a at once, so the weight is read from memory as stored (5–8.5 bits a value) and
// never written out as floats. The decoded values are packed-decode.h's (dequantize()'s) — the same f32 operations: an
// exact int → float conversion, then ·d, then −min / +m where the format has one, each rounded on its own — and every
// output's 16 lanes take them in k order exactly as abt_tile does, so the result is the panel path's, and the
// dequantized f32 product's, bit for bit.

/** Weight rows dotted at once (independent accumulator chains hide the FMA latency); not part of any sum's order. */
#if defined(LS_ISA_AVX512)
constexpr int QV_NR = 4;
#else
constexpr int QV_NR = 2;
#endif
/** Rows of a up to which gemm_abt takes the matrix-vector path for a packed weight (each block is decoded once per
 * tile of QV_NR weight rows and used for all of them). */
constexpr size_t QV_MAX_M = 4;

/** sums[i·NR + j] = the dot of row i of a with weight row j (rows rowBytes apart from w), K = 32·chunks. */
template <WType T, int MR, int NR>
static LS_INLINE void qdot_tile(const float* a, size_t lda, const uint8_t* w, size_t rowBytes, size_t chunks, float* sums) {
  using F = QFormat<T>;
  constexpr size_t PER = F::BS / 32;
  V16 acc[MR * NR];
  for (int i = 0; i < MR * NR; i++) acc[i] = vzero();
  for (size_t c = 0; c < chunks; c++) {
    V16 xl[MR], xh[MR];
    for (int i = 0; i < MR; i++) {
      xl[i] = vload(a + i * lda + 32 * c);
      xh[i] = vload(a + i * lda + 32 * c + 16);
    }
    const size_t blk = c / PER, sub = c % PER;
    for (int j = 0; j < NR; j++) {
      const uint8_t* y = w + j * rowBytes + blk * F::BB;
      if (sub == 0) LS_PREFETCH(y + 4 * F::BB);
      V16 lo, hi;
      F::chunk(y, sub, lo, hi);
      for (int i = 0; i < MR; i++) {
        acc[i * NR + j] = vfma(xl[i], lo, acc[i * NR + j]);
        acc[i * NR + j] = vfma(xh[i], hi, acc[i * NR + j]);
      }
    }
  }
  for (int t = 0; t < MR * NR; t++) sums[t] = reduce16(acc[t]);
}

/** Outputs [0, MR) × [j0, j1) of a small-M product over a weight of a fused format. */
template <WType T, int MR>
static void qdot_rows(const AbtArgs& p, size_t j0, size_t j1) {
  using F = QFormat<T>;
  const size_t chunks = p.K / 32, rowBytes = (p.K / F::BS) * F::BB;
  const uint8_t* w = static_cast<const uint8_t*>(p.b);
  float sums[MR * QV_NR];
  size_t j = j0;
  for (; j + QV_NR <= j1; j += QV_NR) {
    qdot_tile<T, MR, QV_NR>(p.a, p.lda, w + j * rowBytes, rowBytes, chunks, sums);
    for (int i = 0; i < MR; i++)
      for (int c = 0; c < QV_NR; c++) store_out(p.out + i * p.ldo + j + c, sums[i * QV_NR + c], p.alpha, p.bias, j + c, p.accumulate);
  }
  for (; j < j1; j++) {
    qdot_tile<T, MR, 1>(p.a, p.lda, w + j * rowBytes, rowBytes, chunks, sums);
    for (int i = 0; i < MR; i++) store_out(p.out + i * p.ldo + j, sums[i], p.alpha, p.bias, j, p.accumulate);
  }
}

template <WType T>
static void qdot_rows_m(const AbtArgs& p, size_t j0, size_t j1) {
  switch (p.M) {
    case 1: return qdot_rows<T, 1>(p, j0, j1);
    case 2: return qdot_rows<T, 2>(p, j0, j1);
    case 3: return qdot_rows<T, 3>(p, j0, j1);
    default: return qdot_rows<T, 4>(p, j0, j1);
  }
}

/** Weight rows per task of the small-M packed products: whole tiles; which task computes an output changes nothing. */
constexpr size_t QV_ROWS_PER_TASK = 32;

/**
 * gemm_abt for M ≤ QV_MAX_M on a packed weight. q8_0, q4_0, q4_1, q4_k, q6_k: the fused decode-and-dot above.
 * nf4 and int4-g128 (blocks that run across rows, groups that need not be whole) decode a few weight rows at a time into an L1-sized panel and run the f32 tile on it
 * (the panel path's order, so the same bits).
 */
static void gemm_abt_packed_small(float* out, size_t ldo, const float* a, size_t lda, Weight b, const float* bias, size_t M, size_t K, size_t N, float alpha, bool accumulate) {
  const AbtArgs p{out, ldo, a, lda, b.data, b.ld, bias, M, K, N, alpha, accumulate};
  const size_t tasks = (double)M * (double)N * (double)K < 131072.0 ? 1 : (N + QV_ROWS_PER_TASK - 1) / QV_ROWS_PER_TASK;
  const size_t per = tasks == 1 ? N : QV_ROWS_PER_TASK;
  auto run = [&](size_t t) {
    const size_t j0 = t * per, j1 = std::min(N, j0 + per);
    switch (b.type) {
      case WType::Q8_0: return qdot_rows_m<WType::Q8_0>(p, j0, j1);
      case WType::Q4_0: return qdot_rows_m<WType::Q4_0>(p, j0, j1);
      case WType::Q4_1: return qdot_rows_m<WType::Q4_1>(p, j0, j1);
      case WType::Q4_K: return qdot_rows_m<WType::Q4_K>(p, j0, j1);
      case WType::Q6_K: return qdot_rows_m<WType::Q6_K>(p, j0, j1);
      default: break;
    }
    // About 16 KiB of decoded rows, whole ABT_NR tiles.
    const size_t rows = std::max<size_t>(ABT_NR, (16384 / std::max<size_t>(1, K * 4)) / ABT_NR * ABT_NR);
    std::vector<float>& panel = abt_panel;
    if (panel.size() < rows * K) panel.resize(rows * K);
    for (size_t r0 = j0; r0 < j1; r0 += rows) {
      const size_t n = std::min(rows, j1 - r0);
      decode_rows(panel.data(), K, b, r0, n, 0, K);
      const AbtArgs q{out + r0, ldo, a, lda, panel.data(), K, bias ? bias + r0 : nullptr, M, K, n, alpha, accumulate};
      abt_range<float>(q, 0, M, 0, n);
    }
  };
  ls::parallel(tasks, run);
}

static void gemm_abt(float* out, size_t ldo, const float* a, size_t lda, Weight b, const float* bias, size_t M, size_t K, size_t N, float alpha, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (ls::packed::is_packed(b.type) && M <= QV_MAX_M) return gemm_abt_packed_small(out, ldo, a, lda, b, bias, M, K, N, alpha, accumulate);
  if (ls::packed::is_packed(b.type)) return gemm_abt_packed(out, ldo, a, lda, b, bias, M, K, N, alpha, accumulate);
  const AbtArgs p{out, ldo, a, lda, b.data, b.ld, bias, M, K, N, alpha, accumulate};
  const bool f16 = b.type == WType::F16;
  const size_t nb = abt_cols_per_task(K, f16 ? 2 : 4);
  const size_t mb = 64;
  const size_t colTasks = (N + nb - 1) / nb, rowTasks = (M + mb - 1) / mb;
  const double work = (double)M * (double)N * (double)K;
  const size_t tasks = work < 262144.0 ? 1 : colTasks * rowTasks;
  auto run = [&](size_t t) {
    if (tasks == 1) {
      if (f16) abt_range<uint16_t>(p, 0, M, 0, N);
      else abt_range<float>(p, 0, M, 0, N);
      return;
    }
    const size_t rb = t % rowTasks, cb = t / rowTasks;
    const size_t i0 = rb * mb, i1 = std::min(M, i0 + mb), j0 = cb * nb, j1 = std::min(N, j0 + nb);
    if (f16) abt_range<uint16_t>(p, i0, i1, j0, j1);
    else abt_range<float>(p, i0, i1, j0, j1);
  };
  ls::parallel(tasks, run);
}

// ---------------------------------------------------------------------------------------------------------------
// gemm_nn: outer products. Output (i, n) = Σ over k-blocks of GEMM_KC (in order) of a fused-multiply-add chain over
// the block from zero. b is packed a panel (GEMM_KC × NN_NS) at a time through decode_rows.

/** Where a k-block's sums go: the task's scratch (more blocks follow), or — for the last block — the output. */
struct NnOut {
  float* c;       // scratch tile [MR][NN_NS] of the sums of the blocks so far
  bool first;     // this is the first k-block (the scratch holds nothing yet)
  bool last;      // this is the last k-block: write alpha·sum (+ out) to out
  float* out;     // out row of the tile's first row, at the strip's first column
  size_t ldo;
  int cols;       // valid columns of the strip (≤ NN_NS)
  float alpha;
  bool accumulate;
};

template <int MR>
static LS_INLINE void nn_tile(const float* a, size_t rsa, size_t csa, const float* panel, size_t ldp, size_t kc, const NnOut& o) {
  V16 acc[MR][NN_NV];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NN_NV; v++) acc[i][v] = vzero();
  for (size_t k = 0; k < kc; k++) {
    V16 bv[NN_NV];
    for (int v = 0; v < NN_NV; v++) bv[v] = vload(panel + k * ldp + 16 * v);
    const float* ak = a + k * csa;
    for (int i = 0; i < MR; i++) {
      const V16 x = vset1(ak[i * rsa]);
      for (int v = 0; v < NN_NV; v++) acc[i][v] = vfma(x, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NN_NV; v++) {
      float* ci = o.c + i * NN_NS + 16 * v;
      const V16 sum = o.first ? acc[i][v] : vadd(vload(ci), acc[i][v]);
      if (!o.last) {
        vstore(ci, sum);
        continue;
      }
      const int w = o.cols - 16 * v;
      if (w <= 0) continue;
      float* oi = o.out + i * o.ldo + 16 * v;
      const int n = w < 16 ? w : 16;
      V16 r = vmul(sum, vset1(o.alpha));
      if (o.accumulate) r = vadd(vload_n(oi, n), r);
      if (n == 16) vstore(oi, r);
      else vstore_part(oi, r, n);
    }
}

template <int MR>
static inline void nn_tile_m(int m, const float* a, size_t rsa, size_t csa, const float* panel, size_t ldp, size_t kc, const NnOut& o) {
  if constexpr (MR > 1)
    if (m < MR) return nn_tile_m<MR - 1>(m, a, rsa, csa, panel, ldp, kc, o);
  nn_tile<MR>(a, rsa, csa, panel, ldp, kc, o);
}

/** Rows per gemm_nn task, and strips (NN_NS columns each) per task: a task packs its strips' panels for one k-block
 * (contiguous runs of NN_SG·NN_NS floats per weight row, which the prefetchers follow) and runs every row tile over
 * them. */
constexpr size_t NN_MB = 8 * NN_MR;
constexpr size_t NN_SG = 96 / NN_NS;

struct NnScratch {
  std::vector<float> panel, c;
};
static thread_local NnScratch nn_scratch;

/** Rows [i0, i1) × columns [n0, n1) of gemm_nn, on this thread (k-blocks outermost: the panel serves every row). */
static void nn_block(float* out, size_t ldo, const float* a, size_t rsa, size_t csa, Weight b, size_t i0, size_t i1, size_t K, size_t n0, size_t n1, float alpha, bool accumulate) {
  const size_t rows = i1 - i0;
  const size_t nw = n1 - n0;
  const size_t strips = (nw + NN_NS - 1) / NN_NS;
  const size_t ldp = strips * NN_NS;
  NnScratch& s = nn_scratch;
  if (K == 0) {
    for (size_t i = 0; i < rows; i++)
      if (!accumulate) std::fill(out + (i0 + i) * ldo + n0, out + (i0 + i) * ldo + n1, 0.f);
    return;
  }
  // A few rows (decoding) read f32 weights with whole strips in place (row stride = the weight's); otherwise each
  // k-block is packed through decode_rows into a contiguous panel of whole strips (zero-padded) that every row tile
  // then reads from L1/L2. Packing changes no value, so either way gives the same bits.
  const bool direct = b.type == WType::F32 && nw == ldp && rows <= (size_t)(2 * NN_MR);
  if (!direct && s.panel.size() < GEMM_KC * ldp) s.panel.resize(GEMM_KC * ldp);
  if (K > GEMM_KC && s.c.size() < rows * ldp) s.c.resize(rows * ldp);
  float* c = K > GEMM_KC ? s.c.data() : nullptr;
  for (size_t k0 = 0; k0 < K; k0 += GEMM_KC) {
    const size_t kc = std::min(GEMM_KC, K - k0);
    const float* panel;
    size_t pld;
    if (direct) {
      panel = static_cast<const float*>(b.data) + k0 * b.ld + n0;
      pld = b.ld;
    } else {
      // Panel row k = b[k0 + k][n0 .. n1), zero-padded to whole strips: rows of the weight, as decode_rows gives them.
      decode_rows(s.panel.data(), ldp, b, k0, kc, n0, nw);
      if (nw < ldp)
        for (size_t k = 0; k < kc; k++) std::memset(s.panel.data() + k * ldp + nw, 0, (ldp - nw) * sizeof(float));
      panel = s.panel.data();
      pld = ldp;
    }
    const float* ak = a + k0 * csa;
    const bool first = k0 == 0, last = k0 + kc >= K;
    alignas(64) float single[NN_MR * NN_NS];
    for (size_t st = 0; st < strips; st++)
      for (size_t i = 0; i < rows; i += NN_MR) {
        const int m = (int)std::min<size_t>(NN_MR, rows - i);
        const NnOut o{c ? c + (st * rows + i) * NN_NS : single, first, last, out + (i0 + i) * ldo + n0 + st * NN_NS, ldo, (int)std::min<size_t>(NN_NS, nw - st * NN_NS), alpha, accumulate};
        nn_tile_m<NN_MR>(m, ak + (i0 + i) * rsa, rsa, csa, panel + st * NN_NS, pld, kc, o);
      }
  }
}

static void gemm_nn(float* out, size_t ldo, const float* a, size_t rsa, size_t csa, Weight b, size_t M, size_t K, size_t N, float alpha, bool accumulate) {
  if (M == 0 || N == 0) return;
  const double work = (double)M * (double)N * (double)K;
  if (work < 262144.0) {
    const size_t cols = NN_SG * NN_NS;
    for (size_t n0 = 0; n0 < N; n0 += cols)
      for (size_t i0 = 0; i0 < M; i0 += NN_MB) nn_block(out, ldo, a, rsa, csa, b, i0, std::min(M, i0 + NN_MB), K, n0, std::min(N, n0 + cols), alpha, accumulate);
    return;
  }
  size_t mb = NN_MB, cols = NN_SG * NN_NS;
  if (ls::packed::is_packed(b.type)) {
    // A packed weight is decoded into each task's panels: 256 columns (whole blocks of every format, K-quants' 256
    // included, so none is decoded for a few of its values) and more rows per task (each panel decoded fewer times).
    // Which task computes an output never changes how it is computed.
    mb = 4 * NN_MB;
    cols = 256;
  }
  if (K > 8 * GEMM_KC && M <= 32 * (size_t)NN_MR) {
    // A long inner dimension (cross-entropy's vocabulary: both operands bigger than the caches): one task per thread,
    // each with all rows and its share of the columns, so a and b are each streamed from memory about once. Which task
    // computes an output never changes how it is computed, so this split may follow the thread count.
    mb = M;
    const size_t t = (size_t)std::max(1, ls::threads());
    cols = std::max<size_t>(NN_NS, ((N + t - 1) / t + NN_NS - 1) / NN_NS * NN_NS);
  }
  const size_t colTasks = (N + cols - 1) / cols, rowTasks = (M + mb - 1) / mb;
  ls::parallel(colTasks * rowTasks, [&](size_t t) {
    const size_t rb = t % rowTasks, cb = t / rowTasks;
    const size_t i0 = rb * mb, n0 = cb * cols;
    nn_block(out, ldo, a, rsa, csa, b, i0, std::min(M, i0 + mb), K, n0, std::min(N, n0 + cols), alpha, accumulate);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// exp: range reduction to r = x − n·ln2 (|r| ≤ ln2/2) and Cephes' degree-6 polynomial, all with fused multiply-adds,
// so every ISA gives the same bits (≈ 1 ulp from the correctly rounded value). Inputs below −87.3 give 0; above 88.3
// are clamped (the kernels only exponentiate x ≤ 0 and sigmoid arguments).

static LS_INLINE V16 vexp16(V16 x) {
  const V16 lo = vset1(-87.33654f), hi = vset1(88.3762626647949f);
  const V16 xc = vmin(vmax(x, lo), hi);
  const V16 n = vround(vmul(xc, vset1(1.44269504088896341f)));
  V16 r = vfma(n, vset1(-0.693359375f), xc);
  r = vfma(n, vset1(2.12194440e-4f), r);
  V16 p = vset1(1.9875691500E-4f);
  p = vfma(p, r, vset1(1.3981999507E-3f));
  p = vfma(p, r, vset1(8.3334519073E-3f));
  p = vfma(p, r, vset1(4.1665795894E-2f));
  p = vfma(p, r, vset1(1.6666665459E-1f));
  p = vfma(p, r, vset1(5.0000001201E-1f));
  const V16 rr = vmul(r, r);
  p = vadd(vfma(p, rr, r), vset1(1.f));
  const V16 y = vldexp(p, n);
  return vselect_lt(x, lo, vzero(), y);
}

static void vexp(float* out, const float* x, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vstore(out + i, vexp16(vload(x + i)));
  if (i < n) vstore_part(out + i, vexp16(vload_part(x + i, (int)(n - i))), (int)(n - i));
}

/** Σ x[i]·y[i] over n in the canonical order (lanes i mod 16, then the tree). */
static LS_INLINE float dot16(const float* x, const float* y, size_t n) {
  V16 acc = vzero();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) acc = vfma(vload(x + i), vload(y + i), acc);
  if (i < n) acc = vfma(vload_part(x + i, (int)(n - i)), vload_part(y + i, (int)(n - i)), acc);
  return reduce16(acc);
}

/** Splits n rows into tasks of at least `grain` rows (fewer tasks for small inputs). */
template <typename F>
static inline void rows_parallel(size_t n, size_t grain, F&& f) {
  const size_t tasks = std::max<size_t>(1, std::min<size_t>(64, n / std::max<size_t>(1, grain)));
  const size_t per = (n + tasks - 1) / tasks;
  ls::parallel(tasks, [&](size_t t) {
    const size_t r0 = t * per, r1 = std::min(n, r0 + per);
    for (size_t r = r0; r < r1; r++) f(r);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// RMSNorm (transformers' LlamaRMSNorm in fp32): r = 1/sqrt(mean(x²) + eps), out = round(x·r)·w.

static void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, size_t N, size_t C, float eps) {
  rows_parallel(N, 32, [&](size_t n) {
    const float* xr = x + n * C;
    float* o = out + n * C;
    const float ss = dot16(xr, xr, C);
    const float r = 1.f / std::sqrt(ss / (float)C + eps);
    rstd[n] = r;
    size_t c = 0;
    const V16 rv = vset1(r);
    for (; c + 16 <= C; c += 16) vstore(o + c, vmul(vmul(vload(xr + c), rv), vload(w + c)));
    for (; c < C; c++) o[c] = (xr[c] * r) * w[c];
  });
}

/** dx += r·w·dy − (r³/C)·x·Σ w·dy·x. */
static void rmsnorm_backward(float* dx, const float* dout, const float* x, const float* w, const float* rstd, size_t N, size_t C) {
  rows_parallel(N, 32, [&](size_t n) {
    const float* xr = x + n * C;
    const float* dy = dout + n * C;
    float* d = dx + n * C;
    const float r = rstd[n];
    V16 acc = vzero();
    size_t c = 0;
    for (; c + 16 <= C; c += 16) acc = vfma(vmul(vload(w + c), vload(dy + c)), vload(xr + c), acc);
    if (c < C) {
      const int m = (int)(C - c);
      acc = vfma(vmul(vload_part(w + c, m), vload_part(dy + c, m)), vload_part(xr + c, m), acc);
    }
    const float dot = reduce16(acc);
    const float k = (r * r * r * dot) / (float)C;
    const V16 rv = vset1(r), kv = vset1(k);
    for (c = 0; c + 16 <= C; c += 16) {
      const V16 v = vsub(vmul(vmul(rv, vload(w + c)), vload(dy + c)), vmul(kv, vload(xr + c)));
      vstore(d + c, vadd(vload(d + c), v));
    }
    for (; c < C; c++) d[c] += (r * w[c]) * dy[c] - k * xr[c];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// SwiGLU: out = silu(g)·up, silu(g) = g / (1 + exp(−g)).

static void swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  const size_t blocks = (n + 4095) / 4096;
  ls::parallel(n < 65536 ? 1 : std::min<size_t>(blocks, 64), [&](size_t t) {
    const size_t tasks = n < 65536 ? 1 : std::min<size_t>(blocks, 64);
    const size_t per = ((n + tasks - 1) / tasks + 15) / 16 * 16;
    const size_t i0 = t * per, i1 = std::min(n, i0 + per);
    const V16 one = vset1(1.f);
    for (size_t i = i0; i < i1; i += 16) {
      const int m = (int)std::min<size_t>(16, i1 - i);
      const V16 g = vload_n(gate + i, m), u = vload_n(up + i, m);
      const V16 e = vexp16(vsub(vzero(), g));
      const V16 o = vmul(vdiv(g, vadd(one, e)), u);
      if (m == 16) vstore(out + i, o);
      else vstore_part(out + i, o, m);
    }
  });
}

/** σ = 1/(1 + exp(−g)); dup (+)= d·g·σ; dgate (+)= d·up·σ·(1 + g·(1 − σ)). dgate may be dout (in place). */
static void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n, bool accumulate) {
  const size_t blocks = (n + 4095) / 4096;
  const size_t tasks = n < 65536 ? 1 : std::min<size_t>(blocks, 64);
  ls::parallel(tasks, [&](size_t t) {
    const size_t per = ((n + tasks - 1) / tasks + 15) / 16 * 16;
    const size_t i0 = t * per, i1 = std::min(n, i0 + per);
    const V16 one = vset1(1.f);
    for (size_t i = i0; i < i1; i += 16) {
      const int m = (int)std::min<size_t>(16, i1 - i);
      const V16 g = vload_n(gate + i, m), u = vload_n(up + i, m), d = vload_n(dout + i, m);
      const V16 sig = vdiv(one, vadd(one, vexp16(vsub(vzero(), g))));
      V16 du = vmul(vmul(d, g), sig);
      V16 dg = vmul(vmul(vmul(d, u), sig), vadd(one, vmul(g, vsub(one, sig))));
      if (accumulate) {
        du = vadd(vload_n(dup + i, m), du);
        dg = vadd(vload_n(dgate + i, m), dg);
      }
      if (m == 16) {
        vstore(dup + i, du);
        vstore(dgate + i, dg);
      } else {
        vstore_part(dup + i, du, m);
        vstore_part(dgate + i, dg, m);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Attention, flash-style: a block of ATT_BQ query rows at a time, their scores against the keys they see in a
// [ATT_BQ, keys] scratch (never a T × T matrix). Scores are dot products (gemm_abt's order: a query row against the
// cached keys gives the same bits in decoding as in a full forward); P·V is gemm_nn's order with its k-blocks aligned
// to absolute key positions (multiples of GEMM_KC), so decoding one row with a KV cache equals that row of the full
// forward, also with a sliding window. Softmax sums take lanes by absolute key index (j mod 16).

constexpr size_t ATT_BQ = 64;

struct AttScratch {
  std::vector<float> s, dp, acc_k, acc_v;
};
static thread_local AttScratch att_scratch;

static LS_INLINE size_t first_key(size_t pos, size_t window) { return window == 0 || pos + 1 < window ? 0 : pos + 1 - window; }

/** Scores S[t][j − j0] = q_t·k_j for rows t0..t1 of head h against keys [j0, j1). */
static void att_scores(float* S, size_t ldS, const float* q, const float* k, const AttnShape& s, size_t b, size_t h, size_t t0, size_t t1, size_t j0, size_t j1) {
  const size_t D = s.head_dim, qStride = s.heads * D, kStride = s.kv_heads * D;
  const size_t kvh = h / (s.heads / s.kv_heads);
  AbtArgs p{S, ldS, q + (b * s.q_len + t0) * qStride + h * D, qStride, k + (b * s.k_len + j0) * kStride + kvh * D, kStride, nullptr, t1 - t0, D, j1 - j0, 1.f, false};
  abt_range<float>(p, 0, t1 - t0, 0, j1 - j0);
}

/** Serial gemm_nn over f32 operands (attention's products inside one task). */
static void nn_serial(float* out, size_t ldo, const float* a, size_t rsa, size_t csa, const float* b, size_t ldb, size_t M, size_t K, size_t N, bool accumulate) {
  const Weight w{b, WType::F32, ldb};
  const size_t cols = NN_SG * NN_NS;
  for (size_t n0 = 0; n0 < N; n0 += cols)
    for (size_t i0 = 0; i0 < M; i0 += NN_MB) nn_block(out, ldo, a, rsa, csa, w, i0, std::min(M, i0 + NN_MB), K, n0, std::min(N, n0 + cols), 1.f, accumulate);
}

/** Row t's softmax weights over [lo, pos] in S (keys from j0): e_j = exp(S·scale − m), 0 outside; returns m and Σe. */
static LS_INLINE void att_softmax_row(float* Srow, size_t j0, size_t jn, size_t lo, size_t pos, float scale, float* maxOut, float* sumOut) {
  // Max over the visible keys (order-free).
  V16 mv = vset1(-INFINITY);
  for (size_t j = 0; j < jn; j += 16) {
    const int m = (int)std::min<size_t>(16, jn - j);
    V16 x = vmul(vload_n(Srow + j, m), vset1(scale));
    // Invisible keys count as −inf.
    alignas(64) float t[16];
    vstore(t, x);
    for (int l = 0; l < 16; l++) {
      const size_t jj = j0 + j + l;
      if (l >= m || jj < lo || jj > pos) t[l] = -INFINITY;
    }
    mv = vmax(mv, vload(t));
  }
  const float mx = reduce_max16(mv);
  V16 sum = vzero();
  const V16 mvv = vset1(mx);
  for (size_t j = 0; j < jn; j += 16) {
    const int m = (int)std::min<size_t>(16, jn - j);
    V16 e = vexp16(vsub(vmul(vload_n(Srow + j, m), vset1(scale)), mvv));
    alignas(64) float t[16];
    vstore(t, e);
    for (int l = 0; l < 16; l++) {
      const size_t jj = j0 + j + l;
      if (l >= m || jj < lo || jj > pos) t[l] = 0.f;
    }
    e = vload(t);
    sum = vadd(sum, e);
    if (m == 16) vstore(Srow + j, e);
    else vstore_part(Srow + j, e, m);
  }
  *maxOut = mx;
  *sumOut = reduce16(sum);
}

static void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, AttnShape s) {
  const size_t D = s.head_dim, qStride = s.heads * D, kStride = s.kv_heads * D, group = s.heads / s.kv_heads;
  const size_t qOff = s.k_len - s.q_len;
  const size_t blocks = (s.q_len + ATT_BQ - 1) / ATT_BQ;
  const float scale = 1.f / std::sqrt((float)D);
  const size_t tasks = s.batch * s.heads * blocks;
  ls::parallel(tasks, [&](size_t task) {
    const size_t blk = task % blocks, h = (task / blocks) % s.heads, b = task / (blocks * s.heads);
    const size_t kvh = h / group;
    const size_t t0 = blk * ATT_BQ, t1 = std::min(s.q_len, t0 + ATT_BQ);
    const size_t j0 = first_key(qOff + t0, s.window) / GEMM_KC * GEMM_KC, j1 = qOff + t1;
    const size_t jn = j1 - j0;
    AttScratch& sc = att_scratch;
    if (sc.s.size() < ATT_BQ * jn) sc.s.resize(ATT_BQ * jn);
    float* S = sc.s.data();
    att_scores(S, jn, q, k, s, b, h, t0, t1, j0, j1);
    float inv[ATT_BQ];
    for (size_t t = t0; t < t1; t++) {
      const size_t pos = qOff + t;
      float mx, sum;
      att_softmax_row(S + (t - t0) * jn, j0, jn, first_key(pos, s.window), pos, scale, &mx, &sum);
      inv[t - t0] = 1.f / sum;
      if (lse) lse[(b * s.heads + h) * s.q_len + t] = mx + std::log(sum);
    }
    float* o = out + (b * s.q_len + t0) * qStride + h * D;
    nn_serial(o, qStride, S, jn, 1, v + (b * s.k_len + j0) * kStride + kvh * D, kStride, t1 - t0, jn, D, false);
    for (size_t t = 0; t < t1 - t0; t++) {
      const V16 iv = vset1(inv[t]);
      float* ot = o + t * qStride;
      size_t d = 0;
      for (; d + 16 <= D; d += 16) vstore(ot + d, vmul(vload(ot + d), iv));
      for (; d < D; d++) ot[d] = ot[d] * inv[t];
    }
  });
}

/** Keys [j0, j0 + n) of kv head kvh of sequence b, transposed: out[d][j] with row stride ld (columns ≥ n zero). */
static void att_transpose(float* out, size_t ld, const float* k, const AttnShape& s, size_t b, size_t kvh, size_t j0, size_t n) {
  const size_t D = s.head_dim, kStride = s.kv_heads * D;
  for (size_t d = 0; d < D; d++) std::fill(out + d * ld + n, out + (d + 1) * ld, 0.f);
  for (size_t j = 0; j < n; j++) {
    const float* kr = k + (b * s.k_len + j0 + j) * kStride + kvh * D;
    for (size_t d = 0; d < D; d++) out[d * ld + j] = kr[d];
  }
}

/**
 * For rows t0..t1 of head h against keys [j0, j0 + jn) given transposed (kt, vt: [D][ld]): P = exp(S·scale − lse)
 * (0 where a key is not visible) into P, and dS = P·(dP − Δ)·scale into dS, with S = q·kᵀ and dP = dO·vᵀ (outer
 * products: backward has no decoding to agree with) and Δ_t = dO_t·O_t (the row's Σ P·dP over all its keys, whichever
 * tile this is).
 */
static void att_backward_tile(float* P, float* dS, size_t ld, const float* kt, const float* vt, const float* dout, const float* lse, const float* delta, const float* q, const AttnShape& s, size_t b, size_t h, size_t t0, size_t t1, size_t j0, size_t jn, float scale) {
  const size_t D = s.head_dim, qStride = s.heads * D, qOff = s.k_len - s.q_len, rows = t1 - t0;
  nn_serial(P, ld, q + (b * s.q_len + t0) * qStride + h * D, qStride, 1, kt, ld, rows, D, ld, false);
  nn_serial(dS, ld, dout + (b * s.q_len + t0) * qStride + h * D, qStride, 1, vt, ld, rows, D, ld, false);
  const V16 sv = vset1(scale);
  for (size_t t = t0; t < t1; t++) {
    const size_t pos = qOff + t, lo = first_key(pos, s.window);
    float* Pr = P + (t - t0) * ld;
    float* dSr = dS + (t - t0) * ld;
    const size_t row = (b * s.heads + h) * s.q_len + t;
    const V16 l = vset1(lse[row]), dl = vset1(delta[row]);
    for (size_t j = 0; j < jn; j += 16) {
      const int m = (int)std::min<size_t>(16, jn - j);
      V16 e = vexp16(vsub(vmul(vload_n(Pr + j, m), sv), l));
      const size_t jj0 = j0 + j;
      if (jj0 < lo || jj0 + 16 > pos + 1 || m < 16) {
        alignas(64) float t16[16];
        vstore(t16, e);
        for (int x = 0; x < 16; x++) {
          const size_t jj = jj0 + x;
          if (x >= m || jj < lo || jj > pos) t16[x] = 0.f;
        }
        e = vload(t16);
      }
      const V16 ds = vmul(vmul(e, vsub(vload_n(dSr + j, m), dl)), sv);
      if (m == 16) {
        vstore(Pr + j, e);
        vstore(dSr + j, ds);
      } else {
        vstore_part(Pr + j, e, m);
        vstore_part(dSr + j, ds, m);
      }
    }
  }
}

struct AttBwdScratch {
  std::vector<float> p, ds, kt, vt, acc_k, acc_v;
};
static thread_local AttBwdScratch att_bwd;

/**
 * Backward in two passes so that every task owns what it writes: (b, h, query block) tasks add dQ, then (b, kv head,
 * key block) tasks add dK and dV over every query row and query head that sees their keys. Both recompute P.
 */
static void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k, const float* v, AttnShape s) {
  const size_t D = s.head_dim, qStride = s.heads * D, kStride = s.kv_heads * D, group = s.heads / s.kv_heads;
  const size_t qOff = s.k_len - s.q_len;
  const float scale = 1.f / std::sqrt((float)D);
  const size_t qBlocks = (s.q_len + ATT_BQ - 1) / ATT_BQ;
  std::vector<float> deltas(s.batch * s.heads * s.q_len);
  float* delta = deltas.data();
  rows_parallel(s.batch * s.q_len, 64, [&](size_t bt) {
    for (size_t h = 0; h < s.heads; h++) {
      const size_t o = bt * qStride + h * D;
      delta[((bt / s.q_len) * s.heads + h) * s.q_len + bt % s.q_len] = dot16(dout + o, out + o, D);
    }
  });
  auto room = [](std::vector<float>& x, size_t n) {
    if (x.size() < n) x.resize(n);
    return x.data();
  };
  ls::parallel(s.batch * s.heads * qBlocks, [&](size_t task) {
    const size_t blk = task % qBlocks, h = (task / qBlocks) % s.heads, b = task / (qBlocks * s.heads);
    const size_t kvh = h / group;
    const size_t t0 = blk * ATT_BQ, t1 = std::min(s.q_len, t0 + ATT_BQ);
    const size_t j0 = first_key(qOff + t0, s.window), j1 = qOff + t1, jn = j1 - j0;
    const size_t ld = (jn + NN_NS - 1) / NN_NS * NN_NS;
    AttBwdScratch& sc = att_bwd;
    float* kt = room(sc.kt, D * ld);
    float* vt = room(sc.vt, D * ld);
    float* P = room(sc.p, ATT_BQ * ld);
    float* dS = room(sc.ds, ATT_BQ * ld);
    att_transpose(kt, ld, k, s, b, kvh, j0, jn);
    att_transpose(vt, ld, v, s, b, kvh, j0, jn);
    att_backward_tile(P, dS, ld, kt, vt, dout, lse, delta, q, s, b, h, t0, t1, j0, jn, scale);
    // dQ rows += dS·K
    nn_serial(dq + (b * s.q_len + t0) * qStride + h * D, qStride, dS, ld, 1, k + (b * s.k_len + j0) * kStride + kvh * D, kStride, t1 - t0, jn, D, true);
  });
  const size_t kBlocks = (s.k_len + ATT_BQ - 1) / ATT_BQ;
  ls::parallel(s.batch * s.kv_heads * kBlocks, [&](size_t task) {
    const size_t kb = task % kBlocks, kvh = (task / kBlocks) % s.kv_heads, b = task / (kBlocks * s.kv_heads);
    const size_t j0 = kb * ATT_BQ, j1 = std::min(s.k_len, j0 + ATT_BQ), jn = j1 - j0;
    const size_t ld = (jn + NN_NS - 1) / NN_NS * NN_NS;
    AttBwdScratch& sc = att_bwd;
    float* kt = room(sc.kt, D * ld);
    float* vt = room(sc.vt, D * ld);
    float* P = room(sc.p, ATT_BQ * ld);
    float* dS = room(sc.ds, ATT_BQ * ld);
    float* accK = room(sc.acc_k, ATT_BQ * D);
    float* accV = room(sc.acc_v, ATT_BQ * D);
    std::fill(accK, accK + jn * D, 0.f);
    std::fill(accV, accV + jn * D, 0.f);
    att_transpose(kt, ld, k, s, b, kvh, j0, jn);
    att_transpose(vt, ld, v, s, b, kvh, j0, jn);
    // Query rows that see keys [j0, j1): positions pos ≥ j0 and (with a window) pos < j1 − 1 + window.
    const size_t pFirst = std::max(j0, qOff);
    const size_t pLast = s.window == 0 ? qOff + s.q_len : std::min(qOff + s.q_len, j1 - 1 + s.window);
    for (size_t h = kvh * group; pFirst < pLast && h < (kvh + 1) * group; h++) {
      for (size_t t0 = pFirst - qOff; t0 < pLast - qOff; t0 += ATT_BQ) {
        const size_t t1 = std::min(pLast - qOff, t0 + ATT_BQ);
        att_backward_tile(P, dS, ld, kt, vt, dout, lse, delta, q, s, b, h, t0, t1, j0, jn, scale);
        // dK rows += dSᵀ·Q, dV rows += Pᵀ·dO (over this block's query rows)
        nn_serial(accK, D, dS, 1, ld, q + (b * s.q_len + t0) * qStride + h * D, qStride, jn, t1 - t0, D, true);
        nn_serial(accV, D, P, 1, ld, dout + (b * s.q_len + t0) * qStride + h * D, qStride, jn, t1 - t0, D, true);
      }
    }
    for (size_t j = 0; j < jn; j++) {
      float* dkr = dk + (b * s.k_len + j0 + j) * kStride + kvh * D;
      float* dvr = dv + (b * s.k_len + j0 + j) * kStride + kvh * D;
      for (size_t d = 0; d < D; d++) {
        dkr[d] += accK[j * D + d];
        dvr[d] += accV[j * D + d];
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Cross-entropy over lm_head, a chunk of rows at a time: logits = h·lm_headᵀ (gemm_abt), per row max and Σ exp
// (lanes over the vocabulary index), loss = max + log Σ − logit[target] (in f64), the gradient (softmax − one-hot)·
// grad_scale written over the logits, then dh += dlogits·lm_head (gemm_nn).

struct CeScratch {
  std::vector<float> h, logits, dh;
};
static thread_local CeScratch ce_scratch;

static void cross_entropy(double* losses, float* dh, const float* hidden, Weight lm_head, const int32_t* rows, const int32_t* targets, size_t count, size_t H, size_t V, size_t chunk_rows, float grad_scale) {
  if (count == 0) return;
  const size_t cr = std::max<size_t>(1, std::min(chunk_rows, count));
  CeScratch& s = ce_scratch;
  s.h.resize(cr * H);
  s.logits.resize(cr * V);
  if (dh) s.dh.resize(cr * H);
  for (size_t c0 = 0; c0 < count; c0 += cr) {
    const size_t n = std::min(cr, count - c0);
    for (size_t i = 0; i < n; i++) std::memcpy(s.h.data() + i * H, hidden + (size_t)rows[c0 + i] * H, H * sizeof(float));
    gemm_abt(s.logits.data(), V, s.h.data(), H, lm_head, nullptr, n, H, V, 1.f, false);
    ls::parallel(n, [&](size_t i) {
      float* l = s.logits.data() + i * V;
      V16 mv = vset1(-INFINITY);
      size_t j = 0;
      for (; j + 16 <= V; j += 16) mv = vmax(mv, vload(l + j));
      float mx = reduce_max16(mv);
      for (; j < V; j++) mx = l[j] > mx ? l[j] : mx;
      const float target = l[targets[c0 + i]];
      V16 sum = vzero();
      const V16 m = vset1(mx);
      for (j = 0; j < V; j += 16) {
        const int w = (int)std::min<size_t>(16, V - j);
        const V16 e = vexp16(vsub(vload_n(l + j, w), m));
        if (w < 16) {
          // Lanes past V are exp(0 − max)·0 from vload_part: keep them out of the sum.
          alignas(64) float t[16];
          vstore(t, e);
          for (int x = w; x < 16; x++) t[x] = 0.f;
          sum = vadd(sum, vload(t));
          vstore_part(l + j, e, w);
        } else {
          sum = vadd(sum, e);
          vstore(l + j, e);
        }
      }
      const float total = reduce16(sum);
      losses[c0 + i] += (double)mx + std::log((double)total) - (double)target;
      if (dh) {
        const V16 kf = vset1(grad_scale / total);
        for (j = 0; j + 16 <= V; j += 16) vstore(l + j, vmul(vload(l + j), kf));
        for (; j < V; j++) l[j] = l[j] * (grad_scale / total);
        l[targets[c0 + i]] -= grad_scale;
      }
    });
    if (!dh) continue;
    gemm_nn(s.dh.data(), H, s.logits.data(), V, 1, lm_head, n, V, H, 1.f, false);
    for (size_t i = 0; i < n; i++) {
      float* d = dh + (size_t)rows[c0 + i] * H;
      const float* src = s.dh.data() + i * H;
      for (size_t c = 0; c < H; c++) d[c] += src[c];
    }
  }
}

static const Kernels table = {
#if defined(LS_ISA_AVX512)
    "avx512",
#elif defined(LS_ISA_AVX2)
    "avx2",
#elif defined(LS_ISA_NEON)
    "neon",
#else
    "scalar",
#endif
    gemm_abt, gemm_nn, vexp, rmsnorm_forward, rmsnorm_backward, swiglu_forward, swiglu_backward, attention_forward, attention_backward, cross_entropy,
};

}  // namespace LS_NS

namespace ls {
#if defined(LS_ISA_AVX512)
const Kernels* kernels_avx512() { return &LS_NS::table; }
#elif defined(LS_ISA_AVX2)
const Kernels* kernels_avx2() { return &LS_NS::table; }
#elif defined(LS_ISA_NEON)
const Kernels* kernels_neon() { return &LS_NS::table; }
#else
const Kernels* kernels_scalar() { return &LS_NS::table; }
#endif
}  // namespace ls
