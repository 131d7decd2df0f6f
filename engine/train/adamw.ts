/**
 * AdamW with the semantics of torch.optim.AdamW (decoupled weight decay, bias corrections, eps outside the sqrt).
 * Parameters, moments and the step count are fp32 / integer state that a checkpoint saves and restores exactly.
 */
import type { FloatArray } from '../model/types.ts';

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/** Everything AdamW remembers between steps; `m[i]`/`v[i]` belong to the i-th parameter given to the constructor. */
export interface AdamWState {
  t: number;
  m: Float32Array[];
  v: Float32Array[];
}

/**
 * The update of one tensor, element-wise in f64 (engine/backend/cpu's native kernel does exactly these operations);
 * the scalars are the step's, computed once by AdamW.step.
 */
export type AdamWKernel = (p: FloatArray, g: FloatArray, m: Float32Array, v: Float32Array, beta1: number, beta2: number, eps: number, weightDecay: number, decay: number, stepSize: number, bc2Sqrt: number) => void;

/** The TypeScript update (the reference of the native one). */
export const adamwUpdate: AdamWKernel = (p, g, m, v, beta1, beta2, eps, weightDecay, decay, stepSize, bc2Sqrt) => {
  for (let j = 0; j < p.length; j++) {
    let pj = p[j];
    if (weightDecay !== 0) pj *= decay;
    const gj = g[j];
    const mj = (m[j] = m[j] + (1 - beta1) * (gj - m[j]));
    const vj = (v[j] = beta2 * v[j] + (1 - beta2) * gj * gj);
    p[j] = pj - (stepSize * mj) / (Math.sqrt(vj) / bc2Sqrt + eps);
  }
};

export class AdamW {
  readonly params: FloatArray[];
  readonly options: AdamWOptions;
  state: AdamWState;

  constructor(params: FloatArray[], options: Partial<AdamWOptions> = {}) {
    this.params = params;
    this.options = { ...ADAMW_DEFAULTS, ...options };
    this.state = { t: 0, m: params.map((p) => new Float32Array(p.length)), v: params.map((p) => new Float32Array(p.length)) };
  }

  /** One update with learning rate `lr`; `grads[i]` has the shape of `params[i]`. `kernel`: who updates a tensor. */
  step(grads: FloatArray[], lr: number, kernel: AdamWKernel = adamwUpdate): void {
    if (grads.length !== this.params.length) throw new Error(`AdamW: got ${grads.length} gradients for ${this.params.length} parameters`);
    const { beta1, beta2, eps, weightDecay } = this.options;
    const t = ++this.state.t;
    // torch evaluates these scalars in float64 on the host, as here.
    const decay = 1 - lr * weightDecay;
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / bc1;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      const g = grads[i];
      const m = this.state.m[i];
      const v = this.state.v[i];
      if (g.length !== p.length) throw new Error(`AdamW: gradient ${i} has ${g.length} values, its parameter ${p.length}`);
      kernel(p, g, m, v, beta1, beta2, eps, weightDecay, decay, stepSize, bc2Sqrt);
    }
  }

  /** Replaces the state with a saved one (checked against the parameter shapes). */
  loadState(state: AdamWState): void {
    if (state.m.length !== this.params.length || state.v.length !== this.params.length) {
      throw new Error(`AdamW: saved state has ${state.m.length} moments for ${this.params.length} parameters`);
    }
    for (let i = 0; i < this.params.length; i++) {
      if (state.m[i].length !== this.params[i].length || state.v[i].length !== this.params[i].length) {
        throw new Error(`AdamW: saved moments of parameter ${i} have ${state.m[i].length} values, the parameter ${this.params[i].length}`);
      }
    }
    this.state = { t: state.t, m: state.m.map((a) => Float32Array.from(a)), v: state.v.map((a) => Float32Array.from(a)) };
  }
}
