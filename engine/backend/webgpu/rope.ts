/**
 * RoPE (half-split, rotate_half) on the GPU, in place on q or k laid out [B·T, heads·D]. The cos/sin tables [T, D/2]
 * are built on the host by the cpu backend's `ropeTables` (fp32, llama3 scaling included) and uploaded, so both
 * backends rotate by bit-identical angles. ropeAt() rotates the new tokens of a generation step at a position offset.
 */
import { FLAT_INDEX, grid, WG } from './elementwise.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { kernelModule, WG_BUILTINS } from './wgsl.ts';

export interface RopeDims {
  tokens: number;
  T: number;
  nHeads: number;
  headDim: number;
}

/** direction 'forward': x ← R·x; 'backward': dx ← Rᵀ·dx (the gradient of the rotation). */
export function rope(prog: Program, x: GpuTensor, cos: GpuTensor, sin: GpuTensor, d: RopeDims, direction: 'forward' | 'backward'): void {
  const half = d.headDim / 2;
  const n = d.tokens * d.nHeads * half;
  // Forward: (x1 c − x2 s, x2 c + x1 s). Backward is the transpose: (d1 c + d2 s, d2 c − d1 s).
  const sgn = direction === 'forward' ? '-' : '+';
  const sgn2 = direction === 'forward' ? '+' : '-';
  const spec = kernelModule({
    key: `rope.${direction}:${x.dtype}`,
    params: [
      ['n', 'u32'],
      ['T', 'u32'],
      ['heads', 'u32'],
      ['half', 'u32'],
    ],
    bindings: [
      { name: 'x', type: x.dtype, access: 'read_write' },
      { name: 'cosT', type: 'f32', access: 'read' },
      { name: 'sinT', type: 'f32', access: 'read' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let k = i % p.half;
  let hrow = i / p.half;
  let token = hrow / p.heads;
  let t = token % p.T;
  let o = hrow * 2u * p.half + k;
  let c = cosT[t * p.half + k];
  let s = sinT[t * p.half + k];
  let x1 = f32(x[o]);
  let x2 = f32(x[o + p.half]);
  x[o] = ${x.dtype}(x1 * c ${sgn} x2 * s);
  x[o + p.half] = ${x.dtype}(x2 * c ${sgn2} x1 * s);
}`,
  });
  prog.dispatch(spec, [x, cos, sin], { n, T: d.T, heads: d.nHeads, half }, grid(prog, n));
}

export interface RopeAtDims {
  tokens: number;
  nHeads: number;
  headDim: number;
}

/**
 * Forward rotation of one sequence's new tokens during generation: token i of x sits at absolute position pos + i,
 * so the tables must hold at least pos + tokens rows. `pos` may be a thunk (a decode program is recorded once and
 * replayed at every position). Same arithmetic as rope() forward.
 */
export function ropeAt(prog: Program, x: GpuTensor, cos: GpuTensor, sin: GpuTensor, d: RopeAtDims, pos: ParamValue): void {
  const half = d.headDim / 2;
  const n = d.tokens * d.nHeads * half;
  const spec = kernelModule({
    key: `rope.at:${x.dtype}`,
    params: [
      ['n', 'u32'],
      ['heads', 'u32'],
      ['half', 'u32'],
      ['pos', 'u32'],
    ],
    bindings: [
      { name: 'x', type: x.dtype, access: 'read_write' },
      { name: 'cosT', type: 'f32', access: 'read' },
      { name: 'sinT', type: 'f32', access: 'read' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  ${FLAT_INDEX}
  let k = i % p.half;
  let hrow = i / p.half;
  let t = p.pos + hrow / p.heads;
  let o = hrow * 2u * p.half + k;
  let c = cosT[t * p.half + k];
  let s = sinT[t * p.half + k];
  let x1 = f32(x[o]);
  let x2 = f32(x[o + p.half]);
  x[o] = ${x.dtype}(x1 * c - x2 * s);
  x[o + p.half] = ${x.dtype}(x2 * c + x1 * s);
}`,
  });
  prog.dispatch(spec, [x, cos, sin], { n, heads: d.nHeads, half, pos }, grid(prog, n));
}
