/**
 * AdamW over the flat LoRA buffers, the update of engine/train/adamw.ts (torch.optim.AdamW) in f32:
 *   p ← p·(1 − lr·wd);  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²;  p ← p − stepSize·m / (sqrt(v)/√bc2 + eps)
 * with g = grad·gradMul (the clipping coefficient). The per-step scalars (lr and bias corrections, which the host
 * computes in f64 as torch does) live in a small storage buffer `hp` written before each step, so the recorded
 * program never changes.
 */
import { FLAT_INDEX, grid, WG } from './elementwise.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, WG_BUILTINS } from './wgsl.ts';
import { ADAMW_HP_SIZE } from './buffer-sizes.ts';

export { ADAMW_HP_SIZE };

/** Layout of `hp` (f32). */
export const ADAMW_HP = { decay: 0, stepSize: 1, bc2Sqrt: 2, oneMinusBeta1: 3, beta2: 4, eps: 5, gradMul: 6, applyDecay: 7, oneMinusBeta2: 8 } as const;

export interface AdamWStepScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The step number after this update (1 for the first). */
  t: number;
  /** Multiplier of the gradient (clip coefficient, 1 when not clipping). */
  gradMul: number;
}

/** The values of `hp` for one step, computed as engine/train/adamw.ts computes them. */
export function adamwScalars(s: AdamWStepScalars): Float32Array {
  const hp = new Float32Array(ADAMW_HP_SIZE);
  hp[ADAMW_HP.decay] = 1 - s.lr * s.weightDecay;
  hp[ADAMW_HP.stepSize] = s.lr / (1 - s.beta1 ** s.t);
  hp[ADAMW_HP.bc2Sqrt] = Math.sqrt(1 - s.beta2 ** s.t);
  // 1 − β in f64 then rounded once: 1 − fround(0.999) in f32 is off by 1.3e-5 relative.
  hp[ADAMW_HP.oneMinusBeta1] = 1 - s.beta1;
  hp[ADAMW_HP.beta2] = s.beta2;
  hp[ADAMW_HP.oneMinusBeta2] = 1 - s.beta2;
  hp[ADAMW_HP.eps] = s.eps;
  hp[ADAMW_HP.gradMul] = s.gradMul;
  hp[ADAMW_HP.applyDecay] = s.weightDecay !== 0 ? 1 : 0;
  return hp;
}

export function adamwStep(prog: Program, params: GpuTensor, grads: GpuTensor, m: GpuTensor, v: GpuTensor, hp: GpuTensor, n: number): void {
  for (const t of [params, grads, m, v, hp]) if (t.dtype !== 'f32') throw new Error(`adamw: '${t.name}' must be f32, got ${t.dtype}`);
  const spec = kernelModule({
    key: 'adamw',
    params: [['n', 'u32']],
    bindings: [
      { name: 'pw', type: 'f32', access: 'read_write' },
      { name: 'g', type: 'f32', access: 'read' },
      { name: 'mw', type: 'f32', access: 'read_write' },
      { name: 'vw', type: 'f32', access: 'read_write' },
      { name: 'hp', type: 'f32', access: 'read' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  var pj = pw[i];
  if (hp[${ADAMW_HP.applyDecay}] != 0.0) { pj = pj * hp[${ADAMW_HP.decay}]; }
  let gj = g[i] * hp[${ADAMW_HP.gradMul}];
  let mj = mw[i] + hp[${ADAMW_HP.oneMinusBeta1}] * (gj - mw[i]);
  let vj = hp[${ADAMW_HP.beta2}] * vw[i] + hp[${ADAMW_HP.oneMinusBeta2}] * gj * gj;
  mw[i] = mj;
  vw[i] = vj;
  pw[i] = pj - (hp[${ADAMW_HP.stepSize}] * mj) / (sqrt(vj) / hp[${ADAMW_HP.bc2Sqrt}] + hp[${ADAMW_HP.eps}]);
}`,
  });
  prog.dispatch(spec, [params, grads, m, v, hp], { n }, grid(prog, n));
}
