// Packed (quantized) frozen weights decoded to f32 a row range at a time, for the GEMMs' panels (QLoRA on the cpu).
// The byte layouts are the formats' own, one definition each in TypeScript: engine/quant/ggml-q8_0.ts, ggml-q4_0.ts,
// ggml-q4_1.ts, ggml-q4_k.ts (subBlockScalesK4), ggml-q6_k.ts, nf4.ts, int4.ts; engine/model/packed-rows.ts is the
// portable twin of this file. Every value is computed with the same f32 operations in the same order as those
// dequantizers (each step one IEEE f32 operation; -ffp-contract=off keeps the compiler from fusing them), so a decoded
// panel holds exactly the floats of PackedWeight.dequantize() and a product over panels equals the product on the
// dequantized f32 weight bit for bit. Scalar code: it is included into every ISA's kernels and gives the same bits.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace ls {
namespace packed {

/** binary16 → f32, exact (every f16 is an f32), as engine/io/f16.ts. */
static inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) bits = sign;
    else {
      // Subnormal: normalise.
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while ((man & 0x400) == 0);
      bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
    }
  } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

static inline float rd16(const uint8_t* p) { return f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static inline float rd32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);  // little-endian hosts only (as engine/quant/half.ts requires)
  return f;
}

constexpr size_t QK = 32, QK_K = 256;
constexpr size_t Q8_0_BYTES = 34, Q4_0_BYTES = 18, Q4_1_BYTES = 20, Q4_K_BYTES = 144, Q6_K_BYTES = 210;
constexpr size_t NF4_BLOCK = 64, INT4_GROUP = 128;

static const float NF4_CODE[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f, -0.18477343022823334f,
    -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/** Block size along the row and bytes per block of the row-blocked formats (0 for nf4 / int4, laid out otherwise). */
static inline void block_of(WType t, size_t& bs, size_t& bb) {
  switch (t) {
    case WType::Q8_0: bs = QK, bb = Q8_0_BYTES; return;
    case WType::Q4_0: bs = QK, bb = Q4_0_BYTES; return;
    case WType::Q4_1: bs = QK, bb = Q4_1_BYTES; return;
    case WType::Q4_K: bs = QK_K, bb = Q4_K_BYTES; return;
    case WType::Q6_K: bs = QK_K, bb = Q6_K_BYTES; return;
    default: bs = 0, bb = 0; return;
  }
}

/** Bytes a [rows, cols] matrix of a packed type takes (0 when the shape does not fit the type). */
static inline size_t size_bytes(WType t, size_t rows, size_t cols) {
  size_t bs, bb;
  block_of(t, bs, bb);
  if (bs) return cols % bs == 0 ? rows * (cols / bs) * bb : 0;
  const size_t n = rows * cols;
  if (t == WType::NF4) return (n + 1) / 2 + 4 * ((n + NF4_BLOCK - 1) / NF4_BLOCK);
  if (t == WType::INT4_G128) {
    const size_t groups = (cols + INT4_GROUP - 1) / INT4_GROUP;
    return rows * ((cols + 1) / 2) + 2 * rows * groups + (rows * groups + 1) / 2;
  }
  return 0;
}

/** One whole block (bs values) of a row-blocked format into d. */
static inline void decode_block(WType t, const uint8_t* y, float* d) {
  switch (t) {
    case WType::Q8_0: {
      const float s = rd16(y);
      for (int j = 0; j < 32; j++) d[j] = (float)(int8_t)y[2 + j] * s;
      return;
    }
    case WType::Q4_0: {
      const float s = rd16(y);
      for (int j = 0; j < 16; j++) {
        const uint8_t q = y[2 + j];
        d[j] = (float)((int)(q & 15) - 8) * s;
        d[j + 16] = (float)((int)(q >> 4) - 8) * s;
      }
      return;
    }
    case WType::Q4_1: {
      const float s = rd16(y), m = rd16(y + 2);
      for (int j = 0; j < 16; j++) {
        const uint8_t q = y[4 + j];
        d[j] = (float)(q & 15) * s + m;
        d[j + 16] = (float)(q >> 4) * s + m;
      }
      return;
    }
    case WType::Q4_K: {
      // subBlockScalesK4: d·sc and dmin·mn rounded to f32, then x = (d·sc)·q − dmin·mn.
      const float dd = rd16(y), dmin = rd16(y + 2);
      const uint8_t* at = y + 4;
      float dl[8], ml[8];
      for (int j = 0; j < 4; j++) {
        dl[j] = dd * (float)(at[j] & 0x3f);
        ml[j] = dmin * (float)(at[4 + j] & 0x3f);
        dl[j + 4] = dd * (float)((at[8 + j] & 0x0f) | ((at[j] >> 2) & 0x30));
        ml[j + 4] = dmin * (float)((at[8 + j] >> 4) | ((at[4 + j] >> 2) & 0x30));
      }
      const uint8_t* qs = y + 16;
      for (int e = 0; e < 256; e++) {
        const int q = (qs[32 * (e >> 6) + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0f;
        const float p = dl[e >> 5] * (float)q;
        d[e] = p - ml[e >> 5];
      }
      return;
    }
    case WType::Q6_K: {
      const uint8_t* qh = y + 128;
      const uint8_t* sc = y + 192;
      const float dd = rd16(y + 208);
      float dl[16];
      for (int i = 0; i < 16; i++) dl[i] = dd * (float)(int8_t)sc[i];
      for (int e = 0; e < 256; e++) {
        const int g = e >> 7;
        const int low = (y[64 * g + (e & 63)] >> (4 * ((e >> 6) & 1))) & 0x0f;
        const int high = (qh[32 * g + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        d[e] = dl[e >> 4] * (float)((low | (high << 4)) - 32);
      }
      return;
    }
    default:
      return;
  }
}

/** dst[0 .. kc) = columns [k0, k0+kc) of row r of the packed weight w ([w.rows, w.ld]). */
static inline void decode_row(float* dst, const Weight& w, size_t r, size_t k0, size_t kc) {
  const uint8_t* bytes = static_cast<const uint8_t*>(w.data);
  const size_t cols = w.ld;
  size_t bs, bb;
  block_of(w.type, bs, bb);
  if (bs) {
    const uint8_t* row = bytes + r * (cols / bs) * bb;
    float tmp[256];
    size_t k = k0;
    const size_t k1 = k0 + kc;
    while (k < k1) {
      const size_t b = k / bs, in = k - b * bs;
      const size_t n = std::min(bs - in, k1 - k);
      if (in == 0 && n == bs) decode_block(w.type, row + b * bb, dst + (k - k0));
      else {
        decode_block(w.type, row + b * bb, tmp);
        std::memcpy(dst + (k - k0), tmp + in, n * sizeof(float));
      }
      k += n;
    }
    return;
  }
  if (w.type == WType::NF4) {
    const size_t n = w.rows * cols, absAt = (n + 1) / 2;
    size_t i = r * cols + k0;
    const size_t i1 = i + kc;
    float* d = dst;
    while (i < i1) {
      // One absmax per block of 64 (flat over the matrix, so blocks may straddle rows).
      const size_t bi = i / NF4_BLOCK, be = std::min(i1, (bi + 1) * NF4_BLOCK);
      const float amax = rd32(bytes + absAt + 4 * bi);
      for (; i < be; i++) {
        const uint8_t b = bytes[i >> 1];
        *d++ = NF4_CODE[(i & 1) ? (b & 15) : (b >> 4)] * amax;
      }
    }
    return;
  }
  // INT4_G128
  const size_t rowBytes = (cols + 1) / 2, groups = (cols + INT4_GROUP - 1) / INT4_GROUP;
  const size_t scalesAt = w.rows * rowBytes, zerosAt = scalesAt + 2 * w.rows * groups;
  const uint8_t* codes = bytes + r * rowBytes;
  size_t j = k0;
  const size_t j1 = k0 + kc;
  while (j < j1) {
    const size_t g = j / INT4_GROUP, gi = r * groups + g;
    const float s = rd16(bytes + scalesAt + 2 * gi);
    const uint8_t zb = bytes[zerosAt + (gi >> 1)];
    const int z = (gi & 1) ? (zb >> 4) : (zb & 15);
    const size_t ge = std::min(j1, (g + 1) * INT4_GROUP);
    for (; j < ge; j++) {
      const uint8_t b = codes[j >> 1];
      dst[j - k0] = (float)(((j & 1) ? (b >> 4) : (b & 15)) - z) * s;
    }
  }
}

static inline bool is_packed(WType t) { return t != WType::F32 && t != WType::F16; }

}  // namespace packed
}  // namespace ls
