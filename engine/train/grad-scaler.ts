/**
 * Dynamic loss scaling with the semantics of torch.amp.GradScaler (DESIGN.md §4). Disabled (scale 1, never skips)
 * in fp32 runs.
 */
import type { FloatArray } from '../model/types.ts';

export interface GradScalerOptions {
  enabled: boolean;
  initScale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
}

export const GRAD_SCALER_DEFAULTS: GradScalerOptions = { enabled: true, initScale: 65536, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2000 };

export interface GradScalerState {
  scale: number;
  growthTracker: number;
}

/**
 * Multiplies every gradient by 1/lossScale in place (the reciprocal taken in float64 and rounded to fp32, as torch)
 * and reports whether any value is inf or NaN. A loss scale of 1 only checks.
 */
export function unscaleGrads(grads: FloatArray[], lossScale: number): boolean {
  const inv = Math.fround(1 / lossScale);
  let foundInf = false;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const x = g[i] * inv;
      if (!Number.isFinite(x)) foundInf = true;
      g[i] = x;
    }
  }
  return foundInf;
}

export class GradScaler {
  readonly options: GradScalerOptions;
  scale: number;
  growthTracker = 0;

  constructor(options: Partial<GradScalerOptions> = {}) {
    this.options = { ...GRAD_SCALER_DEFAULTS, ...options };
    this.scale = this.options.enabled ? this.options.initScale : 1;
  }

  get enabled(): boolean {
    return this.options.enabled;
  }

  /** The factor the loss is multiplied by before backward. */
  lossScale(): number {
    return this.options.enabled ? this.scale : 1;
  }

  /**
   * Multiplies every gradient by 1/scale in place (the reciprocal taken in float64 and rounded to fp32, as torch) and
   * reports whether any value is inf or NaN; with the scaler disabled it only checks.
   */
  unscale(grads: FloatArray[]): boolean {
    return unscaleGrads(grads, this.lossScale());
  }

  /** After a step: an overflow halves the scale and restarts the count; growthInterval clean steps double it. */
  update(foundInf: boolean): void {
    if (!this.options.enabled) return;
    if (foundInf) {
      this.scale = Math.fround(this.scale * this.options.backoffFactor);
      this.growthTracker = 0;
      return;
    }
    const successful = this.growthTracker + 1;
    if (successful === this.options.growthInterval) {
      const grown = Math.fround(this.scale * this.options.growthFactor);
      if (Number.isFinite(grown)) this.scale = grown;
      this.growthTracker = 0;
    } else {
      this.growthTracker = successful;
    }
  }

  state(): GradScalerState {
    return { scale: this.scale, growthTracker: this.growthTracker };
  }

  loadState(s: GradScalerState): void {
    this.scale = s.scale;
    this.growthTracker = s.growthTracker;
  }
}
