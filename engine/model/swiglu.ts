/** SwiGLU gate of the LLaMA MLP: out = silu(gate) · up, silu(g) = g·σ(g). */
import type { FloatArray } from './types.ts';

export function forward(out: FloatArray, gate: FloatArray, up: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
}

/** dGate, dUp += gradients; silu'(g) = σ(g)·(1 + g·(1 − σ(g))). */
export function backward(dGate: FloatArray, dUp: FloatArray, dOut: FloatArray, gate: FloatArray, up: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const sig = 1 / (1 + Math.exp(-g));
    const d = dOut[i];
    dUp[i] += d * g * sig;
    dGate[i] += d * up[i] * sig * (1 + g * (1 - sig));
  }
}
