/**
 * GGML Q4_1, byte for byte as ggml's quantize_row_q4_1_ref: blocks of 32 along the row, each
 * { d: fp16, m: fp16, qs: u8[16] } (20 bytes). d = (max − min)/15, m = min, q = min(15, trunc((x − min)·(1/d) + 0.5));
 * byte j = q[j] | q[j+16] << 4. Every float step in fp32; quantization uses the fp32 min and d, not the stored fp16.
 * Dequantization: x = q·d + m (fp32).
 */
import { checkBlockCols, checkBytes, type QuantFormat } from './format-common.ts';
import { readF16, writeF16 } from './half.ts';

export const QK4_1 = 32;
export const Q4_1_BLOCK_BYTES = 4 + QK4_1 / 2;
const BLOCK_BYTES = Q4_1_BLOCK_BYTES;
const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

export function quantizeRowQ4_1(x: ArrayLike<number>, out: Uint8Array, xOff: number, outOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = xOff + b * QK4_1;
    const y = outOff + b * BLOCK_BYTES;
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK4_1; j++) {
      const v = x[o + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 15);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, y, d);
    writeF16(out, y + 2, min);
    for (let j = 0; j < QK4_1 / 2; j++) {
      const xi0 = Math.min(15, Math.trunc(fr(fr(fr(x[o + j] - min) * id) + 0.5)));
      const xi1 = Math.min(15, Math.trunc(fr(fr(fr(x[o + j + QK4_1 / 2] - min) * id) + 0.5)));
      out[y + 4 + j] = xi0 | (xi1 << 4);
    }
  }
}

/** x = q·d + m (each step in fp32) for `nBlocks` blocks at src[srcOff] into dst[dstOff]. */
export function dequantizeBlocksQ4_1(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * BLOCK_BYTES;
    const d = readF16(src, y);
    const m = readF16(src, y + 2);
    const o = dstOff + b * QK4_1;
    for (let j = 0; j < QK4_1 / 2; j++) {
      const q = src[y + 4 + j];
      dst[o + j] = fr((q & 15) * d) + m;
      dst[o + j + QK4_1 / 2] = fr((q >> 4) * d) + m;
    }
  }
}

export const q4_1Format: QuantFormat = {
  name: 'q4_1',
  label: 'GGML Q4_1',
  bitsPerWeight: (BLOCK_BYTES * 8) / QK4_1,
  ggmlType: 3,
  sizeBytes: (rows, cols) => ((rows * cols) / QK4_1) * BLOCK_BYTES,
  check(rows, cols) {
    checkBlockCols('q4_1', rows, cols, QK4_1);
  },
  quantize(w, rows, cols) {
    checkBlockCols('q4_1', rows, cols, QK4_1);
    if (w.length !== rows * cols) throw new Error(`q4_1: expected ${rows * cols} values, got ${w.length}`);
    const nb = (rows * cols) / QK4_1;
    const out = new Uint8Array(nb * BLOCK_BYTES);
    quantizeRowQ4_1(w, out, 0, 0, nb);
    return out;
  },
  dequantize(bytes, rows, cols) {
    checkBlockCols('q4_1', rows, cols, QK4_1);
    const nb = (rows * cols) / QK4_1;
    checkBytes('q4_1', bytes, nb * BLOCK_BYTES, rows, cols);
    const out = new Float32Array(rows * cols);
    dequantizeBlocksQ4_1(bytes, 0, out, 0, nb);
    return out;
  },
  levels(bytes, _rows, _cols, index) {
    const y = Math.floor(index / QK4_1) * BLOCK_BYTES;
    const d = readF16(bytes, y);
    const m = readF16(bytes, y + 2);
    const out: number[] = [];
    for (let q = 0; q < 16; q++) out.push(fr(fr(q * d) + m));
    return out;
  },
};
