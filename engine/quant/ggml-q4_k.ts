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

/** The 6-bit scales and mins of the 8 sub-blocks, from the 12 bytes at `at` (ggml's get_scale_min_k4). */
export function scaleMinK4(src: Uint8Array, at: number, sc: Uint8Array, mn: Uint8Array): void {
  for (let j = 0; j < 4; j++) {
    sc[j] = src[at + j] & 0x3f;
    mn[j] = src[at + 4 + j] & 0x3f;
    sc[j + 4] = (src[at + 8 + j] & 0x0f) | ((src[at + j] >> 2) & 0x30);
    mn[j + 4] = (src[at + 8 + j] >> 4) | ((src[at + 4 + j] >> 2) & 0x30);
  }
}

export function dequantizeBlocksQ4_K(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  const sc = new Uint8Array(8);
  const mn = new Uint8Array(8);
  const dl = new Float32Array(8);
  const ml = new Float32Array(8);
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * Q4_K_BLOCK_BYTES;
    const o = dstOff + b * QK_K;
    const d = readF16(src, y);
    const dmin = readF16(src, y + 2);
    scaleMinK4(src, y + 4, sc, mn);
    for (let j = 0; j < 8; j++) {
      dl[j] = d * sc[j];
      ml[j] = dmin * mn[j];
    }
    const qs = y + 4 + K_SCALE_SIZE;
    for (let e = 0; e < QK_K; e++) {
      const q = (src[qs + 32 * (e >> 6) + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0f;
      dst[o + e] = fr(dl[e >> 5] * q) - ml[e >> 5];
    }
  }
}
