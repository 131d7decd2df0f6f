// N-API bindings of the cpu kernels (engine/backend/cpu/native.ts is the only caller). Every entry point checks the
// lengths of the typed arrays it gets against the sizes it is given before touching memory, and throws a TypeError
// naming the argument otherwise: a wrong call must never corrupt memory.
#include <node_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu-features.h"
#include "kernels.h"
#include "packed-decode.h"
#include "ops.h"
#include "pool.h"

namespace {

using ls::Weight;
using ls::WType;

const ls::Kernels* g_kernels = nullptr;

struct Arr {
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_float32_array;
  bool present = false;
};

struct Call {
  napi_env env;
  std::vector<napi_value> argv;
  bool failed = false;

  /** `want` arguments are required, `optional` more may follow (undefined when not given). */
  Call(napi_env e, napi_callback_info info, size_t want, size_t optional = 0) : env(e), argv(want + optional) {
    size_t argc = want + optional;
    napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr);
    if (argc < want) fail(std::string("expected ") + std::to_string(want) + " arguments, got " + std::to_string(argc));
  }

  void fail(const std::string& msg) {
    if (failed) return;
    failed = true;
    napi_throw_type_error(env, nullptr, ("lora-studio cpu kernels: " + msg).c_str());
  }

  bool is_null(size_t i) {
    napi_valuetype t;
    napi_typeof(env, argv[i], &t);
    return t == napi_null || t == napi_undefined;
  }

  Arr arr(size_t i, const char* name, bool nullable, std::initializer_list<napi_typedarray_type> types) {
    Arr a;
    if (failed) return a;
    if (nullable && is_null(i)) return a;
    bool isTa = false;
    napi_is_typedarray(env, argv[i], &isTa);
    if (!isTa) {
      fail(std::string(name) + " must be a typed array");
      return a;
    }
    napi_value buf;
    size_t off;
    napi_get_typedarray_info(env, argv[i], &a.type, &a.length, &a.data, &buf, &off);
    bool ok = false;
    for (auto t : types) ok = ok || t == a.type;
    if (!ok) {
      fail(std::string(name) + " has the wrong element type");
      return a;
    }
    a.present = true;
    return a;
  }

  Arr f32(size_t i, const char* name, size_t need, bool nullable = false) {
    Arr a = arr(i, name, nullable, {napi_float32_array});
    if (a.present && a.length < need) fail(std::string(name) + " has " + std::to_string(a.length) + " values, needs " + std::to_string(need));
    return a;
  }

  Arr typed(size_t i, const char* name, size_t need, napi_typedarray_type type, bool nullable = false) {
    Arr a = arr(i, name, nullable, {type});
    if (a.present && a.length < need) fail(std::string(name) + " has " + std::to_string(a.length) + " values, needs " + std::to_string(need));
    return a;
  }

  /** A frozen weight: Float32Array (f32) or Uint16Array (f16 bits), [rows][cols]. */
  Weight weight(size_t i, const char* name, size_t rows, size_t cols) {
    Arr a = arr(i, name, false, {napi_float32_array, napi_uint16_array});
    if (a.present && a.length < rows * cols) fail(std::string(name) + " has " + std::to_string(a.length) + " values, needs " + std::to_string(rows * cols));
    return Weight{a.data, a.type == napi_uint16_array ? WType::F16 : WType::F32, cols};
  }

  /**
   * A Linear's frozen weight: as weight(), or — when argv[fmt] is a packed format id (2..8, kernels.h WType) — the
   * Uint8Array of a PackedWeight's bytes for a [rows][cols] matrix in that format, its byte length checked.
   */
  Weight linear_weight(size_t i, const char* name, size_t rows, size_t cols, size_t fmt) {
    if (failed) return Weight{nullptr, WType::F32, cols};
    if (fmt >= argv.size() || is_null(fmt)) return weight(i, name, rows, cols);
    const size_t id = size(fmt, "weight format");
    if (failed) return Weight{nullptr, WType::F32, cols};
    if (id < 2 || id > 8) {
      fail(std::string(name) + ": unknown packed weight format id " + std::to_string(id));
      return Weight{nullptr, WType::F32, cols};
    }
    const WType t = (WType)id;
    Arr a = arr(i, name, false, {napi_uint8_array});
    const size_t want = ls::packed::size_bytes(t, rows, cols);
    if (!failed && want == 0) fail(std::string(name) + ": a [" + std::to_string(rows) + ", " + std::to_string(cols) + "] matrix does not fit packed format id " + std::to_string(id));
    if (!failed && a.length != want) fail(std::string(name) + " has " + std::to_string(a.length) + " bytes, a packed [" + std::to_string(rows) + ", " + std::to_string(cols) + "] matrix needs " + std::to_string(want));
    return Weight{a.data, t, cols, rows};
  }

  size_t size(size_t i, const char* name) {
    if (failed) return 0;
    double d = -1;
    if (napi_get_value_double(env, argv[i], &d) != napi_ok || !(d >= 0) || d != std::floor(d) || d > 9.0e15) {
      fail(std::string(name) + " must be a non-negative integer");
      return 0;
    }
    return (size_t)d;
  }

  double num(size_t i, const char* name) {
    if (failed) return 0;
    double d = 0;
    if (napi_get_value_double(env, argv[i], &d) != napi_ok) fail(std::string(name) + " must be a number");
    return d;
  }

  bool flag(size_t i) {
    bool b = false;
    if (!failed) napi_get_value_bool(env, argv[i], &b);
    return b;
  }
};

template <typename T>
T* ptr(const Arr& a) {
  return a.present ? static_cast<T*>(a.data) : nullptr;
}

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// gemmAbt(out, a, b, bias, M, K, N, alpha, accumulate, format?)
napi_value GemmAbt(napi_env env, napi_callback_info info) {
  Call c(env, info, 9, 1);
  const size_t M = c.size(4, "M"), K = c.size(5, "K"), N = c.size(6, "N");
  Arr out = c.f32(0, "out", M * N), a = c.f32(1, "a", M * K);
  Weight b = c.linear_weight(2, "b", N, K, 9);
  Arr bias = c.f32(3, "bias", N, true);
  const double alpha = c.num(7, "alpha");
  const bool acc = c.flag(8);
  if (c.failed) return nullptr;
  g_kernels->gemm_abt(ptr<float>(out), N, ptr<float>(a), K, b, ptr<float>(bias), M, K, N, (float)alpha, acc);
  return undefined(env);
}

// gemmNn(out, a, b, M, K, N, transA, alpha, accumulate, format?): out[M,N] = a[M,K]·b[K,N] (transA: a is [K,M])
napi_value GemmNn(napi_env env, napi_callback_info info) {
  Call c(env, info, 9, 1);
  const size_t M = c.size(3, "M"), K = c.size(4, "K"), N = c.size(5, "N");
  const bool transA = c.flag(6);
  Arr out = c.f32(0, "out", M * N), a = c.f32(1, "a", M * K);
  Weight b = c.linear_weight(2, "b", K, N, 9);
  const double alpha = c.num(7, "alpha");
  const bool acc = c.flag(8);
  if (c.failed) return nullptr;
  g_kernels->gemm_nn(ptr<float>(out), N, ptr<float>(a), transA ? 1 : K, transA ? M : 1, b, M, K, N, (float)alpha, acc);
  return undefined(env);
}

/** LoRA arguments at argv[i..i+5]: A, B, r, scaling, keep, keepScale. */
ls::LoraArgs lora_args(Call& c, size_t i, size_t M, size_t K, size_t N) {
  ls::LoraArgs l{nullptr, nullptr, 0, 0.f, nullptr, 1.0};
  const size_t r = c.size(i + 2, "r");
  if (r == 0) return l;
  l.r = r;
  l.A = ptr<float>(c.f32(i, "lora A", r * K));
  l.B = ptr<float>(c.f32(i + 1, "lora B", N * r));
  l.scaling = (float)c.num(i + 3, "scaling");
  l.keep = ptr<uint8_t>(c.typed(i + 4, "keep", M * K, napi_uint8_array, true));
  l.keep_scale = c.num(i + 5, "keepScale");
  return l;
}

// linearForward(y, u, xd, x, w, bias, A, B, r, scaling, keep, keepScale, M, K, N, format?)
napi_value LinearForward(napi_env env, napi_callback_info info) {
  Call c(env, info, 15, 1);
  const size_t M = c.size(12, "M"), K = c.size(13, "K"), N = c.size(14, "N");
  ls::LoraArgs l = lora_args(c, 6, M, K, N);
  Arr y = c.f32(0, "y", M * N), u = c.f32(1, "u", M * l.r, l.r == 0), xd = c.f32(2, "xd", M * K, l.keep == nullptr), x = c.f32(3, "x", M * K);
  Weight w = c.linear_weight(4, "weight", N, K, 15);
  Arr bias = c.f32(5, "bias", N, true);
  if (!c.failed && l.keep && !xd.present) c.fail("dropout needs an xd buffer");
  if (!c.failed && l.r && !u.present) c.fail("LoRA needs a u buffer");
  if (c.failed) return nullptr;
  ls::linear_forward(*g_kernels, ptr<float>(y), ptr<float>(u), ptr<float>(xd), ptr<float>(x), w, ptr<float>(bias), l, M, K, N);
  return undefined(env);
}

// linearBackward(dx, dA, dB, dY, u, xd, x, w, A, B, r, scaling, keep, keepScale, M, K, N, format?)
napi_value LinearBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, 17, 1);
  const size_t M = c.size(14, "M"), K = c.size(15, "K"), N = c.size(16, "N");
  ls::LoraArgs l = lora_args(c, 8, M, K, N);
  const size_t r = l.r;
  Arr dx = c.f32(0, "dx", M * K, true), dA = c.f32(1, "dA", r * K, true), dB = c.f32(2, "dB", N * r, true), dY = c.f32(3, "dY", M * N);
  Arr u = c.f32(4, "u", M * r, r == 0), xd = c.f32(5, "xd", M * K, l.keep == nullptr), x = c.f32(6, "x", M * K);
  Weight w = c.linear_weight(7, "weight", N, K, 17);
  if (!c.failed && r && !u.present) c.fail("LoRA backward needs the u saved by forward");
  if (!c.failed && l.keep && !xd.present) c.fail("dropout needs the xd saved by forward");
  if (c.failed) return nullptr;
  ls::linear_backward(*g_kernels, ptr<float>(dx), ptr<float>(dA), ptr<float>(dB), ptr<float>(dY), ptr<float>(u), ptr<float>(xd), ptr<float>(x), w, l, M, K, N);
  return undefined(env);
}

ls::AttnShape attn_shape(Call& c, size_t i) {
  ls::AttnShape s{c.size(i, "batch"), c.size(i + 1, "queryLen"), c.size(i + 2, "keyLen"), c.size(i + 3, "heads"), c.size(i + 4, "kvHeads"), c.size(i + 5, "headDim"), c.size(i + 6, "window")};
  if (!c.failed && (s.kv_heads == 0 || s.heads % s.kv_heads != 0)) c.fail("heads must be a multiple of kvHeads");
  if (!c.failed && s.q_len > s.k_len) c.fail("more queries than keys");
  if (!c.failed && s.head_dim == 0) c.fail("headDim must be positive");
  return s;
}

// attentionForward(out, lse, q, k, v, batch, qLen, kLen, heads, kvHeads, headDim, window)
napi_value AttentionForward(napi_env env, napi_callback_info info) {
  Call c(env, info, 12);
  ls::AttnShape s = attn_shape(c, 5);
  const size_t qn = s.batch * s.q_len * s.heads * s.head_dim, kn = s.batch * s.k_len * s.kv_heads * s.head_dim;
  Arr out = c.f32(0, "out", qn), lse = c.f32(1, "lse", s.batch * s.heads * s.q_len, true), q = c.f32(2, "q", qn), k = c.f32(3, "k", kn), v = c.f32(4, "v", kn);
  if (c.failed) return nullptr;
  g_kernels->attention_forward(ptr<float>(out), ptr<float>(lse), ptr<float>(q), ptr<float>(k), ptr<float>(v), s);
  return undefined(env);
}

// attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, batch, qLen, kLen, heads, kvHeads, headDim, window)
napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, 16);
  ls::AttnShape s = attn_shape(c, 9);
  const size_t qn = s.batch * s.q_len * s.heads * s.head_dim, kn = s.batch * s.k_len * s.kv_heads * s.head_dim;
  Arr dq = c.f32(0, "dq", qn), dk = c.f32(1, "dk", kn), dv = c.f32(2, "dv", kn), dout = c.f32(3, "dOut", qn), out = c.f32(4, "out", qn);
  Arr lse = c.f32(5, "lse", s.batch * s.heads * s.q_len), q = c.f32(6, "q", qn), k = c.f32(7, "k", kn), v = c.f32(8, "v", kn);
  if (c.failed) return nullptr;
  g_kernels->attention_backward(ptr<float>(dq), ptr<float>(dk), ptr<float>(dv), ptr<float>(dout), ptr<float>(out), ptr<float>(lse), ptr<float>(q), ptr<float>(k), ptr<float>(v), s);
  return undefined(env);
}

// rmsnormForward(out, rstd, x, w, N, C, eps)
napi_value RmsnormForward(napi_env env, napi_callback_info info) {
  Call c(env, info, 7);
  const size_t N = c.size(4, "N"), C = c.size(5, "C");
  Arr out = c.f32(0, "out", N * C), rstd = c.f32(1, "rstd", N), x = c.f32(2, "x", N * C), w = c.f32(3, "weight", C);
  const double eps = c.num(6, "eps");
  if (c.failed) return nullptr;
  g_kernels->rmsnorm_forward(ptr<float>(out), ptr<float>(rstd), ptr<float>(x), ptr<float>(w), N, C, (float)eps);
  return undefined(env);
}

// rmsnormBackward(dx, dout, x, w, rstd, N, C)
napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, 7);
  const size_t N = c.size(5, "N"), C = c.size(6, "C");
  Arr dx = c.f32(0, "dx", N * C), dout = c.f32(1, "dOut", N * C), x = c.f32(2, "x", N * C), w = c.f32(3, "weight", C), rstd = c.f32(4, "rstd", N);
  if (c.failed) return nullptr;
  g_kernels->rmsnorm_backward(ptr<float>(dx), ptr<float>(dout), ptr<float>(x), ptr<float>(w), ptr<float>(rstd), N, C);
  return undefined(env);
}

// swigluForward(out, gate, up, n)
napi_value SwigluForward(napi_env env, napi_callback_info info) {
  Call c(env, info, 4);
  const size_t n = c.size(3, "n");
  Arr out = c.f32(0, "out", n), g = c.f32(1, "gate", n), u = c.f32(2, "up", n);
  if (c.failed) return nullptr;
  g_kernels->swiglu_forward(ptr<float>(out), ptr<float>(g), ptr<float>(u), n);
  return undefined(env);
}

// swigluBackward(dgate, dup, dout, gate, up, n, accumulate)
napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, 7);
  const size_t n = c.size(5, "n");
  Arr dg = c.f32(0, "dGate", n), du = c.f32(1, "dUp", n), d = c.f32(2, "dOut", n), g = c.f32(3, "gate", n), u = c.f32(4, "up", n);
  const bool acc = c.flag(6);
  if (c.failed) return nullptr;
  g_kernels->swiglu_backward(ptr<float>(dg), ptr<float>(du), ptr<float>(d), ptr<float>(g), ptr<float>(u), n, acc);
  return undefined(env);
}

// ropeForward(out, x, cos, sin, half, B, T, heads, posOffset) and ropeBackward(dx, dout, ...)
template <bool Backward>
napi_value Rope(napi_env env, napi_callback_info info) {
  Call c(env, info, 9);
  const size_t half = c.size(4, "half"), B = c.size(5, "B"), T = c.size(6, "T"), heads = c.size(7, "heads"), off = c.size(8, "posOffset");
  const size_t n = B * T * heads * 2 * half;
  Arr out = c.f32(0, "out", n), x = c.f32(1, "x", n);
  Arr cs = c.typed(2, "cos", (off + T) * half, napi_float64_array), sn = c.typed(3, "sin", (off + T) * half, napi_float64_array);
  if (c.failed) return nullptr;
  if (Backward) ls::rope_backward(ptr<float>(out), ptr<float>(x), ptr<double>(cs), ptr<double>(sn), half, B, T, heads, off);
  else ls::rope_forward(ptr<float>(out), ptr<float>(x), ptr<double>(cs), ptr<double>(sn), half, B, T, heads, off);
  return undefined(env);
}

// embeddingForward(out, ids, table, N, C): returns -1, or the first position whose id is out of range
napi_value EmbeddingForward(napi_env env, napi_callback_info info) {
  Call c(env, info, 5);
  const size_t N = c.size(3, "N"), C = c.size(4, "C");
  Arr out = c.f32(0, "out", N * C), ids = c.typed(1, "ids", N, napi_int32_array);
  Arr t = c.arr(2, "table", false, {napi_float32_array, napi_uint16_array});
  if (!c.failed && C == 0) c.fail("C must be positive");
  if (c.failed) return nullptr;
  const Weight w{t.data, t.type == napi_uint16_array ? WType::F16 : WType::F32, C};
  const long bad = ls::embedding_forward(ptr<float>(out), ptr<int32_t>(ids), w, t.length / C, N, C);
  napi_value r;
  napi_create_double(env, (double)bad, &r);
  return r;
}

// crossEntropy(losses, dh, hidden, lmHead, rows, targets, H, V, chunkRows, gradScale)
napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Call c(env, info, 10);
  const size_t H = c.size(6, "H"), V = c.size(7, "V"), chunk = c.size(8, "chunkRows");
  Arr rows = c.typed(4, "rows", 0, napi_int32_array), tg = c.typed(5, "targets", 0, napi_int32_array);
  const size_t count = rows.length;
  Arr losses = c.typed(0, "losses", count, napi_float64_array);
  Arr hidden = c.f32(2, "hidden", 0);
  Arr dh = c.f32(1, "dHidden", hidden.length, true);
  Weight lm = c.weight(3, "lmHead", V, H);
  const double gs = c.num(9, "gradScale");
  if (!c.failed && tg.length < count) c.fail("targets is shorter than rows");
  if (!c.failed && H == 0) c.fail("H must be positive");
  if (c.failed) return nullptr;
  const int32_t* r = ptr<int32_t>(rows);
  const int32_t* t = ptr<int32_t>(tg);
  for (size_t i = 0; i < count; i++) {
    if (r[i] < 0 || (size_t)(r[i] + 1) * H > hidden.length) return c.fail("a row index is outside hidden"), nullptr;
    if (t[i] < 0 || (size_t)t[i] >= V) return c.fail("a target is outside the vocabulary"), nullptr;
  }
  g_kernels->cross_entropy(ptr<double>(losses), ptr<float>(dh), ptr<float>(hidden), lm, r, t, count, H, V, chunk == 0 ? 1 : chunk, (float)gs);
  return undefined(env);
}

// adamw(p, g, m, v, beta1, beta2, eps, weightDecay, decay, stepSize, bc2Sqrt)
napi_value Adamw(napi_env env, napi_callback_info info) {
  Call c(env, info, 11);
  Arr p = c.f32(0, "param", 0);
  const size_t n = p.length;
  Arr g = c.f32(1, "grad", n), m = c.f32(2, "m", n), v = c.f32(3, "v", n);
  const double b1 = c.num(4, "beta1"), b2 = c.num(5, "beta2"), eps = c.num(6, "eps"), wd = c.num(7, "weightDecay"), decay = c.num(8, "decay"), step = c.num(9, "stepSize"), bc2 = c.num(10, "bc2Sqrt");
  if (c.failed) return nullptr;
  ls::adamw(ptr<float>(p), ptr<float>(g), ptr<float>(m), ptr<float>(v), n, b1, b2, eps, wd, decay, step, bc2);
  return undefined(env);
}

// dropoutMasks(seed, p, masks[])
napi_value DropoutMasks(napi_env env, napi_callback_info info) {
  Call c(env, info, 3);
  const double seed = c.num(0, "seed"), p = c.num(1, "p");
  if (c.failed) return nullptr;
  bool isArray = false;
  napi_is_array(env, c.argv[2], &isArray);
  if (!isArray) return c.fail("masks must be an array of Uint8Array"), nullptr;
  uint32_t n = 0;
  napi_get_array_length(env, c.argv[2], &n);
  std::vector<uint8_t*> masks(n);
  std::vector<size_t> lengths(n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    napi_get_element(env, c.argv[2], i, &el);
    c.argv.push_back(el);
    Arr a = c.typed(c.argv.size() - 1, "masks[i]", 0, napi_uint8_array);
    if (c.failed) return nullptr;
    masks[i] = ptr<uint8_t>(a);
    lengths[i] = a.length;
  }
  ls::dropout_masks((uint32_t)(int64_t)seed, p, masks.data(), lengths.data(), n);
  return undefined(env);
}

// add(out, a, b): out = a + b (f32), n = out.length
napi_value Add(napi_env env, napi_callback_info info) {
  Call c(env, info, 3);
  Arr out = c.f32(0, "out", 0);
  Arr a = c.f32(1, "a", out.length), b = c.f32(2, "b", out.length);
  if (c.failed) return nullptr;
  float* o = ptr<float>(out);
  const float* x = ptr<float>(a);
  const float* y = ptr<float>(b);
  for (size_t i = 0; i < out.length; i++) o[i] = x[i] + y[i];
  return undefined(env);
}

// vexp(out, x)
napi_value Vexp(napi_env env, napi_callback_info info) {
  Call c(env, info, 2);
  Arr out = c.f32(0, "out", 0);
  Arr x = c.f32(1, "x", out.length);
  if (c.failed) return nullptr;
  g_kernels->vexp(ptr<float>(out), ptr<float>(x), out.length);
  return undefined(env);
}

std::vector<const ls::Kernels*> available() {
  std::vector<const ls::Kernels*> out;
  const ls::CpuFeatures f = ls::detect_cpu();
#if defined(LS_HAVE_AVX512)
  if (f.avx512) out.push_back(ls::kernels_avx512());
#endif
#if defined(LS_HAVE_AVX2)
  if (f.avx2) out.push_back(ls::kernels_avx2());
#endif
#if defined(LS_HAVE_NEON)
  if (f.neon) out.push_back(ls::kernels_neon());
#endif
  (void)f;
  out.push_back(ls::kernels_scalar());
  return out;
}

// info() → { isa, threads, isas }
napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, isa, threads, list;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, g_kernels->isa, NAPI_AUTO_LENGTH, &isa);
  napi_create_int32(env, ls::threads(), &threads);
  const auto all = available();
  napi_create_array_with_length(env, all.size(), &list);
  for (size_t i = 0; i < all.size(); i++) {
    napi_value s;
    napi_create_string_utf8(env, all[i]->isa, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, list, (uint32_t)i, s);
  }
  napi_set_named_property(env, o, "isa", isa);
  napi_set_named_property(env, o, "threads", threads);
  napi_set_named_property(env, o, "isas", list);
  return o;
}

// setThreads(n)
napi_value SetThreads(napi_env env, napi_callback_info info) {
  Call c(env, info, 1);
  const size_t n = c.size(0, "threads");
  if (!c.failed && (n < 1 || n > 256)) c.fail("threads must be 1 to 256");
  if (c.failed) return nullptr;
  ls::set_threads((int)n);
  return undefined(env);
}

// setIsa(name): picks one of info().isas (tests compare them); returns false when the CPU cannot run it
napi_value SetIsa(napi_env env, napi_callback_info info) {
  Call c(env, info, 1);
  if (c.failed) return nullptr;
  char name[32] = {0};
  size_t len = 0;
  if (napi_get_value_string_utf8(env, c.argv[0], name, sizeof name, &len) != napi_ok) return c.fail("isa must be a string"), nullptr;
  bool found = false;
  for (const auto* k : available())
    if (std::strcmp(k->isa, name) == 0) {
      g_kernels = k;
      found = true;
    }
  napi_value r;
  napi_get_boolean(env, found, &r);
  return r;
}

}  // namespace

NAPI_MODULE_INIT() {
  if (g_kernels == nullptr) g_kernels = available().front();
  struct Fn {
    const char* name;
    napi_callback cb;
  } fns[] = {
      {"info", Info},
      {"setThreads", SetThreads},
      {"setIsa", SetIsa},
      {"gemmAbt", GemmAbt},
      {"gemmNn", GemmNn},
      {"linearForward", LinearForward},
      {"linearBackward", LinearBackward},
      {"attentionForward", AttentionForward},
      {"attentionBackward", AttentionBackward},
      {"rmsnormForward", RmsnormForward},
      {"rmsnormBackward", RmsnormBackward},
      {"swigluForward", SwigluForward},
      {"swigluBackward", SwigluBackward},
      {"ropeForward", Rope<false>},
      {"ropeBackward", Rope<true>},
      {"embeddingForward", EmbeddingForward},
      {"crossEntropy", CrossEntropy},
      {"adamw", Adamw},
      {"dropoutMasks", DropoutMasks},
      {"add", Add},
      {"vexp", Vexp},
  };
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
