/** SwiGLU of the LLaMA MLP on the GPU: a = silu(g)·up; backward gives dg, dup (f32 math whatever the storage). */
import { FLAT_INDEX, grid, WG } from './elementwise.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, WG_BUILTINS } from './wgsl.ts';

export function swigluForward(prog: Program, out: GpuTensor, gate: GpuTensor, up: GpuTensor, n: number): void {
  const spec = kernelModule({
    key: `swiglu.fwd:${gate.dtype}${up.dtype}${out.dtype}`,
    params: [['n', 'u32']],
    bindings: [
      { name: 'g', type: gate.dtype, access: 'read' },
      { name: 'u', type: up.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let x = f32(g[i]);
  o[i] = ${out.dtype}(x / (1.0 + exp(-x)) * f32(u[i]));
}`,
  });
  prog.dispatch(spec, [gate, up, out], { n }, grid(prog, n));
}

/** dGate, dUp (=, not +=) from dOut. */
export function swigluBackward(prog: Program, dGate: GpuTensor, dUp: GpuTensor, dOut: GpuTensor, gate: GpuTensor, up: GpuTensor, n: number): void {
  const spec = kernelModule({
    key: `swiglu.bwd:${dOut.dtype}${gate.dtype}${up.dtype}${dGate.dtype}${dUp.dtype}`,
    params: [['n', 'u32']],
    bindings: [
      { name: 'dout', type: dOut.dtype, access: 'read' },
      { name: 'g', type: gate.dtype, access: 'read' },
      { name: 'u', type: up.dtype, access: 'read' },
      { name: 'dg', type: dGate.dtype, access: 'read_write' },
      { name: 'du', type: dUp.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let x = f32(g[i]);
  let d = f32(dout[i]);
  let sig = 1.0 / (1.0 + exp(-x));
  du[i] = ${dUp.dtype}(d * x * sig);
  dg[i] = ${dGate.dtype}(d * f32(u[i]) * sig * (1.0 + x * (1.0 - sig)));
}`,
  });
  prog.dispatch(spec, [dOut, gate, up, dGate, dUp], { n }, grid(prog, n));
}
