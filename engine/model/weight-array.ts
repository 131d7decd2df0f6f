/** Helpers for frozen weights that may be kept as f16 bits (F16Array) or quantized bytes (PackedWeight) instead of floats. */
import { decodeF16, f16ToF32 } from '../io/f16.ts';
import { PackedWeight } from '../quant/packed-weight.ts';
import { decodePackedRows } from './packed-rows.ts';
import { F16Array, type FloatArray, type LinearWeight } from './types.ts';

/**
 * The weight as floats: the array itself, or a fresh Float32Array decoded from f16 / dequantized from packed bytes
 * (for code without an f16 or packed path: references, reports, exports — never the training products).
 */
export function floatWeight(w: LinearWeight): FloatArray {
  if (w instanceof PackedWeight) return w.dequantize();
  return w instanceof F16Array ? decodeF16(w.bits) : w;
}

/** Decodes rows [r0, r0+rows) of an f16 [*, K] weight into dst[0 .. rows*K). */
export function decodeF16Rows(dst: Float32Array, w: F16Array, r0: number, rows: number, K: number): void {
  decodeF16(w.bits.subarray(r0 * K, (r0 + rows) * K), dst.subarray(0, rows * K));
}

/** Value of element i (slow path for single reads; a packed weight decodes the row that holds it). */
export function weightAt(w: LinearWeight, i: number): number {
  if (w instanceof PackedWeight) return packedAt(w, i);
  return w instanceof F16Array ? f16ToF32(w.bits[i]) : w[i];
}

let rowScratch = new Float32Array(0);
function packedAt(w: PackedWeight, i: number): number {
  if (rowScratch.length < w.cols) rowScratch = new Float32Array(w.cols);
  const r = Math.floor(i / w.cols);
  decodePackedRows(rowScratch, w, r, 1);
  return rowScratch[i - r * w.cols];
}

/** Bytes the weight takes in memory. */
export function weightBytes(w: LinearWeight): number {
  if (w instanceof PackedWeight) return w.bytes.byteLength;
  return w instanceof F16Array ? w.bits.byteLength : w.byteLength;
}
