/**
 * INT8, symmetric, one scale per output channel (row), as LLM.int8()'s weight side and PyTorch per-channel
 * quantization: s = absmax(row)/127 (fp32), q = clamp(round(w/s), −127, 127) with round half to even, w' = q·s.
 * Layout: rows·cols int8 (row-major), then rows fp32 scales, little-endian.
 */
import { checkBytes, checkMatrix, roundHalfEven, type QuantFormat } from './format-common.ts';

const size = (rows: number, cols: number): number => rows * cols + 4 * rows;

function scalesOf(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  // Copy: the scale block starts at rows·cols, which need not be 4-byte aligned.
  return new Float32Array(bytes.slice(rows * cols, rows * cols + 4 * rows).buffer);
}

export const int8Format: QuantFormat = {
  name: 'int8',
  label: 'INT8 per-channel',
  bitsPerWeight: 8,
  ggmlType: null,
  sizeBytes: size,
  check(rows, cols) {
    checkMatrix('int8', { length: rows * cols }, rows, cols);
  },
  quantize(w, rows, cols) {
    checkMatrix('int8', w, rows, cols);
    const out = new Uint8Array(size(rows, cols));
    const q = new Int8Array(out.buffer, 0, rows * cols);
    const scales = new Float32Array(rows);
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      let amax = 0;
      for (let j = 0; j < cols; j++) {
        const a = Math.abs(w[o + j]);
        if (a > amax) amax = a;
      }
      const s = Math.fround(amax / 127);
      scales[r] = s;
      if (s === 0) continue;
      for (let j = 0; j < cols; j++) {
        const v = roundHalfEven(Math.fround(w[o + j] / s));
        q[o + j] = v > 127 ? 127 : v < -127 ? -127 : v;
      }
    }
    out.set(new Uint8Array(scales.buffer), rows * cols);
    return out;
  },
  dequantize(bytes, rows, cols) {
    checkBytes('int8', bytes, size(rows, cols), rows, cols);
    const q = new Int8Array(bytes.buffer, bytes.byteOffset, rows * cols);
    const scales = scalesOf(bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const s = scales[r];
      const o = r * cols;
      for (let j = 0; j < cols; j++) out[o + j] = q[o + j] * s;
    }
    return out;
  },
  levels(bytes, rows, cols, index) {
    const s = scalesOf(bytes, rows, cols)[Math.floor(index / cols)];
    const out: number[] = [];
    for (let v = -127; v <= 127; v++) out.push(Math.fround(v * s));
    return out;
  },
};
