/**
 * The kernels the model (llama.ts) is made of, as one interface with a forward/backward pair per op. `referenceOps`
 * are the TypeScript ops of this folder (f64 sums, Float32Array or Float64Array): readable, exact, slow. The cpu
 * backend supplies faster sets with the same names and meanings (engine/backend/cpu/: native kernels, or these ops
 * split over a thread pool), tested against these.
 */
import * as attention from './attention.ts';
import type { AttentionShape } from './attention.ts';
import * as crossEntropy from './cross-entropy.ts';
import type { CrossEntropyResult, CrossEntropyShape } from './cross-entropy.ts';
import * as embedding from './embedding.ts';
import * as linear from './linear.ts';
import type { DropoutMask } from './linear.ts';
import * as rmsnorm from './rmsnorm.ts';
import * as rope from './rope.ts';
import type { RopeTables } from './rope.ts';
import * as swiglu from './swiglu.ts';
import type { FloatArray, FloatArrayConstructor, Linear, LinearWeight, LoraPair } from './types.ts';
import { Rng } from '../util/rng.ts';

export interface ModelOps {
  /** What runs, for logs and the UI ("reference", "native avx512 × 2 threads", …). */
  readonly name: string;
  /** A zeroed activation array of the model's float type F. */
  floats(F: FloatArrayConstructor, n: number): FloatArray;
  /** Room for attention's per-row logsumexp (f64 in the reference). */
  lse(n: number): FloatArray;
  /** Default rows of logits per cross-entropy chunk for this vocabulary. */
  ceChunkRows(vocab: number): number;

  embedding(out: FloatArray, ids: Int32Array, table: LinearWeight, N: number, C: number): void;
  rmsnormForward(out: FloatArray, rstd: FloatArray, x: FloatArray, weight: FloatArray, N: number, C: number, eps: number): void;
  /** dx += ∂L/∂x (frozen weight: no weight gradient). */
  rmsnormBackward(dx: FloatArray, dOut: FloatArray, x: FloatArray, weight: FloatArray, rstd: FloatArray, N: number, C: number): void;
  linearForward(y: FloatArray, u: FloatArray | null, xd: FloatArray | null, x: FloatArray, lin: Linear, lora: LoraPair | null, scaling: number, mask: DropoutMask | null, M: number): void;
  /** dx += …, dA/dB += … (each skipped when null). */
  linearBackward(dx: FloatArray | null, dA: FloatArray | null, dB: FloatArray | null, dY: FloatArray, u: FloatArray | null, xd: FloatArray | null, x: FloatArray, lin: Linear, lora: LoraPair | null, scaling: number, mask: DropoutMask | null, M: number): void;
  ropeForward(out: FloatArray, x: FloatArray, tables: RopeTables, B: number, T: number, nHeads: number, headDim: number, posOffset: number): void;
  /** dx += Rᵀ·dOut. */
  ropeBackward(dx: FloatArray, dOut: FloatArray, tables: RopeTables, B: number, T: number, nHeads: number, headDim: number, posOffset: number): void;
  attentionForward(out: FloatArray, lse: FloatArray | null, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape): void;
  /** dq, dk, dv += gradients. */
  attentionBackward(dq: FloatArray, dk: FloatArray, dv: FloatArray, dOut: FloatArray, out: FloatArray, lse: FloatArray, q: FloatArray, k: FloatArray, v: FloatArray, s: AttentionShape): void;
  swigluForward(out: FloatArray, gate: FloatArray, up: FloatArray, n: number): void;
  /** dGate, dUp += gradients. */
  swigluBackward(dGate: FloatArray, dUp: FloatArray, dOut: FloatArray, gate: FloatArray, up: FloatArray, n: number): void;
  /** Loss over the rows with a target; with dHidden, dHidden += gradScale · ∂(Σ losses)/∂hidden. */
  crossEntropy(dHidden: FloatArray | null, hidden: FloatArray, lmHead: LinearWeight, targets: Int32Array, s: CrossEntropyShape, gradScale: number): CrossEntropyResult;
  /** out[i] = a[i] + b[i]. */
  add(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void;
  /** keep[i] = 0 with probability p, drawn from Rng(seed) over the masks in order (Rng.uniform() < p). */
  dropoutMasks(seed: number, p: number, masks: Uint8Array[]): void;
}

/** The dropout draw every backend reproduces bit for bit. */
export function drawDropoutMasks(seed: number, p: number, masks: Uint8Array[]): void {
  const rng = new Rng(seed);
  for (const keep of masks) for (let i = 0; i < keep.length; i++) keep[i] = rng.uniform() < p ? 0 : 1;
}

export const referenceOps: ModelOps = {
  name: 'reference',
  floats: (F, n) => new F(n),
  lse: (n) => new Float64Array(n),
  ceChunkRows: crossEntropy.defaultChunkRows,
  embedding: embedding.forward,
  rmsnormForward: rmsnorm.forward,
  rmsnormBackward: (dx, dOut, x, weight, rstd, N, C) => rmsnorm.backward(dx, null, dOut, x, weight, rstd, N, C),
  linearForward: (y, u, xd, x, lin, lora, scaling, mask, M) => linear.forward(y, u, xd, x, lin, lora, scaling, mask, M),
  linearBackward: (dx, dA, dB, dY, u, xd, x, lin, lora, scaling, mask, M) => linear.backward(dx, dA, dB, dY, u, xd, x, lin, lora, scaling, mask, M),
  ropeForward: rope.forward,
  ropeBackward: rope.backward,
  attentionForward: attention.forward,
  attentionBackward: attention.backward,
  swigluForward: swiglu.forward,
  swigluBackward: swiglu.backward,
  crossEntropy: (dHidden, hidden, lmHead, targets, s, gradScale) =>
    dHidden === null ? crossEntropy.forward(null, hidden, lmHead, targets, s) : crossEntropy.forwardBackward(dHidden, null, hidden, lmHead, targets, s, gradScale),
  add: (out, a, b, n) => {
    for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  },
  dropoutMasks: drawDropoutMasks,
};
