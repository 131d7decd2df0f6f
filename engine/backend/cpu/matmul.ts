/**
 * The portable cpu backend's products (used where the native kernels are not built): engine/model/matmul.ts's
 * reference products, with products on shared memory split over the thread pool (thread-pool.ts) by rows, or for a
 * few rows by columns. Each output element is still one thread's single sum in k order, so the result does not depend
 * on the split.
 */
import * as ref from '../../model/matmul.ts';
import type { Matmuls } from '../../model/matmul.ts';
import { PackedWeight } from '../../model/packed-rows.ts';
import { F16Array, type FloatArray, type LinearWeight } from '../../model/types.ts';
import { isShared, sharedCtor } from './shared-arrays.ts';
import { cpuPool, floatViewOf, PARALLEL_MIN_WORK, sharedRef, splitRanges, viewOf, type MatmulPart, type SharedRef } from './thread-pool.ts';

/** out[M,N] (=|+=) alpha · a[M,K]·b[N,K]ᵀ (+ bias[N]), on the pool when the operands are shared. */
export function matmulABt(out: FloatArray, a: FloatArray, b: LinearWeight, bias: FloatArray | null, M: number, K: number, N: number, accumulate = false, alpha = 1): void {
  if (tryParallel('ABt', out, a, b, bias, M, K, N, accumulate, alpha)) return;
  ref.matmulABt(out, a, b, bias, M, K, N, accumulate, alpha);
}

/** out[M,K] (=|+=) alpha · a[M,N]·b[N,K], on the pool when the operands are shared. */
export function matmulAB(out: FloatArray, a: FloatArray, b: LinearWeight, M: number, N: number, K: number, accumulate = false, alpha = 1): void {
  if (tryParallel('AB', out, a, b, null, M, K, N, accumulate, alpha)) return;
  ref.matmulAB(out, a, b, M, N, K, accumulate, alpha);
}

/** out[N,K] (=|+=) alpha · a[M,N]ᵀ·b[M,K] (the reference: its operands are transposed into new scratch). */
export const matmulAtB = ref.matmulAtB;

const SharedF64 = sharedCtor(Float64Array);

/** The products of the portable backend, for the ops that take a Matmuls set. */
export const poolMatmuls: Matmuls = {
  matmulABt,
  matmulAB,
  matmulAtB,
  f64: (n) => new SharedF64(n) as Float64Array,
};

function refOf(x: FloatArray | F16Array | PackedWeight): SharedRef {
  if (x instanceof PackedWeight) return { ...sharedRef(x.bytes, 'u8'), packed: { format: x.format, rows: x.rows, cols: x.cols } };
  return x instanceof F16Array ? sharedRef(x.bits, 'f16') : sharedRef(x);
}

function weightView(r: SharedRef): LinearWeight {
  const v = viewOf(r);
  if (v instanceof Uint8Array) {
    if (!r.packed) throw new Error('cpu pool: bytes without their packed format');
    return new PackedWeight(r.packed.format, r.packed.rows, r.packed.cols, v);
  }
  return v instanceof Uint16Array ? new F16Array(v) : v;
}

/** One part of a split product (run by the pool's workers, and by the caller for the first part). */
export function runMatmulPart(p: MatmulPart): void {
  const out = floatViewOf(p.out, 'out');
  const a = floatViewOf(p.a, 'a');
  const b = weightView(p.b);
  const bias = p.bias ? floatViewOf(p.bias, 'bias') : null;
  if (p.rows) {
    const [r0, r1] = p.rows;
    if (p.op === 'ABt') ref.matmulABt(out.subarray(r0 * p.N, r1 * p.N), a.subarray(r0 * p.K, r1 * p.K), b, bias, r1 - r0, p.K, p.N, p.accumulate, p.alpha);
    else ref.matmulAB(out.subarray(r0 * p.K, r1 * p.K), a.subarray(r0 * p.N, r1 * p.N), b, r1 - r0, p.N, p.K, p.accumulate, p.alpha);
    return;
  }
  if (!p.cols || p.op !== 'ABt') throw new Error('cpu pool: a part needs rows, or columns of an ABt product');
  const [c0, c1] = p.cols;
  if (b instanceof PackedWeight) {
    // Packed rows are decoded a panel at a time over this part's columns only (the same values and sums as unsplit).
    ref.matmulABtDecoded(out, a, b, bias, p.M, p.K, p.N, p.accumulate, p.alpha, c0, c1);
    return;
  }
  const nb = c1 - c0;
  const bPart = b instanceof F16Array ? new F16Array(b.bits.subarray(c0 * p.K, c1 * p.K)) : b.subarray(c0 * p.K, c1 * p.K);
  // alpha·s + bias in f64, then one rounding store into out: what the unsplit kernel stores.
  const tmp = new Float64Array(p.M * nb);
  ref.matmulABt(tmp, a, bPart, bias ? bias.subarray(c0, c1) : null, p.M, p.K, nb, false, p.alpha);
  for (let i = 0; i < p.M; i++) {
    const o = i * p.N + c0;
    const t = i * nb;
    if (p.accumulate) for (let j = 0; j < nb; j++) out[o + j] += tmp[t + j];
    else for (let j = 0; j < nb; j++) out[o + j] = tmp[t + j];
  }
}

function tryParallel(op: 'ABt' | 'AB', out: FloatArray, a: FloatArray, b: LinearWeight, bias: FloatArray | null, M: number, K: number, N: number, accumulate: boolean, alpha: number): boolean {
  if (M * K * N < PARALLEL_MIN_WORK) return false;
  if (!isShared(out) || !isShared(a) || !isShared(b) || (bias !== null && !isShared(bias))) return false;
  const pool = cpuPool();
  if (!pool) return false;
  const T = pool.threads;
  const base = { op, out: refOf(out), a: refOf(a), b: refOf(b), bias: bias ? refOf(bias) : null, M, K, N, accumulate, alpha };
  let parts: MatmulPart[];
  if (M >= 4 * T) parts = splitRanges(M, T, 4).map((rows) => ({ ...base, rows, cols: null }));
  else if (op === 'ABt' && N >= 64 * T) parts = splitRanges(N, T, 4).map((cols) => ({ ...base, rows: null, cols }));
  else return false;
  pool.run(parts, runMatmulPart);
  return true;
}
