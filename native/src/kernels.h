// The kernel table: one instance per instruction set (kernels-<isa>.cpp), chosen at load time (addon.cpp). Every entry
// gives the same bits on every ISA and for any thread count (simd.h explains the summation order).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ls {

/**
 * A frozen weight as the kernels read it: row-major [rows][ld] in a source format. The GEMMs never widen a whole
 * weight: f32 rows are read in place, other formats are decoded a tile at a time (decode_rows, the one function a new
 * format needs: kernels-impl.h) or, in the matrix-vector products of decoding, lane by lane as they are loaded.
 */
enum class WType : int {
  F32 = 0,
  F16 = 1,
  // Packed (quantized) formats, the ids of engine/model/packed-rows.ts PACKED_WTYPE: data is the PackedWeight's bytes,
  // ld its cols, rows its rows (the layouts are whole-matrix: packed-decode.h).
  Q8_0 = 2,
  Q4_0 = 3,
  Q4_1 = 4,
  Q4_K = 5,
  Q6_K = 6,
  NF4 = 7,
  INT4_G128 = 8,
};

struct Weight {
  const void* data;
  WType type;
  size_t ld;
  /** Rows of the whole weight: needed only by the packed layouts whose scales follow all the codes (nf4, int4-g128). */
  size_t rows = 0;
};

/** What linear_forward/backward need of one LoRA adapted Linear (A [r, in], B [out, r]); r = 0 means none. */
struct LoraArgs {
  const float* A;
  const float* B;
  size_t r;
  float scaling;
  /** Dropout keep-mask [M, in] (1 = keep) and 1/(1-p); null without dropout. */
  const uint8_t* keep;
  double keep_scale;
};

struct AttnShape {
  size_t batch, q_len, k_len, heads, kv_heads, head_dim;
  /** Sliding window; 0 = full causal. */
  size_t window;
};

struct Kernels {
  const char* isa;
  /** out[M,N] (=|+=) alpha · a[M,K]·b[N,K]ᵀ (+ bias[N]); dot products over K (16 lanes + the fixed tree). */
  void (*gemm_abt)(float* out, size_t ldo, const float* a, size_t lda, Weight b, const float* bias, size_t M, size_t K, size_t N, float alpha, bool accumulate);
  /**
   * out[M,N] (=|+=) alpha · Σ_k a(i,k)·b[k,n] with a(i,k) = a[i·rsa + k·csa] (rsa = lda, csa = 1: a·b; rsa = 1,
   * csa = lda: aᵀ·b); each output a chain of fused multiply-adds over k in blocks of GEMM_KC, the blocks summed in order.
   */
  void (*gemm_nn)(float* out, size_t ldo, const float* a, size_t rsa, size_t csa, Weight b, size_t M, size_t K, size_t N, float alpha, bool accumulate);
  /** out[i] = exp(x[i]) (the kernels' own exp, the same bits on every ISA). */
  void (*vexp)(float* out, const float* x, size_t n);
  void (*rmsnorm_forward)(float* out, float* rstd, const float* x, const float* w, size_t N, size_t C, float eps);
  void (*rmsnorm_backward)(float* dx, const float* dout, const float* x, const float* w, const float* rstd, size_t N, size_t C);
  void (*swiglu_forward)(float* out, const float* gate, const float* up, size_t n);
  /** dgate, dup (=|+=) from dout; dgate may alias dout (in place). */
  void (*swiglu_backward)(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n, bool accumulate);
  /** Causal attention forward (lse may be null); attention-impl: flash-style, one block of query rows at a time. */
  void (*attention_forward)(float* out, float* lse, const float* q, const float* k, const float* v, AttnShape s);
  void (*attention_backward)(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse, const float* q, const float* k, const float* v, AttnShape s);
  /**
   * Chunked cross-entropy over lm_head: rows[count] are the rows with a target, targets[count] their tokens. Adds
   * each row's loss to losses[i] (f64) and, when dh is given, dh[row] += grad_scale · ∂loss/∂hidden.
   */
  void (*cross_entropy)(double* losses, float* dh, const float* hidden, Weight lm_head, const int32_t* rows, const int32_t* targets, size_t count, size_t H, size_t V, size_t chunk_rows, float grad_scale);
};

const Kernels* kernels_avx512();
const Kernels* kernels_avx2();
const Kernels* kernels_neon();
const Kernels* kernels_scalar();

/** Inner-dimension block of gemm_nn: part of the summation order, so fixed (not tuned per ISA or per size). */
constexpr size_t GEMM_KC = 128;

}  // namespace ls
