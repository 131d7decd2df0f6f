/**
 * Grad-scaler unscale on the GPU, as torch's _amp_foreach_non_finite_check_and_unscale_: g ← g·inv_scale in place,
 * and found_inf[0] ← 1 when any result is inf or NaN. WGSL has no isinf/isnan (and compilers may assume finite
 * math), so the test looks at the exponent bits.
 */
import { FLAT_INDEX, grid, WG } from './elementwise.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, WG_BUILTINS } from './wgsl.ts';

export const NON_FINITE_FN = `fn non_finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u; }`;

/** grads (f32, n elements) *= invScale; foundInf (u32[1]) is OR-ed with 1 on any inf/NaN. Clear it beforehand. */
export function unscaleGrads(prog: Program, grads: GpuTensor, foundInf: GpuTensor, n: number, invScale: number): void {
  if (grads.dtype !== 'f32') throw new Error(`unscale: gradients '${grads.name}' must be f32 (master precision), got ${grads.dtype}`);
  const spec = kernelModule({
    key: 'unscale',
    params: [
      ['n', 'u32'],
      ['inv', 'f32'],
    ],
    bindings: [
      { name: 'g', type: 'f32', access: 'read_write' },
      { name: 'found', type: 'atomic<u32>', access: 'read_write' },
    ],
    body: `${NON_FINITE_FN}
@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let x = g[i] * p.inv;
  g[i] = x;
  if (non_finite(x)) { atomicOr(&found[0], 1u); }
}`,
  });
  prog.dispatch(spec, [grads, foundInf], { n, inv: Math.fround(invScale) }, grid(prog, n));
}
