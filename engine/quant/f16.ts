/** fp16 storage: every weight rounded to the nearest binary16 (ties to even), 2 bytes little-endian. */
import { checkBytes, checkMatrix, type QuantFormat } from './format-common.ts';
import { F16_TABLE, f32ToF16Bits } from './half.ts';

export const f16Format: QuantFormat = {
  name: 'f16',
  label: 'FP16',
  bitsPerWeight: 16,
  ggmlType: 1,
  sizeBytes: (rows, cols) => rows * cols * 2,
  check(rows, cols) {
    checkMatrix('f16', { length: rows * cols }, rows, cols);
  },
  quantize(w, rows, cols) {
    checkMatrix('f16', w, rows, cols);
    const h = new Uint16Array(w.length);
    for (let i = 0; i < w.length; i++) h[i] = f32ToF16Bits(w[i]);
    return new Uint8Array(h.buffer);
  },
  dequantize(bytes, rows, cols) {
    checkBytes('f16', bytes, rows * cols * 2, rows, cols);
    const out = new Float32Array(rows * cols);
    for (let i = 0, o = 0; i < out.length; i++, o += 2) out[i] = F16_TABLE[bytes[o] | (bytes[o + 1] << 8)];
    return out;
  },
  levels: () => null,
};
