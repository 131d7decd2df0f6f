/** Helpers for frozen weights that may be kept as f16 bits (F16Array) instead of floats. */
import { decodeF16, f16ToF32 } from '../io/f16.ts';
import { F16Array, type FloatArray, type WeightArray } from './types.ts';

/** The weight as floats: the array itself, or a fresh Float32Array decoded from f16 (for code without an f16 path). */
export function floatWeight(w: WeightArray): FloatArray {
  return w instanceof F16Array ? decodeF16(w.bits) : w;
}

/** Decodes rows [r0, r0+rows) of an f16 [*, K] weight into dst[0 .. rows*K). */
export function decodeF16Rows(dst: Float32Array, w: F16Array, r0: number, rows: number, K: number): void {
  decodeF16(w.bits.subarray(r0 * K, (r0 + rows) * K), dst.subarray(0, rows * K));
}

/** Value of element i (slow path for single reads). */
export function weightAt(w: WeightArray, i: number): number {
  return w instanceof F16Array ? f16ToF32(w.bits[i]) : w[i];
}

/** Bytes the weight takes in memory. */
export function weightBytes(w: WeightArray): number {
  return w instanceof F16Array ? w.bits.byteLength : w.byteLength;
}
