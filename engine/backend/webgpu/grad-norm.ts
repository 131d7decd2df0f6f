/**
 * Global L2 norm of the LoRA gradients (all adapters live in one flat f32 buffer): each of up to 256 workgroups
 * sums squares over a grid-stride slice, then one workgroup adds the partials. The result (the squared norm) stays
 * on the device in `out[0]`; the host reads it with the step's other scalars and takes the root.
 */
import { rowWorkgroup, useSubgroups } from './rmsnorm.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, reduceSumFn, sgBuiltins, sgFallback } from './wgsl.ts';
import { NORM_PARTIALS } from './buffer-sizes.ts';

export { NORM_PARTIALS };

/** out[0] = Σ g². `partials` is f32 scratch of NORM_PARTIALS elements. */
export function gradNormSquared(prog: Program, out: GpuTensor, partials: GpuTensor, grads: GpuTensor, n: number): void {
  const wg = rowWorkgroup(1024);
  const sg = useSubgroups(prog, wg);
  const groups = Math.max(1, Math.min(NORM_PARTIALS, Math.ceil(n / wg)));
  const pass1 = kernelModule({
    key: `gradnorm.partial:sg=${sg}`,
    subgroups: sg,
    params: [
      ['n', 'u32'],
      ['stride', 'u32'],
    ],
    bindings: [
      { name: 'g', type: grads.dtype, access: 'read' },
      { name: 'partials', type: 'f32', access: 'read_write' },
    ],
    body: `${reduceSumFn('rsum', wg, sg)}
@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${sgBuiltins(sg)}) {
  ${sgFallback(sg)}
  var s = 0.0;
  for (var i = wid.x * ${wg}u + lid; i < p.n; i = i + p.stride) { let x = f32(g[i]); s = fma(x, x, s); }
  let total = rsum(s, lid, sg_id, sg_size);
  if (lid == 0u) { partials[wid.x] = total; }
}`,
  });
  prog.dispatch(pass1, [grads, partials], { n, stride: groups * wg }, [groups, 1, 1]);
  const pass2 = kernelModule({
    key: `gradnorm.final:sg=${sg}`,
    subgroups: sg,
    params: [['n', 'u32']],
    bindings: [
      { name: 'partials', type: 'f32', access: 'read' },
      { name: 'o', type: 'f32', access: 'read_write' },
    ],
    body: `${reduceSumFn('rsum', wg, sg)}
@compute @workgroup_size(${wg}) fn main(@builtin(local_invocation_index) lid: u32${sgBuiltins(sg)}) {
  ${sgFallback(sg)}
  var s = 0.0;
  for (var i = lid; i < p.n; i = i + ${wg}u) { s = s + partials[i]; }
  let total = rsum(s, lid, sg_id, sg_size);
  if (lid == 0u) { o[0] = total; }
}`,
  });
  prog.dispatch(pass2, [partials, out], { n: groups }, [1, 1, 1]);
}
