/**
 * A frozen Linear with its LoRA branch on the GPU, as PEFT's lora.Linear (DESIGN.md §3), composed from the tiled
 * matmul so every LoRA product runs through the rank r:
 *   forward   y = x·Wᵀ + b;  u = drop(x)·Aᵀ;  y += s·u·Bᵀ
 *   backward  dx (=|+=) dY·W;  dB += s·dYᵀ·u;  g = dY·B;  dA += s·gᵀ·drop(x);  dx += s·drop'(g·A)
 * Dropout masks come from a stateless hash of (seed, element index), so backward regenerates them; LoRA gradients
 * always accumulate (+=), which is what gradient accumulation over micro-batches needs.
 */
import { matmul } from './matmul.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';

export interface GpuLinear {
  weight: GpuTensor; // [out, in]
  bias: GpuTensor | null; // [out]
  outFeatures: number;
  inFeatures: number;
}

export interface GpuLoraBranch {
  A: GpuTensor; // [r, in] f32
  B: GpuTensor; // [out, r] f32
  dA: GpuTensor | null; // f32, accumulated
  dB: GpuTensor | null;
  /** [M, r] f32: drop(x)·Aᵀ, written by forward and read by backward. */
  u: GpuTensor;
  /** [M, r] f32 scratch for dY·B. */
  g: GpuTensor;
  r: number;
  scaling: number;
  /** `seed` may be a thunk: the recorded program re-reads it each step (a new mask per step). */
  dropout: { p: number; seed: ParamValue } | null;
}

export function linearForward(prog: Program, y: GpuTensor, x: GpuTensor, lin: GpuLinear, lora: GpuLoraBranch | null, M: number): void {
  const { inFeatures: K, outFeatures: N } = lin;
  matmul(prog, { a: x, b: lin.weight, out: y, M, N, K, layoutA: 'mk', layoutB: 'nk', bias: lin.bias });
  if (lora === null) return;
  const drop = lora.dropout && lora.dropout.p > 0 ? { operand: 'a' as const, ...lora.dropout } : null;
  matmul(prog, { a: x, b: lora.A, out: lora.u, M, N: lora.r, K, layoutA: 'mk', layoutB: 'nk', dropout: drop });
  matmul(prog, { a: lora.u, b: lora.B, out: y, M, N, K: lora.r, layoutA: 'mk', layoutB: 'nk', alpha: lora.scaling, accumulate: true });
}

/** dx may be null (nothing upstream needs it); `accumulateDx` adds the base dY·W to dx instead of overwriting. */
export function linearBackward(prog: Program, dx: GpuTensor | null, accumulateDx: boolean, dY: GpuTensor, x: GpuTensor, lin: GpuLinear, lora: GpuLoraBranch | null, M: number): void {
  const { inFeatures: K, outFeatures: N } = lin;
  if (dx !== null) matmul(prog, { a: dY, b: lin.weight, out: dx, M, N: K, K: N, layoutA: 'mk', layoutB: 'kn', accumulate: accumulateDx });
  if (lora === null) return;
  const r = lora.r;
  const s = lora.scaling;
  const p = lora.dropout && lora.dropout.p > 0 ? lora.dropout : null;
  if (lora.dB !== null) matmul(prog, { a: dY, b: lora.u, out: lora.dB, M: N, N: r, K: M, layoutA: 'km', layoutB: 'kn', alpha: s, accumulate: true });
  if (lora.dA === null && dx === null) return;
  matmul(prog, { a: dY, b: lora.B, out: lora.g, M, N: r, K: N, layoutA: 'mk', layoutB: 'kn' });
  if (lora.dA !== null) {
    matmul(prog, { a: lora.g, b: x, out: lora.dA, M: r, N: K, K: M, layoutA: 'km', layoutB: 'kn', alpha: s, accumulate: true, dropout: p ? { operand: 'b', ...p } : null });
  }
  if (dx !== null) {
    matmul(prog, { a: lora.g, b: lora.A, out: dx, M, N: K, K: r, layoutA: 'mk', layoutB: 'kn', alpha: s, accumulate: true, dropout: p ? { operand: 'c', ...p } : null });
  }
}
