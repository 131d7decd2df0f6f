/**
 * Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_(params, maxNorm): L2 norm over all gradients
 * together; when it exceeds maxNorm every gradient is multiplied by maxNorm / (norm + 1e-6).
 */
import type { FloatArray } from '../model/types.ts';

export function globalGradNorm(grads: FloatArray[]): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

/** Returns the norm before clipping (what the charts show); maxNorm ≤ 0 only measures. */
export function clipGradNorm(grads: FloatArray[], maxNorm: number): number {
  const norm = globalGradNorm(grads);
  if (maxNorm > 0 && Number.isFinite(norm)) {
    const coef = maxNorm / (norm + 1e-6);
    if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
  return norm;
}
