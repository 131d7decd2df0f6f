/** Elementwise helpers of the step: residual add, copy with dtype cast, fill. */
import { grid1D, type Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, WG_BUILTINS, type KernelSpec } from './wgsl.ts';

export const WG = 256;

export function grid(prog: Program, n: number): [number, number, number] {
  return grid1D(Math.ceil(n / WG), prog.runner.ctx.limits.maxComputeWorkgroupsPerDimension);
}

export const FLAT_INDEX = `let i = (${FLAT_WG}) * ${WG}u + lid; if (i >= p.n) { return; }`;

function addKernel(a: GpuTensor, b: GpuTensor, out: GpuTensor): KernelSpec {
  return kernelModule({
    key: `add:${a.dtype}${b.dtype}${out.dtype}`,
    params: [['n', 'u32']],
    bindings: [
      { name: 'a', type: a.dtype, access: 'read' },
      { name: 'b', type: b.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) { ${FLAT_INDEX} o[i] = ${out.dtype}(f32(a[i]) + f32(b[i])); }`,
  });
}

/** out = a + b (n elements; any float dtypes, summed in f32). */
export function add(prog: Program, a: GpuTensor, b: GpuTensor, out: GpuTensor, n: number): void {
  prog.dispatch(addKernel(a, b, out), [a, b, out], { n }, grid(prog, n));
}

/** out (=|+=) src, converting dtype. */
export function copy(prog: Program, src: GpuTensor, out: GpuTensor, n: number, accumulate = false): void {
  const spec = kernelModule({
    key: `copy:${src.dtype}${out.dtype}:acc=${accumulate}`,
    params: [['n', 'u32']],
    bindings: [
      { name: 's', type: src.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) { ${FLAT_INDEX} o[i] = ${out.dtype}(f32(s[i])${accumulate ? ' + f32(o[i])' : ''}); }`,
  });
  prog.dispatch(spec, [src, out], { n }, grid(prog, n));
}

/** out[0..n) = value. */
export function fill(prog: Program, out: GpuTensor, n: number, value = 0): void {
  const spec = kernelModule({
    key: `fill:${out.dtype}`,
    params: [
      ['n', 'u32'],
      ['value', 'f32'],
    ],
    bindings: [{ name: 'o', type: out.dtype, access: 'read_write' }],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) { ${FLAT_INDEX} o[i] = ${out.dtype}(p.value); }`,
  });
  prog.dispatch(spec, [out], { n, value }, grid(prog, n));
}
