/**
 * GGML Q5_1 dequantization, as ggml's dequantize_row_q5_1 and the PyPI `gguf` package's numpy port: blocks of 32,
 * each { d: fp16, m: fp16, qh: u32, qs: u8[16] } (24 bytes); q as in Q5_0 but unsigned; x = q·d + m, each step in fp32.
 */
import { readF16 } from './half.ts';

export const QK5_1 = 32;
export const Q5_1_BLOCK_BYTES = 2 + 2 + 4 + QK5_1 / 2;
const fr = Math.fround;

export function dequantizeBlocksQ5_1(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q5_1_BLOCK_BYTES;
    const o = dstOff + b * QK5_1;
    const d = readF16(src, y);
    const m = readF16(src, y + 2);
    const qh = (src[y + 4] | (src[y + 5] << 8) | (src[y + 6] << 16) | (src[y + 7] << 24)) >>> 0;
    for (let j = 0; j < QK5_1 / 2; j++) {
      const q = src[y + 8 + j];
      dst[o + j] = fr(d * ((q & 0x0f) | (((qh >>> j) & 1) << 4))) + m;
      dst[o + j + 16] = fr(d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4))) + m;
    }
  }
}
