/**
 * Row-major matrix products, the reference the cpu backend's kernels are tested against. All sums run in JS numbers
 * (f64) and are rounded once when stored, so Float32Array results are as close to exact as fp32 storage allows and
 * Float64Array results serve finite-difference checks. Register-blocked (4 rows × 4 columns), dot products over
 * contiguous rows, column-tiled so the right operand stays in cache.
 *
 * The ops that multiply (linear, cross-entropy, merging) take a `Matmuls` set, by default these serial products;
 * engine/backend/cpu/matmul.ts gives one that splits big products over the cpu thread pool.
 */
import { decodePackedRows, PackedWeight } from './packed-rows.ts';
import { F16Array, type FloatArray, type LinearWeight } from './types.ts';
import { decodeF16Rows } from './weight-array.ts';

/** The three products the ops use, and the f64 scratch they may hand back to them. */
export interface Matmuls {
  /** out[M,N] (=|+=) alpha · a[M,K]·b[N,K]ᵀ (+ bias[N]). */
  matmulABt(out: FloatArray, a: FloatArray, b: LinearWeight, bias: FloatArray | null, M: number, K: number, N: number, accumulate?: boolean, alpha?: number): void;
  /** out[M,K] (=|+=) alpha · a[M,N]·b[N,K]. */
  matmulAB(out: FloatArray, a: FloatArray, b: LinearWeight, M: number, N: number, K: number, accumulate?: boolean, alpha?: number): void;
  /** out[N,K] (=|+=) alpha · a[M,N]ᵀ·b[M,K]. */
  matmulAtB(out: FloatArray, a: FloatArray, b: FloatArray, M: number, N: number, K: number, accumulate?: boolean, alpha?: number): void;
  /** A Float64Array the products can work on (shared memory for the thread pool). */
  f64(n: number): Float64Array;
}

/** Rows of `b` kept hot in cache while all rows of `a` pass over them. */
const COL_TILE = 128;

/**
 * out[M,N] (=|+=) alpha · a[M,K]·b[N,K]ᵀ (+ bias[N]).
 * The dot-product form: both operands are read along contiguous rows.
 * aOff/outOff let callers point into the middle of a buffer (no subarray allocation).
 */
export function matmulABt(
  out: FloatArray,
  a: FloatArray,
  b: LinearWeight,
  bias: FloatArray | null,
  M: number,
  K: number,
  N: number,
  accumulate = false,
  alpha = 1,
): void {
  if (b instanceof F16Array || b instanceof PackedWeight) {
    matmulABtDecoded(out, a, b, bias, M, K, N, accumulate, alpha, 0, N);
    return;
  }
  // Every entry is one accumulator summed in k order, whichever block it falls in, so a row's result does not depend
  // on M (incremental decoding gives the same numbers as a full forward).
  for (let j0 = 0; j0 < N; j0 += COL_TILE) {
    const j1 = Math.min(N, j0 + COL_TILE);
    let i = 0;
    for (; i + 4 <= M; i += 4) {
      const a0 = i * K;
      const a1 = a0 + K;
      const a2 = a1 + K;
      const a3 = a2 + K;
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const b0 = j * K;
        const b1 = b0 + K;
        const b2 = b1 + K;
        const b3 = b2 + K;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let k = 0; k < K; k++) {
          const w0 = b[b0 + k];
          const w1 = b[b1 + k];
          const w2 = b[b2 + k];
          const w3 = b[b3 + k];
          let x = a[a0 + k];
          s00 += x * w0;
          s01 += x * w1;
          s02 += x * w2;
          s03 += x * w3;
          x = a[a1 + k];
          s10 += x * w0;
          s11 += x * w1;
          s12 += x * w2;
          s13 += x * w3;
          x = a[a2 + k];
          s20 += x * w0;
          s21 += x * w1;
          s22 += x * w2;
          s23 += x * w3;
          x = a[a3 + k];
          s30 += x * w0;
          s31 += x * w1;
          s32 += x * w2;
          s33 += x * w3;
        }
        store4(out, i * N + j, s00, s01, s02, s03, bias, j, accumulate, alpha);
        store4(out, (i + 1) * N + j, s10, s11, s12, s13, bias, j, accumulate, alpha);
        store4(out, (i + 2) * N + j, s20, s21, s22, s23, bias, j, accumulate, alpha);
        store4(out, (i + 3) * N + j, s30, s31, s32, s33, bias, j, accumulate, alpha);
      }
      for (; j < j1; j++) {
        const b0 = j * K;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = 0; k < K; k++) {
          const w0 = b[b0 + k];
          s0 += a[a0 + k] * w0;
          s1 += a[a1 + k] * w0;
          s2 += a[a2 + k] * w0;
          s3 += a[a3 + k] * w0;
        }
        const c = bias === null ? 0 : bias[j];
        storeOne(out, i * N + j, s0, c, accumulate, alpha);
        storeOne(out, (i + 1) * N + j, s1, c, accumulate, alpha);
        storeOne(out, (i + 2) * N + j, s2, c, accumulate, alpha);
        storeOne(out, (i + 3) * N + j, s3, c, accumulate, alpha);
      }
    }
    for (; i < M; i++) {
      const a0 = i * K;
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const b0 = j * K;
        const b1 = b0 + K;
        const b2 = b1 + K;
        const b3 = b2 + K;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let k = 0; k < K; k++) {
          const x = a[a0 + k];
          s0 += x * b[b0 + k];
          s1 += x * b[b1 + k];
          s2 += x * b[b2 + k];
          s3 += x * b[b3 + k];
        }
        store4(out, i * N + j, s0, s1, s2, s3, bias, j, accumulate, alpha);
      }
      for (; j < j1; j++) {
        const b0 = j * K;
        let s0 = 0;
        for (let k = 0; k < K; k++) s0 += a[a0 + k] * b[b0 + k];
        storeOne(out, i * N + j, s0, bias === null ? 0 : bias[j], accumulate, alpha);
      }
    }
  }
}

/** Rows of an f16 or packed `b` decoded per pass: a multiple of COL_TILE, small enough to stay in cache with its f64 results. */
const DECODE_ROWS = COL_TILE;
let decodeScratch = new Float32Array(0);

/** Rows [r0, r0+nr) of an f16 or packed [*, K] weight as f32 into dst (the values its full decoding gives). */
export function decodeWeightRows(dst: Float32Array, b: F16Array | PackedWeight, r0: number, nr: number, K: number): void {
  if (b instanceof F16Array) decodeF16Rows(dst, b, r0, nr, K);
  else decodePackedRows(dst, b, r0, nr);
}

/**
 * matmulABt with f16 bits or packed bytes as `b`, over its rows (out columns) [c0, c1) only (out keeps its row stride
 * N): each block of rows is decoded into a reused f32 scratch and run through the fast kernel into an f64 block, then
 * scattered into out. Each entry is still one f64 sum in k order, and alpha·s + bias is formed in f64 before the
 * single rounding store, so results equal those of the kernel on the decoded f32 weight.
 */
export function matmulABtDecoded(out: FloatArray, a: FloatArray, b: F16Array | PackedWeight, bias: FloatArray | null, M: number, K: number, N: number, accumulate: boolean, alpha: number, c0: number, c1: number): void {
  if (decodeScratch.length < DECODE_ROWS * K) decodeScratch = new Float32Array(DECODE_ROWS * K);
  const w = decodeScratch;
  const blk = new Float64Array(M * Math.min(DECODE_ROWS, c1 - c0));
  for (let j0 = c0; j0 < c1; j0 += DECODE_ROWS) {
    const nb = Math.min(DECODE_ROWS, c1 - j0);
    decodeWeightRows(w, b, j0, nb, K);
    const bb = bias === null ? null : bias.subarray(j0, j0 + nb);
    matmulABt(blk, a, w, bb, M, K, nb, false, alpha);
    for (let i = 0; i < M; i++) {
      const o = i * N + j0;
      const s = i * nb;
      if (accumulate) for (let j = 0; j < nb; j++) out[o + j] += blk[s + j];
      else for (let j = 0; j < nb; j++) out[o + j] = blk[s + j];
    }
  }
}

function storeOne(out: FloatArray, idx: number, s: number, bias: number, accumulate: boolean, alpha: number): void {
  const v = alpha * s + bias;
  out[idx] = accumulate ? out[idx] + v : v;
}

function store4(out: FloatArray, o: number, s0: number, s1: number, s2: number, s3: number, bias: FloatArray | null, j: number, accumulate: boolean, alpha: number): void {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  if (bias !== null) {
    c0 = bias[j];
    c1 = bias[j + 1];
    c2 = bias[j + 2];
    c3 = bias[j + 3];
  }
  if (accumulate) {
    out[o] += alpha * s0 + c0;
    out[o + 1] += alpha * s1 + c1;
    out[o + 2] += alpha * s2 + c2;
    out[o + 3] += alpha * s3 + c3;
  } else {
    out[o] = alpha * s0 + c0;
    out[o + 1] = alpha * s1 + c1;
    out[o + 2] = alpha * s2 + c2;
    out[o + 3] = alpha * s3 + c3;
  }
}

/** Columns of the transposed right operand handled per pass in matmulAB, so the transposed block stays small. */
const AB_BLOCK = 256;

/**
 * out[M,K] (=|+=) alpha · a[M,N]·b[N,K]  (e.g. dX = dY·W for a Linear W[N,K]).
 * b is transposed a block of rows at a time into an f64 scratch, then the dot-product kernel runs; partial sums of
 * the blocks are kept in an f64 accumulator so the result is rounded once.
 */
export function matmulAB(out: FloatArray, a: FloatArray, b: LinearWeight, M: number, N: number, K: number, accumulate = false, alpha = 1): void {
  if (N === 0) {
    if (!accumulate) out.fill(0, 0, M * K);
    return;
  }
  if (N <= AB_BLOCK) {
    matmulABt(out, a, transpose(b, N, K, 0, N), null, M, N, K, accumulate, alpha);
    return;
  }
  const acc = new Float64Array(M * K);
  const aBlock = new Float64Array(M * AB_BLOCK);
  for (let n0 = 0; n0 < N; n0 += AB_BLOCK) {
    const nb = Math.min(AB_BLOCK, N - n0);
    const bt = transpose(b, N, K, n0, nb);
    for (let i = 0; i < M; i++) {
      const src = i * N + n0;
      const dst = i * nb;
      for (let n = 0; n < nb; n++) aBlock[dst + n] = a[src + n];
    }
    matmulABt(acc, aBlock, bt, null, M, nb, K, true, 1);
  }
  const total = M * K;
  if (accumulate) for (let i = 0; i < total; i++) out[i] += alpha * acc[i];
  else for (let i = 0; i < total; i++) out[i] = alpha * acc[i];
}

/** Rows [n0, n0+nb) of b[N,K], transposed into a new f64 [K, nb] (f16 bits and packed bytes decoded on the way). */
function transpose(b: LinearWeight, _N: number, K: number, n0: number, nb: number): Float64Array {
  const t = new Float64Array(K * nb);
  if (b instanceof F16Array || b instanceof PackedWeight) {
    const row = new Float32Array(K);
    for (let n = 0; n < nb; n++) {
      decodeWeightRows(row, b, n0 + n, 1, K);
      for (let k = 0; k < K; k++) t[k * nb + n] = row[k];
    }
    return t;
  }
  for (let n = 0; n < nb; n++) {
    const src = (n0 + n) * K;
    for (let k = 0; k < K; k++) t[k * nb + n] = b[src + k];
  }
  return t;
}

/**
 * out[N,K] (=|+=) alpha · a[M,N]ᵀ·b[M,K]  (e.g. dW = dYᵀ·X). Both operands are transposed into f64 scratch so the
 * dot-product kernel runs over the M (token) dimension.
 */
export function matmulAtB(out: FloatArray, a: FloatArray, b: FloatArray, M: number, N: number, K: number, accumulate = false, alpha = 1): void {
  const at = transpose(a, M, N, 0, M);
  const bt = transpose(b, M, K, 0, M);
  matmulABt(out, at, bt, null, N, M, K, accumulate, alpha);
}

/** The serial products (one thread). */
export const serialMatmuls: Matmuls = { matmulABt, matmulAB, matmulAtB, f64: (n) => new Float64Array(n) };
