/**
 * RMSNorm as transformers' LlamaRMSNorm: y = (x · 1/sqrt(mean(x²) + eps)) · weight, the statistics in f64 here (fp32
 * there). Rows are the last dimension: N rows of C. Also used per head (C = head_dim) for Qwen3's q_norm/k_norm.
 */
import type { FloatArray } from './types.ts';

/** out[N,C] = rmsnorm(x) · weight; rstd[N] saved for backward. out may alias x. */
export function forward(out: FloatArray, rstd: FloatArray, x: FloatArray, weight: FloatArray, N: number, C: number, eps: number): void {
  const fp32 = out instanceof Float32Array;
  for (let n = 0; n < N; n++) {
    const o = n * C;
    let ss = 0;
    for (let c = 0; c < C; c++) {
      const v = x[o + c];
      ss += v * v;
    }
    // fp32 runs use the fp32 rsqrt, as torch does; f64 runs stay exact for finite differences.
    const r = fp32 ? Math.fround(1 / Math.sqrt(ss / C + eps)) : 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    // transformers rounds the normalised value to the activation dtype before multiplying by the weight.
    if (fp32) for (let c = 0; c < C; c++) out[o + c] = Math.fround(x[o + c] * r) * weight[c];
    else for (let c = 0; c < C; c++) out[o + c] = x[o + c] * r * weight[c];
  }
}

/**
 * dx += ∂L/∂x; dWeight += ∂L/∂weight (skipped when null, e.g. frozen norms).
 * With x̂ = x·r: dx_i = r·(w_i·dy_i) − r³/C · x_i · Σ_j w_j·dy_j·x_j.
 */
export function backward(
  dx: FloatArray,
  dWeight: FloatArray | null,
  dOut: FloatArray,
  x: FloatArray,
  weight: FloatArray,
  rstd: FloatArray,
  N: number,
  C: number,
): void {
  const dw = dWeight === null ? null : new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const o = n * C;
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += weight[c] * dOut[o + c] * x[o + c];
    const k = (r * r * r * dot) / C;
    for (let c = 0; c < C; c++) dx[o + c] += r * weight[c] * dOut[o + c] - k * x[o + c];
    if (dw !== null) for (let c = 0; c < C; c++) dw[c] += dOut[o + c] * x[o + c] * r;
  }
  if (dWeight !== null && dw !== null) for (let c = 0; c < C; c++) dWeight[c] += dw[c];
}
