/**
 * KV-cached decoding on the device. The cache (the webgpu counterpart of engine/generate/kv-cache.ts): per layer,
 * keys (after RoPE) and values of the tokens seen so far, [capacity, kvHeads·headDim] in the activation dtype, of
 * which the first `length` rows are filled. Only real positions are ever written, so the cache holds exactly what
 * the cpu cache holds. The buffers are listed by kvCacheSpecs() in llama-memory.ts (the session's memory check
 * counts them) and allocated with the session's other activations.
 *
 * Also copyAt, the offset copy a decode step uses to append to the cache and to pick the last row.
 */
import { grid, WG } from './elementwise.ts';
import type { ParamValue, Program } from './runner.ts';
import type { GpuTensor } from './tensor.ts';
import { FLAT_WG, kernelModule, WG_BUILTINS } from './wgsl.ts';

export class GpuKvCache {
  /** Rows filled (the next token's position). */
  length = 0;

  constructor(
    readonly k: GpuTensor[],
    readonly v: GpuTensor[],
    readonly capacity: number,
    readonly kvDim: number,
  ) {
    if (k.length !== v.length) throw new Error(`GpuKvCache: ${k.length} key buffers but ${v.length} value buffers`);
    for (const t of [...k, ...v]) {
      if (t.size !== capacity * kvDim) throw new Error(`GpuKvCache: '${t.name}' holds ${t.size} values, expected ${capacity} positions × ${kvDim}`);
    }
  }

  /** Throws when `n` more tokens do not fit. */
  ensureRoom(n: number): void {
    if (this.length + n > this.capacity) throw new Error(`GpuKvCache: ${this.length} cached + ${n} new tokens exceed the capacity of ${this.capacity}`);
  }

  reset(): void {
    this.length = 0;
  }
}

/**
 * dst[dstOffset + i] = src[srcOffset + i] for i < n (element offsets, converting dtype through f32, exact when both
 * are the same). Offsets may be thunks: appending a step's keys at the cache position, picking the last hidden row.
 */
export function copyAt(prog: Program, src: GpuTensor, srcOffset: ParamValue, dst: GpuTensor, dstOffset: ParamValue, n: number): void {
  const spec = kernelModule({
    key: `copy.at:${src.dtype}${dst.dtype}`,
    params: [
      ['n', 'u32'],
      ['src0', 'u32'],
      ['dst0', 'u32'],
    ],
    bindings: [
      { name: 's', type: src.dtype, access: 'read' },
      { name: 'o', type: dst.dtype, access: 'read_write' },
    ],
    body: `@compute @workgroup_size(${WG}) fn main(${WG_BUILTINS}) {
  let i = (${FLAT_WG}) * ${WG}u + lid;
  if (i >= p.n) { return; }
  o[p.dst0 + i] = ${dst.dtype}(f32(s[p.src0 + i]));
}`,
  });
  prog.dispatch(spec, [src, dst], { n, src0: srcOffset, dst0: dstOffset }, grid(prog, n));
}
