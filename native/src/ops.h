// Kernels that are the same on every ISA (element-wise work in f64, bit-identical to the TypeScript reference) and
// the LoRA Linear, which strings gemm_abt/gemm_nn of the chosen kernel table together.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels.h"

namespace ls {

/** RoPE (half split) with f64 tables [positions][half], as engine/model/rope.ts: out may alias x. */
void rope_forward(float* out, const float* x, const double* cos, const double* sin, size_t half, size_t B, size_t T, size_t heads, size_t pos_offset);
void rope_backward(float* dx, const float* dout, const double* cos, const double* sin, size_t half, size_t B, size_t T, size_t heads, size_t pos_offset);

/** One AdamW update in f64 per element, as engine/train/adamw.ts (the scalars come from the caller). */
void adamw(float* p, const float* g, float* m, float* v, size_t n, double beta1, double beta2, double eps, double weight_decay, double decay, double step_size, double bc2_sqrt);

/** out[n] = table[ids[n]] (f16 rows decoded); returns the first out-of-range position, or -1. */
long embedding_forward(float* out, const int32_t* ids, Weight table, size_t rows, size_t N, size_t C);

/** keep[i] = (u < p ? 0 : 1) for u = xoshiro128**(seed)/2^32, over the masks in order (engine/util/rng.ts). */
void dropout_masks(uint32_t seed, double p, uint8_t* const* masks, const size_t* lengths, size_t count);

void linear_forward(const Kernels& k, float* y, float* u, float* xd, const float* x, Weight w, const float* bias, const LoraArgs& lora, size_t M, size_t K, size_t N);
void linear_backward(const Kernels& k, float* dx, float* dA, float* dB, const float* dY, const float* u, const float* xd, const float* x, Weight w, const LoraArgs& lora, size_t M, size_t K, size_t N);

}  // namespace ls
