/**
 * GGML Q6_K dequantization, as ggml's dequantize_row_q6_K and the PyPI `gguf` package's numpy port. Block (210
 * bytes): ql u8[128] (low 4 bits; each 64 bytes hold 128 values, low nibbles first), qh u8[64] (high 2 bits; each 32
 * bytes hold 128 values, 2 bits apart), scales int8[16] (one per 16 values), d fp16. x = (d·scale)·(q − 32) in fp32.
 */
import { readF16 } from './half.ts';
import { QK_K } from './ggml-q2_k.ts';

export const Q6_K_BLOCK_BYTES = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2;

export function dequantizeBlocksQ6_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const dl = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q6_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    const qh = y + 128;
    const sc = y + 192;
    const d = readF16(src, y + 208);
    for (let i = 0; i < 16; i++) dl[i] = d * ((src[sc + i] << 24) >> 24);
    for (let e = 0; e < QK_K; e++) {
      const g = e >> 7;
      const low = (src[y + 64 * g + (e & 63)] >> (4 * ((e >> 6) & 1))) & 0x0f;
      const high = (src[qh + 32 * g + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
      dst[o + e] = dl[e >> 4] * ((low | (high << 4)) - 32);
    }
  }
}
