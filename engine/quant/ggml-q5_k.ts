/**
 * GGML Q5_K dequantization, as ggml's dequantize_row_q5_K and the PyPI `gguf` package's numpy port. Block (176
 * bytes): d fp16, dmin fp16, scales u8[12] (packed as Q4_K), qh u8[32] (5th bit: value e uses bit ⌊e/32⌋ of
 * qh[e%32]), qs u8[128] (low 4 bits, as Q4_K). x = (d·sc)·q − dmin·mn, every step rounded to fp32.
 */
import { QK_K } from './ggml-q2_k.ts';
import { K_SCALE_SIZE, subBlockScalesK4 } from './ggml-q4_k.ts';

export const Q5_K_BLOCK_BYTES = 2 + 2 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2;
const fr = Math.fround;

export function dequantizeBlocksQ5_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const dl = new Float32Array(8);
  const ml = new Float32Array(8);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q5_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    subBlockScalesK4(src, y, dl, ml);
    const qh = y + 4 + K_SCALE_SIZE;
    const qs = qh + QK_K / 8;
    for (let e = 0; e < QK_K; e++) {
      const low = (src[qs + 32 * (e >> 6) + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0f;
      const high = (src[qh + (e & 31)] >> (e >> 5)) & 1;
      dst[o + e] = fr(dl[e >> 5] * (low | (high << 4))) - ml[e >> 5];
    }
  }
}
