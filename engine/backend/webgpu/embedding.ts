/**
 * Token embedding lookup on the GPU: out[n, :] = table[ids[n], :]. The table is frozen (LoRA never adapts it), so
 * there is no backward kernel. Ids are checked on the host (llama-step) against the vocabulary before upload.
 */
import { grid, WG } from './elementwise.ts';
import type { Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, WG_BUILTINS } from './wgsl.ts';

/**
 * `table` may be a row block [v0, v0 + rows) of the full table (when the table exceeds one storage binding): only
 * tokens in that range are written, so one dispatch per block covers every token.
 */
export function embeddingForward(prog: Program, out: GpuTensor, ids: GpuTensor, table: GpuTensor, N: number, C: number, v0 = 0): void {
  if (ids.dtype !== 'i32') throw new Error(`embedding: ids '${ids.name}' must be i32, got ${ids.dtype}`);
  const spec = kernelModule({
    key: `embedding:${table.dtype}${out.dtype}`,
    params: [
      ['n', 'u32'],
      ['C', 'u32'],
      ['v0', 'u32'],
      ['rows', 'u32'],
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
  let id = u32(ids[row]);
  if (id < p.v0 || id >= p.v0 + p.rows) { return; }
  o[i] = ${out.dtype}(table[(id - p.v0) * p.C + c]);
}`,
  });
  prog.dispatch(spec, [ids, table, out], { n: N * C, C, v0, rows: Math.floor(table.size / C) }, grid(prog, N * C));
}
