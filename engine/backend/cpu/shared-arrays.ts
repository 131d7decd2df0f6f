/**
 * Float arrays in shared memory, so the cpu thread pool's workers can read operands and write results in place
 * (engine/backend/cpu/thread-pool.ts). They are plain Float32Array / Float64Array objects whose buffer is a
 * SharedArrayBuffer: element access costs the same as on an ArrayBuffer.
 *
 * Never hand one to WebGPU: Dawn's writeBuffer crashes the process on SharedArrayBuffer-backed views (seen with
 * webgpu 0.6), which is why only the cpu backend allocates them.
 */
import { F16Array, type FloatArray, type FloatArrayConstructor, type LinearWeight } from '../../model/types.ts';
import { PackedWeight } from '../../quant/packed-weight.ts';

/** A `new`-able stand-in for Float32Array / Float64Array that allocates in shared memory. */
export function sharedCtor(F: FloatArrayConstructor): FloatArrayConstructor {
  const bytes = F.BYTES_PER_ELEMENT;
  const OverShared = F as unknown as new (b: SharedArrayBuffer) => FloatArray;
  // `new` on a function that returns an object yields that object: a plain typed array, not a subclass.
  const ctor = function SharedFloatArray(n: number): FloatArray {
    return new OverShared(new SharedArrayBuffer(n * bytes));
  };
  return ctor as unknown as FloatArrayConstructor;
}

/** Whether the array's memory is shared (and so visible to the pool's workers). */
export function isShared(a: LinearWeight | Float32Array | Float64Array | Uint16Array | Uint8Array): boolean {
  const buf = a instanceof F16Array ? a.bits.buffer : a instanceof PackedWeight ? a.bytes.buffer : a.buffer;
  return buf instanceof SharedArrayBuffer;
}

/** The same values in shared memory (weights loaded for the cpu backend). */
export function toShared<T extends Float32Array | Float64Array | Uint16Array | Uint8Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const C = a.constructor as new (b: SharedArrayBuffer) => T;
  const out = new C(new SharedArrayBuffer(a.byteLength));
  out.set(a as never);
  return out;
}

/**
 * A packed weight whose bytes live in shared memory (the portable backend's pool workers read them in place; the
 * native kernels take either). A loader that wants pool threads allocates the bytes there, or passes them through this.
 */
export function toSharedPacked(w: PackedWeight): PackedWeight {
  return isShared(w) ? w : new PackedWeight(w.format, w.rows, w.cols, toShared(w.bytes));
}
