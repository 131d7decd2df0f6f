/**
 * GGML Q2_K dequantization ("k-quant", super-blocks of 256), as ggml's dequantize_row_q2_K and the PyPI `gguf`
 * package's numpy port. Block (84 bytes): scales u8[16] (low nibble: scale, high nibble: min of each 16 values),
 * qs u8[64] (2 bits per value), d fp16, dmin fp16. Value e: q = (qs[32·⌊e/128⌋ + e%32] >> 2·⌊(e%128)/32⌋) & 3,
 * x = (d·sc)·q − dmin·mn with sc, mn of sub-block ⌊e/16⌋; every product and difference rounded to fp32.
 */
import { readF16 } from './half.ts';

export const QK_K = 256;
export const Q2_K_BLOCK_BYTES = QK_K / 16 + QK_K / 4 + 2 + 2;
const fr = Math.fround;

export function dequantizeBlocksQ2_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const dl = new Float32Array(16);
  const ml = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q2_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    const qs = y + 16;
    const d = readF16(src, y + 80);
    const dmin = readF16(src, y + 82);
    for (let i = 0; i < 16; i++) {
      dl[i] = d * (src[y + i] & 0x0f);
      ml[i] = dmin * (src[y + i] >> 4);
    }
    for (let e = 0; e < QK_K; e++) {
      const q = (src[qs + 32 * (e >> 7) + (e & 31)] >> (2 * ((e & 127) >> 5))) & 3;
      dst[o + e] = fr(dl[e >> 4] * q) - ml[e >> 4];
    }
  }
}
