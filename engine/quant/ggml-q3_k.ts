/**
 * GGML Q3_K dequantization, as ggml's dequantize_row_q3_K and the PyPI `gguf` package's numpy port. Block (110
 * bytes): hmask u8[32] (3rd bit of each value, set = no offset), qs u8[64] (low 2 bits), scales u8[12] (sixteen 6-bit
 * scales: low nibbles in bytes 0–7, high 2-bit pairs in bytes 8–11), d fp16. x = (d·(sc − 32))·(q − 4·(1 − hbit)).
 */
import { readF16 } from './half.ts';
import { QK_K } from './ggml-q2_k.ts';

export const Q3_K_BLOCK_BYTES = QK_K / 8 + QK_K / 4 + 12 + 2;

export function dequantizeBlocksQ3_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const dl = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q3_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    const qs = y + 32;
    const sc = y + 96;
    const d = readF16(src, y + 108);
    for (let i = 0; i < 16; i++) {
      const low = (src[sc + (i & 7)] >> (4 * (i >> 3))) & 0x0f;
      const high = (src[sc + 8 + (i & 3)] >> (2 * (i >> 2))) & 0x03;
      dl[i] = d * ((low | (high << 4)) - 32);
    }
    for (let e = 0; e < QK_K; e++) {
      const ql = (src[qs + 32 * (e >> 7) + (e & 31)] >> (2 * ((e & 127) >> 5))) & 3;
      const hbit = (src[y + (e & 31)] >> (e >> 5)) & 1;
      dst[o + e] = dl[e >> 4] * (ql - ((hbit ^ 1) << 2));
    }
  }
}
