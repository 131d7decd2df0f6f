/**
 * GGML's K-quants that QLoRA trains on as stored (Q4_K, Q6_K): dequantization exactly as ggml's
 * dequantize_row_q4_K / dequantize_row_q6_K (and the PyPI `gguf` package's numpy port), with every float operation in
 * fp32 in the reference's association. Quantizing to them is llama.cpp's job (its iterative scale search); the studio
 * reads them from a GGUF.
 *   Q4_K: super-blocks of 256 = 144 bytes { d: f16, dmin: f16, scales: u8[12] (8 six-bit scale/min pairs), qs: u8[128] }
 *   Q6_K: super-blocks of 256 = 210 bytes { ql: u8[128], qh: u8[64], scales: i8[16], d: f16 }
 */
import { checkBlockCols, checkBytes } from './format-common.ts';
import { readF16 } from './half.ts';

export const QK_K = 256;
export const Q4_K_BLOCK_BYTES = 144;
export const Q6_K_BLOCK_BYTES = 210;
const fr = Math.fround;

/** ggml's get_scale_min_k4: the j-th (0..7) 6-bit scale and min of a Q4_K super-block whose scales start at `s`. */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

/** Dequantizes `nBlocks` Q4_K super-blocks at byte `off` into out[outOff…]. */
export function dequantizeBlocksQ4_K(b: Uint8Array, off: number, nBlocks: number, out: Float32Array, outOff: number): void {
  for (let i = 0; i < nBlocks; i++) {
    const y = off + i * Q4_K_BLOCK_BYTES;
    const d = readF16(b, y);
    const dmin = readF16(b, y + 2);
    let o = outOff + i * QK_K;
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(b, y + 4, 2 * c);
      const [sc2, m2] = scaleMinK4(b, y + 4, 2 * c + 1);
      const d1 = fr(d * sc1);
      const mm1 = fr(dmin * m1);
      const d2 = fr(d * sc2);
      const mm2 = fr(dmin * m2);
      const q = y + 16 + 32 * c;
      for (let l = 0; l < 32; l++) out[o + l] = fr(d1 * (b[q + l] & 15)) - mm1;
      for (let l = 0; l < 32; l++) out[o + 32 + l] = fr(d2 * (b[q + l] >> 4)) - mm2;
      o += 64;
    }
  }
}

/** Dequantizes `nBlocks` Q6_K super-blocks at byte `off` into out[outOff…]. */
export function dequantizeBlocksQ6_K(b: Uint8Array, off: number, nBlocks: number, out: Float32Array, outOff: number): void {
  for (let i = 0; i < nBlocks; i++) {
    const y = off + i * Q6_K_BLOCK_BYTES;
    const d = readF16(b, y + 208);
    for (let n = 0; n < 2; n++) {
      const ql = y + 64 * n;
      const qh = y + 128 + 32 * n;
      const sc = y + 192 + 8 * n;
      const o = outOff + i * QK_K + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l];
        const q1 = ((b[ql + l] & 15) | (((h >> 0) & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        const s = (k: number): number => (b[sc + is + k] << 24) >> 24;
        out[o + l] = fr(fr(d * s(0)) * q1);
        out[o + l + 32] = fr(fr(d * s(2)) * q2);
        out[o + l + 64] = fr(fr(d * s(4)) * q3);
        out[o + l + 96] = fr(fr(d * s(6)) * q4);
      }
    }
  }
}

export function dequantizeQ4_K(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  checkBlockCols('q4_k', rows, cols, QK_K);
  const nb = (rows * cols) / QK_K;
  checkBytes('q4_k', bytes, nb * Q4_K_BLOCK_BYTES, rows, cols);
  const out = new Float32Array(rows * cols);
  dequantizeBlocksQ4_K(bytes, 0, nb, out, 0);
  return out;
}

export function dequantizeQ6_K(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  checkBlockCols('q6_k', rows, cols, QK_K);
  const nb = (rows * cols) / QK_K;
  checkBytes('q6_k', bytes, nb * Q6_K_BLOCK_BYTES, rows, cols);
  const out = new Float32Array(rows * cols);
  dequantizeBlocksQ6_K(bytes, 0, nb, out, 0);
  return out;
}
