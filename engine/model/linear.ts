/**
 * Frozen Linear with an optional LoRA branch, exactly as PEFT's lora.Linear:
 *   y = x·Wᵀ + b + scaling · (dropout(x)·Aᵀ)·Bᵀ,   W [out,in], A [r,in], B [out,r].
 * Backward with u = dropout(x)·Aᵀ and g = dY·B:
 *   dB += scaling·dYᵀ·u,  dA += scaling·gᵀ·dropout(x),  dx += dY·W + scaling·dropout'(g·A).
 * Every LoRA product runs through the rank r; B·A is never formed. The products are `mm`'s (default: the serial
 * reference products of matmul.ts).
 */
import { serialMatmuls, type Matmuls } from './matmul.ts';
import type { FloatArray, Linear, LoraPair } from './types.ts';

/** A dropout mask over the LoRA branch input [M, in]: kept entries are multiplied by `scale` = 1/(1−p). */
export interface DropoutMask {
  keep: Uint8Array;
  scale: number;
}

/**
 * y[M,out] = x·Wᵀ + b (+ LoRA). With LoRA, u[M,r] receives dropout(x)·Aᵀ, and with a mask, xd[M,in] receives
 * dropout(x); both are needed by backward. Pass null for u/xd when there is no LoRA / no mask.
 */
export function forward(
  y: FloatArray,
  u: FloatArray | null,
  xd: FloatArray | null,
  x: FloatArray,
  lin: Linear,
  lora: LoraPair | null,
  scaling: number,
  mask: DropoutMask | null,
  M: number,
  mm: Matmuls = serialMatmuls,
): void {
  const { inFeatures: K, outFeatures: N } = lin;
  mm.matmulABt(y, x, lin.weight, lin.bias, M, K, N);
  if (lora === null) return;
  if (u === null) throw new Error('linear.forward: LoRA needs a u buffer');
  const r = lora.A.length / K;
  let src = x;
  if (mask !== null) {
    if (xd === null) throw new Error('linear.forward: dropout needs an xd buffer');
    applyMask(xd, x, mask, M * K);
    src = xd;
  }
  mm.matmulABt(u, src, lora.A, null, M, K, r);
  mm.matmulABt(y, u, lora.B, null, M, r, N, true, scaling);
}

function applyMask(xd: FloatArray, x: FloatArray, mask: DropoutMask, n: number): void {
  const { keep, scale } = mask;
  for (let i = 0; i < n; i++) xd[i] = keep[i] === 0 ? 0 : x[i] * scale;
}

/**
 * dx += ∂L/∂x (skipped when dx is null), dA/dB += LoRA gradients (skipped when null). Arguments as forward's.
 */
export function backward(
  dx: FloatArray | null,
  dA: FloatArray | null,
  dB: FloatArray | null,
  dY: FloatArray,
  u: FloatArray | null,
  xd: FloatArray | null,
  x: FloatArray,
  lin: Linear,
  lora: LoraPair | null,
  scaling: number,
  mask: DropoutMask | null,
  M: number,
  mm: Matmuls = serialMatmuls,
): void {
  const { inFeatures: K, outFeatures: N } = lin;
  if (dx !== null) mm.matmulAB(dx, dY, lin.weight, M, N, K, true);
  if (lora === null) return;
  if (u === null) throw new Error('linear.backward: LoRA needs the u saved by forward');
  const r = lora.A.length / K;
  if (dB !== null) mm.matmulAtB(dB, dY, u, M, N, r, true, scaling);
  if (dA === null && dx === null) return;
  const g = mm.f64(M * r);
  mm.matmulAB(g, dY, lora.B, M, N, r);
  const src = mask === null ? x : xd;
  if (src === null) throw new Error('linear.backward: dropout needs the xd saved by forward');
  if (dA !== null) mm.matmulAtB(dA, g, src, M, r, K, true, scaling);
  if (dx === null) return;
  if (mask === null) {
    mm.matmulAB(dx, g, lora.A, M, r, K, true, scaling);
    return;
  }
  const t = mm.f64(M * K);
  mm.matmulAB(t, g, lora.A, M, r, K, false, scaling);
  const { keep, scale } = mask;
  for (let i = 0; i < M * K; i++) if (keep[i] !== 0) dx[i] += t[i] * scale;
}
