/**
 * GGML Q5_0 dequantization, as ggml's dequantize_row_q5_0 and the PyPI `gguf` package's numpy port: blocks of 32,
 * each { d: fp16, qh: u32 (bit j = 5th bit of element j), qs: u8[16] } (22 bytes); element j < 16 takes the low
 * nibble of qs[j], element j + 16 the high one; x = (q − 16)·d in fp32.
 */
import { readF16 } from './half.ts';

export const QK5_0 = 32;
export const Q5_0_BLOCK_BYTES = 2 + 4 + QK5_0 / 2;

export function dequantizeBlocksQ5_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q5_0_BLOCK_BYTES;
    const o = dstOff + b * QK5_0;
    const d = readF16(src, y);
    const qh = (src[y + 2] | (src[y + 3] << 8) | (src[y + 4] << 16) | (src[y + 5] << 24)) >>> 0;
    for (let j = 0; j < QK5_0 / 2; j++) {
      const q = src[y + 6 + j];
      dst[o + j] = d * (((q & 0x0f) | (((qh >>> j) & 1) << 4)) - 16);
      dst[o + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
    }
  }
}
