#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"

namespace ls {

static float half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
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

void rope_forward(float* out, const float* x, const double* cos, const double* sin, size_t half, size_t B, size_t T, size_t heads, size_t pos_offset) {
  const size_t D = 2 * half;
  parallel(B * T < 64 ? 1 : std::min<size_t>(B * T / 32, 64), [&](size_t task) {
    const size_t tasks = B * T < 64 ? 1 : std::min<size_t>(B * T / 32, 64);
    const size_t per = (B * T + tasks - 1) / tasks;
    for (size_t bt = task * per; bt < std::min(B * T, (task + 1) * per); bt++) {
      const size_t tab = (pos_offset + bt % T) * half;
      for (size_t h = 0; h < heads; h++) {
        const size_t o = (bt * heads + h) * D;
        for (size_t i = 0; i < half; i++) {
          const double c = cos[tab + i], s = sin[tab + i];
          const double x1 = x[o + i], x2 = x[o + half + i];
          out[o + i] = (float)(x1 * c - x2 * s);
          out[o + half + i] = (float)(x2 * c + x1 * s);
        }
      }
    }
  });
}

void rope_backward(float* dx, const float* dout, const double* cos, const double* sin, size_t half, size_t B, size_t T, size_t heads, size_t pos_offset) {
  const size_t D = 2 * half;
  const size_t tasks = B * T < 64 ? 1 : std::min<size_t>(B * T / 32, 64);
  parallel(tasks, [&](size_t task) {
    const size_t per = (B * T + tasks - 1) / tasks;
    for (size_t bt = task * per; bt < std::min(B * T, (task + 1) * per); bt++) {
      const size_t tab = (pos_offset + bt % T) * half;
      for (size_t h = 0; h < heads; h++) {
        const size_t o = (bt * heads + h) * D;
        for (size_t i = 0; i < half; i++) {
          const double c = cos[tab + i], s = sin[tab + i];
          const double d1 = dout[o + i], d2 = dout[o + half + i];
          dx[o + i] = (float)((double)dx[o + i] + (d1 * c + d2 * s));
          dx[o + half + i] = (float)((double)dx[o + half + i] + (d2 * c - d1 * s));
        }
      }
    }
  });
}

void adamw(float* p, const float* g, float* m, float* v, size_t n, double beta1, double beta2, double eps, double weight_decay, double decay, double step_size, double bc2_sqrt) {
  const size_t tasks = n < 65536 ? 1 : std::min<size_t>(n / 32768, 64);
  parallel(tasks, [&](size_t task) {
    const size_t per = (n + tasks - 1) / tasks;
    for (size_t j = task * per; j < std::min(n, (task + 1) * per); j++) {
      double pj = p[j];
      if (weight_decay != 0) pj *= decay;
      const double gj = g[j];
      const double mj = (double)m[j] + (1 - beta1) * (gj - (double)m[j]);
      m[j] = (float)mj;
      const double vj = beta2 * (double)v[j] + (1 - beta2) * gj * gj;
      v[j] = (float)vj;
      p[j] = (float)(pj - (step_size * mj) / (std::sqrt(vj) / bc2_sqrt + eps));
    }
  });
}

long embedding_forward(float* out, const int32_t* ids, Weight table, size_t rows, size_t N, size_t C) {
  for (size_t n = 0; n < N; n++)
    if (ids[n] < 0 || (size_t)ids[n] >= rows) return (long)n;
  for (size_t n = 0; n < N; n++) {
    const size_t id = (size_t)ids[n];
    if (table.type == WType::F32) {
      std::memcpy(out + n * C, static_cast<const float*>(table.data) + id * table.ld, C * sizeof(float));
    } else {
      const uint16_t* src = static_cast<const uint16_t*>(table.data) + id * table.ld;
      for (size_t c = 0; c < C; c++) out[n * C + c] = half_to_float(src[c]);
    }
  }
  return -1;
}

namespace {
struct Xoshiro {
  uint32_t s0, s1, s2, s3;
  explicit Xoshiro(uint32_t seed) {
    uint32_t s = seed;
    auto next = [&]() {
      s += 0x9e3779b9u;
      uint32_t z = s;
      z = (z ^ (z >> 16)) * 0x85ebca6bu;
      z = (z ^ (z >> 13)) * 0xc2b2ae35u;
      return z ^ (z >> 16);
    };
    s0 = next();
    s1 = next();
    s2 = next();
    s3 = next();
    if ((s0 | s1 | s2 | s3) == 0) s0 = 1;
  }
  uint32_t next() {
    const uint32_t m = s1 * 5u;
    const uint32_t result = ((m << 7) | (m >> 25)) * 9u;
    const uint32_t t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >> 21);
    return result;
  }
};
}  // namespace

void dropout_masks(uint32_t seed, double p, uint8_t* const* masks, const size_t* lengths, size_t count) {
  Xoshiro r(seed);
  for (size_t i = 0; i < count; i++)
    for (size_t j = 0; j < lengths[i]; j++) masks[i][j] = (double)r.next() / 4294967296.0 < p ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// The LoRA Linear (engine/model/linear.ts): y = x·Wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ; every LoRA product goes through r.

namespace {
struct LinearScratch {
  std::vector<float> bt, g, t;
};
thread_local LinearScratch lin_scratch;

/** Bᵀ [r][N] of B [N][r]. */
const float* transposed_b(const LoraArgs& l, size_t N) {
  auto& bt = lin_scratch.bt;
  bt.resize(l.r * N);
  for (size_t n = 0; n < N; n++)
    for (size_t k = 0; k < l.r; k++) bt[k * N + n] = l.B[n * l.r + k];
  return bt.data();
}

Weight f32(const float* p, size_t ld) { return Weight{p, WType::F32, ld}; }
}  // namespace

void linear_forward(const Kernels& k, float* y, float* u, float* xd, const float* x, Weight w, const float* bias, const LoraArgs& l, size_t M, size_t K, size_t N) {
  k.gemm_abt(y, N, x, K, w, bias, M, K, N, 1.f, false);
  if (l.r == 0) return;
  const float* src = x;
  if (l.keep) {
    for (size_t i = 0; i < M * K; i++) xd[i] = l.keep[i] == 0 ? 0.f : (float)((double)x[i] * l.keep_scale);
    src = xd;
  }
  k.gemm_abt(u, l.r, src, K, f32(l.A, K), nullptr, M, K, l.r, 1.f, false);
  k.gemm_nn(y, N, u, l.r, 1, f32(transposed_b(l, N), N), M, l.r, N, l.scaling, true);
}

void linear_backward(const Kernels& k, float* dx, float* dA, float* dB, const float* dY, const float* u, const float* xd, const float* x, Weight w, const LoraArgs& l, size_t M, size_t K, size_t N) {
  if (dx) k.gemm_nn(dx, K, dY, N, 1, w, M, N, K, 1.f, true);
  if (l.r == 0) return;
  const size_t r = l.r;
  LinearScratch& s = lin_scratch;
  if (dB) {
    // dBᵀ = uᵀ·dY ([r][N]), added to dB transposed with the scaling.
    s.t.resize(r * N);
    k.gemm_nn(s.t.data(), N, u, 1, r, f32(dY, N), r, M, N, 1.f, false);
    for (size_t n = 0; n < N; n++)
      for (size_t j = 0; j < r; j++) dB[n * r + j] += l.scaling * s.t[j * N + n];
  }
  if (!dA && !dx) return;
  s.g.resize(M * r);
  k.gemm_abt(s.g.data(), r, dY, N, f32(transposed_b(l, N), N), nullptr, M, N, r, 1.f, false);
  const float* src = l.keep ? xd : x;
  if (dA) k.gemm_nn(dA, K, s.g.data(), 1, r, f32(src, K), r, M, K, l.scaling, true);
  if (!dx) return;
  if (!l.keep) {
    k.gemm_nn(dx, K, s.g.data(), r, 1, f32(l.A, K), M, r, K, l.scaling, true);
    return;
  }
  s.t.resize(M * K);
  k.gemm_nn(s.t.data(), K, s.g.data(), r, 1, f32(l.A, K), M, r, K, l.scaling, false);
  for (size_t i = 0; i < M * K; i++)
    if (l.keep[i] != 0) dx[i] = (float)((double)dx[i] + (double)s.t[i] * l.keep_scale);
}

}  // namespace ls
