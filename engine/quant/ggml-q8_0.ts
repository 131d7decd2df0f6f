/**
 * GGML Q8_0, byte for byte as ggml's quantize_row_q8_0_ref: blocks of 32 along the row, each
 *   { d: fp16, qs: int8[32] } (34 bytes), d = amax/127, q = roundf(x·(1/d)) (half away from zero).
 * Every float step is done in fp32 (Math.fround after each operation); 1/d is taken from the fp32 d, not from the
 * fp16 that is stored. Dequantization: x = q·d with d read back from fp16.
 */
import { checkBlockCols, checkBytes, roundHalfAway, type QuantFormat } from './format-common.ts';
import { readF16, writeF16 } from './half.ts';

export const QK8_0 = 32;
export const Q8_0_BLOCK_BYTES = 2 + QK8_0;
const BLOCK_BYTES = Q8_0_BLOCK_BYTES;
const fr = Math.fround;

export function quantizeRowQ8_0(x: ArrayLike<number>, out: Uint8Array, xOff: number, outOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = xOff + b * QK8_0;
    const y = outOff + b * BLOCK_BYTES;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.abs(x[o + j]);
      if (v > amax) amax = v;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, y, d);
    for (let j = 0; j < QK8_0; j++) out[y + 2 + j] = roundHalfAway(fr(x[o + j] * id)) & 0xff;
  }
}

/** x = q·d for `nBlocks` blocks at src[srcOff] into dst[dstOff]. */
export function dequantizeBlocksQ8_0(src: Uint8Array, srcOff: number, dst: Float32Array, dstOff: number, nBlocks: number): void {
  for (let b = 0; b < nBlocks; b++) {
    const y = srcOff + b * BLOCK_BYTES;
    const d = readF16(src, y);
    const o = dstOff + b * QK8_0;
    for (let j = 0; j < QK8_0; j++) dst[o + j] = ((src[y + 2 + j] << 24) >> 24) * d;
  }
}

export const q8_0Format: QuantFormat = {
  name: 'q8_0',
  label: 'GGML Q8_0',
  bitsPerWeight: (BLOCK_BYTES * 8) / QK8_0,
  ggmlType: 8,
  sizeBytes: (rows, cols) => ((rows * cols) / QK8_0) * BLOCK_BYTES,
  check(rows, cols) {
    checkBlockCols('q8_0', rows, cols, QK8_0);
  },
  quantize(w, rows, cols) {
    checkBlockCols('q8_0', rows, cols, QK8_0);
    if (w.length !== rows * cols) throw new Error(`q8_0: expected ${rows * cols} values, got ${w.length}`);
    const nb = (rows * cols) / QK8_0;
    const out = new Uint8Array(nb * BLOCK_BYTES);
    quantizeRowQ8_0(w, out, 0, 0, nb);
    return out;
  },
  dequantize(bytes, rows, cols) {
    checkBlockCols('q8_0', rows, cols, QK8_0);
    const nb = (rows * cols) / QK8_0;
    checkBytes('q8_0', bytes, nb * BLOCK_BYTES, rows, cols);
    const out = new Float32Array(rows * cols);
    dequantizeBlocksQ8_0(bytes, 0, out, 0, nb);
    return out;
  },
  levels(bytes, _rows, _cols, index) {
    const d = readF16(bytes, Math.floor(index / QK8_0) * BLOCK_BYTES);
    const out: number[] = [];
    for (let q = -127; q <= 127; q++) out.push(fr(q * d));
    return d < 0 ? out.reverse() : out;
  },
};
