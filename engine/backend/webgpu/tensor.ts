/**
 * A GPU tensor is a typed view into a buffer: the buffer, a byte offset (aligned for binding), an element count and a
 * dtype. Several tensors may share one buffer (the flat LoRA parameter/gradient/optimizer buffers do), so the
 * optimizer kernels can run over all adapters in one dispatch.
 */
import { GpuContext } from './device.ts';
import type { PackedFormat } from '../../quant/packed-weight.ts';
import { alignUp, dtypeBytes, type GpuDtype } from './buffer-sizes.ts';

export { alignUp, dtypeBytes, type GpuDtype };

export interface GpuTensor {
  name: string;
  buffer: GPUBuffer;
  /** Bytes from the start of the buffer; a multiple of the storage-offset alignment. */
  offset: number;
  /** Elements. */
  size: number;
  dtype: GpuDtype;
  /**
   * A frozen weight in its quantized bytes (QLoRA): dtype 'u32', `size` words holding the format's bytes of a
   * [rows, cols] matrix, read by the matmul kernels through the format's decoder.
   */
  packed?: { format: PackedFormat; rows: number; cols: number };
}

/** Bytes the tensor occupies rounded up to 4 (storage bindings are sized in multiples of 4). */
export function bindingBytes(t: GpuTensor): number {
  return Math.ceil((t.size * dtypeBytes(t.dtype)) / 4) * 4;
}

export const STORAGE = 0x0080 | 0x0004 | 0x0008; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage values)

export function createTensor(ctx: GpuContext, name: string, size: number, dtype: GpuDtype): GpuTensor {
  const buffer = ctx.allocator.create(name, size * dtypeBytes(dtype), STORAGE);
  return { name, buffer, offset: 0, size, dtype };
}

/** Several tensors packed in one buffer, each at an aligned offset. */
export function createPacked(ctx: GpuContext, name: string, parts: { name: string; size: number }[], dtype: GpuDtype): { buffer: GPUBuffer; tensors: GpuTensor[]; totalElements: number } {
  const align = Math.max(256, ctx.limits.minStorageBufferOffsetAlignment);
  const bytes = dtypeBytes(dtype);
  let off = 0;
  const offsets: number[] = [];
  for (const p of parts) {
    off = alignUp(off, align);
    offsets.push(off);
    off += p.size * bytes;
  }
  const buffer = ctx.allocator.create(name, Math.max(off, 4), STORAGE);
  const tensors = parts.map((p, i) => ({ name: p.name, buffer, offset: offsets[i], size: p.size, dtype }));
  return { buffer, tensors, totalElements: alignUp(off, bytes) / bytes };
}

/** f32 → IEEE binary16 bits, round to nearest even (what the GPU does on conversion). */
export function f32ToF16Bits(v: number): number {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  f[0] = v;
  const x = u[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1) === 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Host values → the bytes of a tensor of `dtype`. */
export function encodeHost(values: ArrayLike<number>, dtype: GpuDtype): Uint8Array {
  const n = values.length;
  if (dtype === 'f32') return new Uint8Array(Float32Array.from(values).buffer);
  if (dtype === 'i32') return new Uint8Array(Int32Array.from(values).buffer);
  if (dtype === 'u32') return new Uint8Array(Uint32Array.from(values).buffer);
  const h = new Uint16Array(n + (n & 1));
  for (let i = 0; i < n; i++) h[i] = f32ToF16Bits(values[i]);
  return new Uint8Array(h.buffer);
}

export function upload(ctx: GpuContext, t: GpuTensor, values: ArrayLike<number>, elementOffset = 0): void {
  ctx.throwIfLost();
  if (values.length + elementOffset > t.size) throw new Error(`upload to '${t.name}': ${values.length} values at ${elementOffset} exceed its ${t.size} elements`);
  const bytes = encodeHost(values, t.dtype);
  const start = t.offset + elementOffset * dtypeBytes(t.dtype);
  if (start % 4 !== 0) throw new Error(`upload to '${t.name}': element offset ${elementOffset} is not 4-byte aligned for ${t.dtype}`);
  ctx.device.queue.writeBuffer(t.buffer, start, bytes, 0, Math.ceil(bytes.byteLength / 4) * 4);
}

/** Makes a tensor on the device holding `values`. */
export function tensorFrom(ctx: GpuContext, name: string, values: ArrayLike<number>, dtype: GpuDtype): GpuTensor {
  const t = createTensor(ctx, name, values.length, dtype);
  upload(ctx, t, values);
  return t;
}

/** Reads tensors back (one staging buffer, one map); f16 is widened to f32. */
export async function download(ctx: GpuContext, tensors: GpuTensor[]): Promise<Float32Array[]> {
  ctx.throwIfLost();
  const offsets: number[] = [];
  let total = 0;
  for (const t of tensors) {
    offsets.push(total);
    total += alignUp(bindingBytes(t), 4);
  }
  const staging = ctx.allocator.create('readback', Math.max(total, 4), 0x0001 | 0x0008); // MAP_READ | COPY_DST
  try {
    const enc = ctx.device.createCommandEncoder();
    tensors.forEach((t, i) => enc.copyBufferToBuffer(t.buffer, t.offset, staging, offsets[i], bindingBytes(t)));
    ctx.device.queue.submit([enc.finish()]);
    await staging.mapAsync(0x0001);
    ctx.throwIfErrors();
    const range = staging.getMappedRange();
    const out = tensors.map((t, i) => {
      const n = t.size;
      if (t.dtype === 'f32') return new Float32Array(range.slice(offsets[i], offsets[i] + n * 4));
      if (t.dtype === 'i32') return Float32Array.from(new Int32Array(range.slice(offsets[i], offsets[i] + n * 4)));
      if (t.dtype === 'u32') return Float32Array.from(new Uint32Array(range.slice(offsets[i], offsets[i] + n * 4)));
      const h = new Uint16Array(range.slice(offsets[i], offsets[i] + Math.ceil(n / 2) * 4));
      const f = new Float32Array(n);
      for (let k = 0; k < n; k++) f[k] = f16BitsToF32(h[k]);
      return f;
    });
    staging.unmap();
    return out;
  } finally {
    ctx.allocator.destroy(staging);
  }
}

/** A view of `size` elements starting `elementOffset` into `t` (the offset must keep binding alignment). */
export function view(t: GpuTensor, name: string, elementOffset: number, size: number): GpuTensor {
  if (elementOffset + size > t.size) throw new Error(`view '${name}' [${elementOffset}, ${elementOffset + size}) is outside '${t.name}' (${t.size} elements)`);
  return { name, buffer: t.buffer, offset: t.offset + elementOffset * dtypeBytes(t.dtype), size, dtype: t.dtype };
}

/**
 * A packed frozen weight on the device (QLoRA): its quantized bytes as they are, in a u32 tensor (the last word
 * zero-padded), described by `packed` for the matmul kernels. Shared-memory bytes are copied first (Dawn crashes on
 * writeBuffer from a SharedArrayBuffer view).
 */
export function packedTensor(ctx: GpuContext, name: string, w: { format: PackedFormat; rows: number; cols: number; bytes: Uint8Array }): GpuTensor {
  ctx.throwIfLost();
  const words = Math.max(1, Math.ceil(w.bytes.length / 4));
  const t: GpuTensor = { ...createTensor(ctx, name, words, 'u32'), packed: { format: w.format, rows: w.rows, cols: w.cols } };
  const padded = w.bytes.length % 4 === 0 && !(w.bytes.buffer instanceof SharedArrayBuffer) ? w.bytes : (() => {
    const b = new Uint8Array(words * 4);
    b.set(w.bytes);
    return b;
  })();
  ctx.device.queue.writeBuffer(t.buffer, t.offset, padded, 0, words * 4);
  return t;
}
