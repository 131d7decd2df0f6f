/**
 * RMSNorm on the GPU, one workgroup per row: y = dtype(x·r)·w with r = 1/sqrt(mean(x²) + eps) in f32, rstd saved for
 * backward. Also runs per head (rows = tokens·heads, C = head_dim) for Qwen3's q_norm/k_norm. Norm weights are
 * frozen, so backward gives dx only:  dx (+)= r·w·dy − r³/C · x · Σ w·dy·x.
 */
import type { Program } from './runner.ts';
import { grid1D } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, reduceSumFn, sgBuiltins, sgFallback, WG_BUILTINS } from './wgsl.ts';

/** Threads per row: enough to cover head_dim rows in one pass, 256 for hidden-size rows. */
export function rowWorkgroup(C: number): number {
  return C <= 128 ? 64 : 256;
}

/** Whether the subgroup reduction is safe for this workgroup size (full subgroups only). */
export function useSubgroups(prog: Program, wg: number): boolean {
  const ctx = prog.runner.ctx;
  return ctx.features.subgroups && ctx.subgroupMaxSize > 0 && wg % ctx.subgroupMaxSize === 0;
}

export function rmsnormForward(prog: Program, out: GpuTensor, rstd: GpuTensor, x: GpuTensor, weight: GpuTensor, rows: number, C: number, eps: number): void {
  const wg = rowWorkgroup(C);
  const sg = useSubgroups(prog, wg);
  const spec = kernelModule({
    key: `rmsnorm.fwd:${x.dtype}${weight.dtype}${out.dtype}:wg=${wg}:sg=${sg}`,
    subgroups: sg,
    params: [
      ['rows', 'u32'],
      ['C', 'u32'],
      ['eps', 'f32'],
    ],
    bindings: [
      { name: 'x', type: x.dtype, access: 'read' },
      { name: 'w', type: weight.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
      { name: 'rstd', type: 'f32', access: 'read_write' },
    ],
    body: `${reduceSumFn('rsum', wg, sg)}
@compute @workgroup_size(${wg}) fn main(${WG_BUILTINS}${sgBuiltins(sg)}) {
  ${sgFallback(sg)}
  let row = ${FLAT_WG};
  if (row >= p.rows) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c = c + ${wg}u) { let v = f32(x[base + c]); ss = ss + v * v; }
  let total = rsum(ss, lid, sg_id, sg_size);
  let r = 1.0 / sqrt(total / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  for (var c = lid; c < p.C; c = c + ${wg}u) {
    o[base + c] = ${out.dtype}(f32(${out.dtype}(f32(x[base + c]) * r)) * f32(w[c]));
  }
}`,
  });
  prog.dispatch(spec, [x, weight, out, rstd], { rows, C, eps }, grid1D(rows, prog.runner.ctx.limits.maxComputeWorkgroupsPerDimension));
}

export function rmsnormBackward(prog: Program, dx: GpuTensor, dOut: GpuTensor, x: GpuTensor, weight: GpuTensor, rstd: GpuTensor, rows: number, C: number, accumulate: boolean): void {
  const wg = rowWorkgroup(C);
  const sg = useSubgroups(prog, wg);
  const spec = kernelModule({
    key: `rmsnorm.bwd:${dOut.dtype}${x.dtype}${weight.dtype}${dx.dtype}:wg=${wg}:sg=${sg}`,
    subgroups: sg,
    params: [
      ['rows', 'u32'],
      ['C', 'u32'],
      ['accumulate', 'u32'],
    ],
    bindings: [
      { name: 'dy', type: dOut.dtype, access: 'read' },
      { name: 'x', type: x.dtype, access: 'read' },
      { name: 'w', type: weight.dtype, access: 'read' },
      { name: 'rstd', type: 'f32', access: 'read' },
      { name: 'dx', type: dx.dtype, access: 'read_write' },
    ],
    body: `${reduceSumFn('rsum', wg, sg)}
@compute @workgroup_size(${wg}) fn main(${WG_BUILTINS}${sgBuiltins(sg)}) {
  ${sgFallback(sg)}
  let row = ${FLAT_WG};
  if (row >= p.rows) { return; }
  let base = row * p.C;
  let r = rstd[row];
  var dot = 0.0;
  for (var c = lid; c < p.C; c = c + ${wg}u) { dot = dot + f32(w[c]) * f32(dy[base + c]) * f32(x[base + c]); }
  let total = rsum(dot, lid, sg_id, sg_size);
  let k = r * r * r * total / f32(p.C);
  for (var c = lid; c < p.C; c = c + ${wg}u) {
    let g = r * f32(w[c]) * f32(dy[base + c]) - k * f32(x[base + c]);
    var prev = 0.0;
    if (p.accumulate != 0u) { prev = f32(dx[base + c]); }
    dx[base + c] = ${dx.dtype}(g + prev);
  }
}`,
  });
  prog.dispatch(spec, [dOut, x, weight, rstd, dx], { rows, C, accumulate: accumulate ? 1 : 0 }, grid1D(rows, prog.runner.ctx.limits.maxComputeWorkgroupsPerDimension));
}
