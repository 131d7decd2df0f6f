/**
 * Token embedding lookup on the GPU: out[n, :] = table[ids[n], :]. The table is frozen (LoRA never adapts it), so
 * there is no backward kernel. Ids are checked on the host (llama-step) against the vocabulary before upload.
 */
import { grid, WG } from './elementwise.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, WG_BUILTINS } from './wgsl.ts';

export function embeddingForward(prog: Program, out: GpuTensor, ids: GpuTensor, table: GpuTensor, N: number, C: number): void {
  if (ids.dtype !== 'i32') throw new Error(`embedding: ids '${ids.name}' must be i32, got ${ids.dtype}`);
  const spec = kernelModule({
    key: `embedding:${table.dtype}${out.dtype}`,
    params: [
      ['n', 'u32'],
      ['C', 'u32'],
    ],
    bindings: [
      { name: 'ids', type: 'i32', access: 'read' },
      { name: 'table', type: table.dtype, access: 'read' },
      { name: 'o', type: out.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  let i = (${FLAT_WG}) * ${WG}u + lid;
  if (i >= p.n) { return; }
  let row = i / p.C;
  let c = i % p.C;
  o[i] = ${out.dtype}(table[u32(ids[row]) * p.C + c]);
}`,
  });
  prog.dispatch(spec, [ids, table, out], { n: N * C, C }, grid(prog, N * C));
}
