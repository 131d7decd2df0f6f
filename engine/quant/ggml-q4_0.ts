/**
 * GGML Q4_0, byte for byte as ggml's quantize_row_q4_0_ref: blocks of 32 along the row, each { d: fp16, qs: u8[16] }
 * (18 bytes). m = the value of largest magnitude (first one on ties, sign kept), d = m/−8,
 * q = min(15, trunc(x·(1/d) + 8.5)); byte j = q[j] | q[j+16] << 4. Every float step in fp32 (as the PyPI `gguf`
 * package's numpy port does; a C build that fuses x·id + 8.5 into one FMA can differ in rare last-bit cases).
 * Dequantization: x = (q − 8)·d.
 */
import { checkBlockCols, checkBytes, type QuantFormat } from './format-common.ts';
import { readF16, writeF16 } from './half.ts';

export const QK4_0 = 32;
export const Q4_0_BLOCK_BYTES = 2 + QK4_0 / 2;
const BLOCK_BYTES = Q4_0_BLOCK_BYTES;
const fr = Math.fround;

export function quantizeRowQ4_0(x: ArrayLike<number>, out: Uint8Array, xOff: number, outOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = xOff + b * QK4_0;
    const y = outOff + b * BLOCK_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[o + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, y, d);
    for (let j = 0; j < QK4_0 / 2; j++) {
      const xi0 = Math.min(15, Math.trunc(fr(fr(x[o + j] * id) + 8.5)));
      const xi1 = Math.min(15, Math.trunc(fr(fr(x[o + j + QK4_0 / 2] * id) + 8.5)));
      out[y + 2 + j] = xi0 | (xi1 << 4);
    }
  }
}

/** x = (q − 8)·d for `nBlocks` blocks at src[srcOff] into dst[dstOff]. */
export function dequantizeBlocksQ4_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * BLOCK_BYTES;
    const d = readF16(src, y);
    const o = dstOff + b * QK4_0;
    for (let j = 0; j < QK4_0 / 2; j++) {
      const q = src[y + 2 + j];
      dst[o + j] = ((q & 15) - 8) * d;
      dst[o + j + QK4_0 / 2] = ((q >> 4) - 8) * d;
    }
  }
}

export const q4_0Format: QuantFormat = {
  name: 'q4_0',
  label: 'GGML Q4_0',
  bitsPerWeight: (BLOCK_BYTES * 8) / QK4_0,
  ggmlType: 2,
  sizeBytes: (rows, cols) => ((rows * cols) / QK4_0) * BLOCK_BYTES,
  check(rows, cols) {
    checkBlockCols('q4_0', rows, cols, QK4_0);
  },
  quantize(w, rows, cols) {
    checkBlockCols('q4_0', rows, cols, QK4_0);
    if (w.length !== rows * cols) throw new Error(`q4_0: expected ${rows * cols} values, got ${w.length}`);
    const nb = (rows * cols) / QK4_0;
    const out = new Uint8Array(nb * BLOCK_BYTES);
    quantizeRowQ4_0(w, out, 0, 0, nb);
    return out;
  },
  dequantize(bytes, rows, cols) {
    checkBlockCols('q4_0', rows, cols, QK4_0);
    const nb = (rows * cols) / QK4_0;
    checkBytes('q4_0', bytes, nb * BLOCK_BYTES, rows, cols);
    const out = new Float32Array(rows * cols);
    dequantizeBlocksQ4_0(bytes, 0, out, 0, nb);
    return out;
  },
  levels(bytes, _rows, _cols, index) {
    const d = readF16(bytes, Math.floor(index / QK4_0) * BLOCK_BYTES);
    const out: number[] = [];
    for (let q = 0; q < 16; q++) out.push(fr((q - 8) * d));
    return d < 0 ? out.reverse() : out;
  },
};
