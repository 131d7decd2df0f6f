/**
 * binary16 helpers for the packed formats, over engine/io/f16.ts: fp32 → fp16 rounds to nearest, ties to even, as
 * ggml's GGML_FP32_TO_FP16, numpy's astype(float16) and PyTorch's .half() do; overflow gives ±inf.
 */
import { endianness } from 'node:os';
import { f16ToF32, f32ToF16 } from '../io/f16.ts';

// Every packed format writes multi-byte values through typed-array views, which use the host byte order.
if (endianness() !== 'LE') throw new Error('quant: packed formats assume a little-endian host');

/** Bits of the binary16 nearest to `x` (after `x` is rounded to fp32), ties to even. */
export const f32ToF16Bits: (x: number) => number = f32ToF16;

/** Value of every binary16 bit pattern, as fp32 (exact: fp16 ⊂ fp32), for one-lookup decoding in hot loops. */
export const F16_TABLE: Float32Array = Float32Array.from({ length: 65536 }, (_, h) => f16ToF32(h));

export function f16BitsToF32(h: number): number {
  return F16_TABLE[h & 0xffff];
}

/** `x` rounded to the nearest binary16, as a number. */
export function roundToF16(x: number): number {
  return F16_TABLE[f32ToF16Bits(x)];
}

/** Writes the fp16 of `x` little-endian at `out[off]`. */
export function writeF16(out: Uint8Array, off: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[off] = h & 0xff;
  out[off + 1] = h >>> 8;
}

export function readF16(bytes: Uint8Array, off: number): number {
  return F16_TABLE[bytes[off] | (bytes[off + 1] << 8)];
}
