/**
 * GGML Q4_K dequantization, as ggml's dequantize_row_q4_K and the PyPI `gguf` package's numpy port. Block (144
 * bytes): d fp16, dmin fp16, scales u8[12] (eight 6-bit scales and eight 6-bit mins, packed as get_scale_min_k4),
 * qs u8[128] (4 bits per value: each 32 bytes hold 64 values, low nibbles first). x = (d·sc)·q − dmin·mn per
 * sub-block of 32, every step rounded to fp32. Q5_K shares the scale packing.
 */
import { readF16 } from './half.ts';
import { QK_K } from './ggml-q2_k.ts';

export const K_SCALE_SIZE = 12;
export const Q4_K_BLOCK_BYTES = 2 + 2 + K_SCALE_SIZE + QK_K / 2;
const fr = Math.fround;

/**
 * The 8 sub-blocks' float scales d·sc and mins dmin·mn of the K-quant block at `y` (d fp16, dmin fp16, then the
 * 12 bytes of 6-bit scales and mins packed as ggml's get_scale_min_k4), each product rounded to fp32 by the store.
 * Q4_K and Q5_K share this header.
 */
export function subBlockScalesK4(src: Uint8Array, y: number, dl: Float32Array, ml: Float32Array): void {
  const d = readF16(src, y);
  const dmin = readF16(src, y + 2);
  const at = y + 4;
  for (let j = 0; j < 4; j++) {
    dl[j] = d * (src[at + j] & 0x3f);
    ml[j] = dmin * (src[at + 4 + j] & 0x3f);
    dl[j + 4] = d * ((src[at + 8 + j] & 0x0f) | ((src[at + j] >> 2) & 0x30));
    ml[j + 4] = dmin * ((src[at + 8 + j] >> 4) | ((src[at + 4 + j] >> 2) & 0x30));
  }
}

export function dequantizeBlocksQ4_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const dl = new Float32Array(8);
  const ml = new Float32Array(8);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q4_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    subBlockScalesK4(src, y, dl, ml);
    const qs = y + 4 + K_SCALE_SIZE;
    for (let e = 0; e < QK_K; e++) {
      const q = (src[qs + 32 * (e >> 6) + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0f;
      dst[o + e] = fr(dl[e >> 5] * q) - ml[e >> 5];
    }
  }
}
