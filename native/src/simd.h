// One 16-lane float vector type, V16, per instruction set. Every kernel is written once over V16 (kernels-impl.h) and
// compiled once per ISA (kernels-avx512.cpp, kernels-avx2.cpp, kernels-neon.cpp, kernels-scalar.cpp).
//
// Why 16 lanes everywhere: a dot product's summation order is part of its result. Sums over the inner dimension are
// split into 16 lanes (lane l takes k ≡ l mod 16, each lane a chain of fused multiply-adds in k order) and the lanes
// are combined by one fixed tree (reduce16). AVX-512 holds V16 in one register, AVX2 in two, NEON in four and the
// scalar fallback in sixteen floats; all of them perform the same IEEE operations on the same lanes, so every ISA,
// every thread count and every matrix height give the same bits.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(LS_ISA_AVX512) || defined(LS_ISA_AVX2)
#include <immintrin.h>
#elif defined(LS_ISA_NEON)
#include <arm_neon.h>
#endif

#if defined(_MSC_VER)
#define LS_INLINE __forceinline
#else
#define LS_INLINE inline __attribute__((always_inline))
#endif

// A hint only (reading past an array's end through a prefetch is harmless).
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define LS_PREFETCH(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
#elif defined(__GNUC__) || defined(__clang__)
#define LS_PREFETCH(p) __builtin_prefetch((const void*)(p), 0, 3)
#else
#define LS_PREFETCH(p) ((void)0)
#endif

namespace LS_NS {

static LS_INLINE float f16_to_f32_scalar(uint16_t h) {
  // Exact IEEE half → single (subnormals, inf and NaN included); the vector paths use the hardware conversion, which
  // gives the same values.
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

#if defined(LS_ISA_AVX512)
// ---------------------------------------------------------------------------------------------------------------
struct V16 {
  __m512 v;
};
static LS_INLINE V16 vzero() { return {_mm512_setzero_ps()}; }
static LS_INLINE V16 vset1(float x) { return {_mm512_set1_ps(x)}; }
static LS_INLINE V16 vload(const float* p) { return {_mm512_loadu_ps(p)}; }
static LS_INLINE V16 vload(const uint16_t* p) { return {_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p))}; }
/** The first n < 16 lanes from p, zeros in the rest (no read past p + n). */
static LS_INLINE V16 vload_part(const float* p, int n) { return {_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p)}; }
static LS_INLINE V16 vload_part(const uint16_t* p, int n) {
  return {_mm512_cvtph_ps(_mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), p))};
}
static LS_INLINE void vstore(float* p, V16 a) { _mm512_storeu_ps(p, a.v); }
static LS_INLINE void vstore_part(float* p, V16 a, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), a.v); }
static LS_INLINE V16 vfma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
static LS_INLINE V16 vadd(V16 a, V16 b) { return {_mm512_add_ps(a.v, b.v)}; }
static LS_INLINE V16 vsub(V16 a, V16 b) { return {_mm512_sub_ps(a.v, b.v)}; }
static LS_INLINE V16 vmul(V16 a, V16 b) { return {_mm512_mul_ps(a.v, b.v)}; }
static LS_INLINE V16 vdiv(V16 a, V16 b) { return {_mm512_div_ps(a.v, b.v)}; }
static LS_INLINE V16 vmax(V16 a, V16 b) { return {_mm512_max_ps(a.v, b.v)}; }
static LS_INLINE V16 vmin(V16 a, V16 b) { return {_mm512_min_ps(a.v, b.v)}; }
/** Rounds to the nearest integer, ties to even (as nearbyint in the default mode). */
static LS_INLINE V16 vround(V16 a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
/** a · 2^n for integral n in [-126, 127] held as floats. */
static LS_INLINE V16 vldexp(V16 a, V16 n) {
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23);
  return {_mm512_mul_ps(a.v, _mm512_castsi512_ps(e))};
}
/** Lanes where a < b take x, the others y. */
static LS_INLINE V16 vselect_lt(V16 a, V16 b, V16 x, V16 y) {
  return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ), y.v, x.v)};
}
static LS_INLINE float vlane(V16 a, int i) {
  alignas(64) float t[16];
  _mm512_store_ps(t, a.v);
  return t[i];
}
/** The canonical tree: lanes i and i+8, then i+4, then i+2, then i+1. */
static LS_INLINE float reduce16(V16 a) {
  __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a.v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a.v), 1)));
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}
/** max over the lanes (order does not matter for max). */
static LS_INLINE float reduce_max16(V16 a) { return _mm512_reduce_max_ps(a.v); }

/**
 * reduce16 of 16 vectors at once, out[i] = reduce16(a[i]); the same tree, done on transposed blocks with 45
 * instructions instead of 16 × 7.
 */
static LS_INLINE void reduce16x16(const V16* a, float* out) {
  __m512 l1[8], l2[4], l3[2];
  for (int p = 0; p < 8; p++) {
    __m512 x = a[2 * p].v, y = a[2 * p + 1].v;
    // blocks [x0 x1 y0 y1] + [x2 x3 y2 y3]: lanes 0-7 = x_i + x_{i+8}, lanes 8-15 = y_i + y_{i+8}
    l1[p] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  for (int p = 0; p < 4; p++) {
    __m512 x = l1[2 * p], y = l1[2 * p + 1];
    // blocks [X0 Y0 ...]: each 128-bit block now holds q_i = p_i + p_{i+4} of one vector
    l2[p] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  for (int p = 0; p < 2; p++) {
    __m512 x = l2[2 * p], y = l2[2 * p + 1];
    // per block [x0+x2, x1+x3, y0+y2, y1+y3]
    l3[p] = _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // per block [u0+u1, u2+u3, v0+v1, v2+v3]
  __m512 s = _mm512_add_ps(_mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(l3[0], l3[1], _MM_SHUFFLE(3, 1, 3, 1)));
  // Lane 4·b + j of s is the sum of vector (b after level 2's pairing) — work out the permutation once.
  alignas(64) float t[16];
  _mm512_store_ps(t, s);
  // Vector v went to: level 1 pair p1 = v/2, half h1 = v%2 (lanes 8h1..); level 2 pair p2 = p1/2, block within
  // the result = 2·(p1%2) + h1; level 3 pair p3 = p2/2, slot = 2·(p2%2) (+0/1 for r0/r1); level 4: position
  // p3·2 + (p2%2) within the block.
  for (int v = 0; v < 16; v++) {
    const int p1 = v >> 1, h1 = v & 1, p2 = p1 >> 1, blk = 2 * (p1 & 1) + h1, p3 = p2 >> 1;
    out[v] = t[4 * blk + 2 * p3 + (p2 & 1)];
  }
}

// Bytes to floats for the packed matrix-vector products (kernels-impl.h qdot): exact integer conversions.
/** 16 signed bytes as floats. */
static LS_INLINE V16 vload_i8(const int8_t* p) { return {_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)))}; }
/** The low nibbles of 16 bytes minus bias (lo) and the high nibbles minus bias (hi), as floats. */
static LS_INLINE void vload_nibbles(const uint8_t* p, int bias, V16& lo, V16& hi) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p), m = _mm_set1_epi8(15);
  const __m512i bv = _mm512_set1_epi32(bias);
  lo.v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(b, m)), bv));
  hi.v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(b, 4), m)), bv));
}
/** binary16 bits → f32 (the hardware conversion: exact, as f16_to_f32_scalar). */
static LS_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

#elif defined(LS_ISA_AVX2)
// ---------------------------------------------------------------------------------------------------------------
struct V16 {
  __m256 lo, hi;
};
static LS_INLINE V16 vzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
static LS_INLINE V16 vset1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
static LS_INLINE V16 vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
static LS_INLINE V16 vload(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(p + 8)))};
}
static LS_INLINE V16 vload_part(const float* p, int n) {
  alignas(32) float t[16] = {0};
  for (int i = 0; i < n; i++) t[i] = p[i];
  return {_mm256_load_ps(t), _mm256_load_ps(t + 8)};
}
static LS_INLINE V16 vload_part(const uint16_t* p, int n) {
  alignas(32) uint16_t t[16] = {0};
  for (int i = 0; i < n; i++) t[i] = p[i];
  return vload(t);
}
static LS_INLINE void vstore(float* p, V16 a) {
  _mm256_storeu_ps(p, a.lo);
  _mm256_storeu_ps(p + 8, a.hi);
}
static LS_INLINE void vstore_part(float* p, V16 a, int n) {
  alignas(32) float t[16];
  _mm256_store_ps(t, a.lo);
  _mm256_store_ps(t + 8, a.hi);
  for (int i = 0; i < n; i++) p[i] = t[i];
}
static LS_INLINE V16 vfma(V16 a, V16 b, V16 c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
static LS_INLINE V16 vadd(V16 a, V16 b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vsub(V16 a, V16 b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vmul(V16 a, V16 b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vdiv(V16 a, V16 b) { return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vmax(V16 a, V16 b) { return {_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vmin(V16 a, V16 b) { return {_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)}; }
static LS_INLINE V16 vround(V16 a) {
  return {_mm256_round_ps(a.lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), _mm256_round_ps(a.hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
}
static LS_INLINE __m256 ldexp8(__m256 a, __m256 n) {
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(a, _mm256_castsi256_ps(e));
}
static LS_INLINE V16 vldexp(V16 a, V16 n) { return {ldexp8(a.lo, n.lo), ldexp8(a.hi, n.hi)}; }
static LS_INLINE V16 vselect_lt(V16 a, V16 b, V16 x, V16 y) {
  return {_mm256_blendv_ps(y.lo, x.lo, _mm256_cmp_ps(a.lo, b.lo, _CMP_LT_OQ)), _mm256_blendv_ps(y.hi, x.hi, _mm256_cmp_ps(a.hi, b.hi, _CMP_LT_OQ))};
}
static LS_INLINE float vlane(V16 a, int i) {
  alignas(32) float t[16];
  _mm256_store_ps(t, a.lo);
  _mm256_store_ps(t + 8, a.hi);
  return t[i];
}
static LS_INLINE float reduce16(V16 a) {
  __m256 s8 = _mm256_add_ps(a.lo, a.hi);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}
static LS_INLINE float reduce_max16(V16 a) {
  __m256 m8 = _mm256_max_ps(a.lo, a.hi);
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
  __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  __m128 m1 = _mm_max_ss(m2, _mm_shuffle_ps(m2, m2, 1));
  return _mm_cvtss_f32(m1);
}
static LS_INLINE void reduce16x16(const V16* a, float* out) {
  for (int i = 0; i < 16; i++) out[i] = reduce16(a[i]);
}

static LS_INLINE V16 vload_i8(const int8_t* p) {
  return {_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p))), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)(p + 8))))};
}
static LS_INLINE void vload_nibbles(const uint8_t* p, int bias, V16& lo, V16& hi) {
  const __m128i b = _mm_loadu_si128((const __m128i*)p), m = _mm_set1_epi8(15);
  const __m128i l = _mm_and_si128(b, m), h = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  const __m256i bv = _mm256_set1_epi32(bias);
  auto cv = [&](__m128i x) { return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(x), bv)); };
  lo = {cv(l), cv(_mm_srli_si128(l, 8))};
  hi = {cv(h), cv(_mm_srli_si128(h, 8))};
}
static LS_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

#elif defined(LS_ISA_NEON)
// ---------------------------------------------------------------------------------------------------------------
struct V16 {
  float32x4_t a, b, c, d;
};
static LS_INLINE V16 vzero() {
  float32x4_t z = vdupq_n_f32(0.f);
  return {z, z, z, z};
}
static LS_INLINE V16 vset1(float x) {
  float32x4_t z = vdupq_n_f32(x);
  return {z, z, z, z};
}
static LS_INLINE V16 vload(const float* p) { return {vld1q_f32(p), vld1q_f32(p + 4), vld1q_f32(p + 8), vld1q_f32(p + 12)}; }
static LS_INLINE V16 vload(const uint16_t* p) {
  return {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4))),
          vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 8))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 12)))};
}
static LS_INLINE V16 vload_part(const float* p, int n) {
  float t[16] = {0};
  for (int i = 0; i < n; i++) t[i] = p[i];
  return vload(t);
}
static LS_INLINE V16 vload_part(const uint16_t* p, int n) {
  uint16_t t[16] = {0};
  for (int i = 0; i < n; i++) t[i] = p[i];
  return vload(t);
}
static LS_INLINE void vstore(float* p, V16 x) {
  vst1q_f32(p, x.a);
  vst1q_f32(p + 4, x.b);
  vst1q_f32(p + 8, x.c);
  vst1q_f32(p + 12, x.d);
}
static LS_INLINE void vstore_part(float* p, V16 x, int n) {
  float t[16];
  vstore(t, x);
  for (int i = 0; i < n; i++) p[i] = t[i];
}
#define LS_NEON_OP(name, expr) \
  static LS_INLINE V16 name(V16 x, V16 y) { return {expr(x.a, y.a), expr(x.b, y.b), expr(x.c, y.c), expr(x.d, y.d)}; }
LS_NEON_OP(vadd, vaddq_f32)
LS_NEON_OP(vsub, vsubq_f32)
LS_NEON_OP(vmul, vmulq_f32)
LS_NEON_OP(vdiv, vdivq_f32)
LS_NEON_OP(vmax, vmaxq_f32)
LS_NEON_OP(vmin, vminq_f32)
#undef LS_NEON_OP
static LS_INLINE V16 vfma(V16 x, V16 y, V16 z) { return {vfmaq_f32(z.a, x.a, y.a), vfmaq_f32(z.b, x.b, y.b), vfmaq_f32(z.c, x.c, y.c), vfmaq_f32(z.d, x.d, y.d)}; }
static LS_INLINE V16 vround(V16 x) { return {vrndnq_f32(x.a), vrndnq_f32(x.b), vrndnq_f32(x.c), vrndnq_f32(x.d)}; }
static LS_INLINE float32x4_t ldexp4(float32x4_t a, float32x4_t n) {
  int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(a, vreinterpretq_f32_s32(e));
}
static LS_INLINE V16 vldexp(V16 x, V16 n) { return {ldexp4(x.a, n.a), ldexp4(x.b, n.b), ldexp4(x.c, n.c), ldexp4(x.d, n.d)}; }
static LS_INLINE V16 vselect_lt(V16 p, V16 q, V16 x, V16 y) {
  return {vbslq_f32(vcltq_f32(p.a, q.a), x.a, y.a), vbslq_f32(vcltq_f32(p.b, q.b), x.b, y.b), vbslq_f32(vcltq_f32(p.c, q.c), x.c, y.c),
          vbslq_f32(vcltq_f32(p.d, q.d), x.d, y.d)};
}
static LS_INLINE float vlane(V16 x, int i) {
  float t[16];
  vstore(t, x);
  return t[i];
}
static LS_INLINE float reduce16(V16 x) {
  float32x4_t p0 = vaddq_f32(x.a, x.c), p1 = vaddq_f32(x.b, x.d);  // lanes i + i+8
  float32x4_t q = vaddq_f32(p0, p1);                                 // + i+4
  float32x2_t r = vadd_f32(vget_low_f32(q), vget_high_f32(q));       // + i+2
  return vget_lane_f32(r, 0) + vget_lane_f32(r, 1);                  // + i+1
}
static LS_INLINE float reduce_max16(V16 x) { return vmaxvq_f32(vmaxq_f32(vmaxq_f32(x.a, x.b), vmaxq_f32(x.c, x.d))); }
static LS_INLINE void reduce16x16(const V16* a, float* out) {
  for (int i = 0; i < 16; i++) out[i] = reduce16(a[i]);
}

static LS_INLINE V16 vload_i8(const int8_t* p) {
  const int8x16_t b = vld1q_s8(p);
  const int16x8_t l = vmovl_s8(vget_low_s8(b)), h = vmovl_s8(vget_high_s8(b));
  return {vcvtq_f32_s32(vmovl_s16(vget_low_s16(l))), vcvtq_f32_s32(vmovl_s16(vget_high_s16(l))), vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))),
          vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)))};
}
static LS_INLINE V16 neon_u8_minus(uint8x16_t b, int bias) {
  const int16x8_t bv = vdupq_n_s16((int16_t)bias);
  const int16x8_t l = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(b))), bv), h = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(b))), bv);
  return {vcvtq_f32_s32(vmovl_s16(vget_low_s16(l))), vcvtq_f32_s32(vmovl_s16(vget_high_s16(l))), vcvtq_f32_s32(vmovl_s16(vget_low_s16(h))),
          vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)))};
}
static LS_INLINE void vload_nibbles(const uint8_t* p, int bias, V16& lo, V16& hi) {
  const uint8x16_t b = vld1q_u8(p), m = vdupq_n_u8(15);
  lo = neon_u8_minus(vandq_u8(b, m), bias);
  hi = neon_u8_minus(vshrq_n_u8(b, 4), bias);
}
static LS_INLINE float h2f(uint16_t h) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0); }

#else  // LS_ISA_SCALAR
// ---------------------------------------------------------------------------------------------------------------
struct V16 {
  float x[16];
};
#define LS_LANES(body) \
  V16 r;               \
  for (int i = 0; i < 16; i++) r.x[i] = (body);  \
  return r
static LS_INLINE V16 vzero() { LS_LANES(0.f); }
static LS_INLINE V16 vset1(float v) { LS_LANES(v); }
static LS_INLINE V16 vload(const float* p) { LS_LANES(p[i]); }
static LS_INLINE V16 vload(const uint16_t* p) { LS_LANES(f16_to_f32_scalar(p[i])); }
static LS_INLINE V16 vload_part(const float* p, int n) { LS_LANES(i < n ? p[i] : 0.f); }
static LS_INLINE V16 vload_part(const uint16_t* p, int n) { LS_LANES(i < n ? f16_to_f32_scalar(p[i]) : 0.f); }
static LS_INLINE void vstore(float* p, V16 a) {
  for (int i = 0; i < 16; i++) p[i] = a.x[i];
}
static LS_INLINE void vstore_part(float* p, V16 a, int n) {
  for (int i = 0; i < n; i++) p[i] = a.x[i];
}
static LS_INLINE V16 vfma(V16 a, V16 b, V16 c) { LS_LANES(std::fmaf(a.x[i], b.x[i], c.x[i])); }
static LS_INLINE V16 vadd(V16 a, V16 b) { LS_LANES(a.x[i] + b.x[i]); }
static LS_INLINE V16 vsub(V16 a, V16 b) { LS_LANES(a.x[i] - b.x[i]); }
static LS_INLINE V16 vmul(V16 a, V16 b) { LS_LANES(a.x[i] * b.x[i]); }
static LS_INLINE V16 vdiv(V16 a, V16 b) { LS_LANES(a.x[i] / b.x[i]); }
// x86's max/min return the second operand when either is NaN or both are zeros; mirrored so all ISAs agree on finite
// inputs (NaN inputs are reported as non-finite results by the callers anyway).
static LS_INLINE V16 vmax(V16 a, V16 b) { LS_LANES(a.x[i] > b.x[i] ? a.x[i] : b.x[i]); }
static LS_INLINE V16 vmin(V16 a, V16 b) { LS_LANES(a.x[i] < b.x[i] ? a.x[i] : b.x[i]); }
static LS_INLINE V16 vround(V16 a) { LS_LANES(std::nearbyintf(a.x[i])); }
static LS_INLINE V16 vldexp(V16 a, V16 n) {
  V16 r;
  for (int i = 0; i < 16; i++) {
    uint32_t e = (uint32_t)((int32_t)n.x[i] + 127) << 23;
    float s;
    std::memcpy(&s, &e, 4);
    r.x[i] = a.x[i] * s;
  }
  return r;
}
static LS_INLINE V16 vselect_lt(V16 a, V16 b, V16 x, V16 y) { LS_LANES(a.x[i] < b.x[i] ? x.x[i] : y.x[i]); }
#undef LS_LANES
static LS_INLINE float vlane(V16 a, int i) { return a.x[i]; }
static LS_INLINE float reduce16(V16 a) {
  float p[8], q[4];
  for (int i = 0; i < 8; i++) p[i] = a.x[i] + a.x[i + 8];
  for (int i = 0; i < 4; i++) q[i] = p[i] + p[i + 4];
  const float r0 = q[0] + q[2], r1 = q[1] + q[3];
  return r0 + r1;
}
static LS_INLINE float reduce_max16(V16 a) {
  float m = a.x[0];
  for (int i = 1; i < 16; i++) m = a.x[i] > m ? a.x[i] : m;
  return m;
}
static LS_INLINE void reduce16x16(const V16* a, float* out) {
  for (int i = 0; i < 16; i++) out[i] = reduce16(a[i]);
}
static LS_INLINE V16 vload_i8(const int8_t* p) {
  V16 r;
  for (int i = 0; i < 16; i++) r.x[i] = (float)p[i];
  return r;
}
static LS_INLINE void vload_nibbles(const uint8_t* p, int bias, V16& lo, V16& hi) {
  for (int i = 0; i < 16; i++) {
    lo.x[i] = (float)((int)(p[i] & 15) - bias);
    hi.x[i] = (float)((int)(p[i] >> 4) - bias);
  }
}
static LS_INLINE float h2f(uint16_t h) { return f16_to_f32_scalar(h); }
#endif

/** n consecutive values from p (f32 or f16 bits) as one V16, zero-padded. */
template <typename W>
static LS_INLINE V16 vload_n(const W* p, int n) {
  return n == 16 ? vload(p) : vload_part(p, n);
}

}  // namespace LS_NS
