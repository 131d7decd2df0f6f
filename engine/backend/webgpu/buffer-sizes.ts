/**
 * Sizes of device buffers, with no GPU import: element sizes, the allocator's rounding and the fixed scratch sizes
 * of the kernels. The session's buffer list (llama-memory.ts) is built from these, and the Train form's estimate
 * (engine/train/memory-estimate.ts) reads that list in the services process, which must not load Dawn to do so.
 * The kernels and the allocator import the same constants from here, so the list cannot drift from what they use.
 */

export type GpuDtype = 'f32' | 'f16' | 'i32' | 'u32';

export const GIB = 1024 ** 3;

export function dtypeBytes(d: GpuDtype): number {
  return d === 'f16' ? 2 : 4;
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Bytes the allocator reserves (and counts) for a buffer of `bytes`: a multiple of 16, at least 16, because storage
 * bindings need sizes in multiples of 4 and an f16 tensor with an odd count would otherwise fail (GpuAllocator.create).
 */
export function allocationBytes(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** Workgroups of the first grad-norm pass, hence the f32 partial sums it writes (grad-norm.ts). */
export const NORM_PARTIALS = 256;

/** f32 slots of AdamW's per-step scalars buffer `hp` (adamw.ts ADAMW_HP). */
export const ADAMW_HP_SIZE = 12;

/** Cross-entropy rows per chunk: the chunk's f32 logits stay under `bytes` (and under one binding), at least 1. */
export function chunkRowsFor(V: number, rows: number, bytes: number): number {
  return Math.max(1, Math.min(rows, Math.floor(bytes / (V * 4))));
}

/** Budget of one chunk of f32 logits a session's cross-entropy works on, unless the caller sets another. */
export const DEFAULT_CE_CHUNK_BYTES = 64 * 1024 * 1024;
